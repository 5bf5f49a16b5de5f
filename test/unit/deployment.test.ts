/**
 * What can be checked of the deployment files without a Docker engine or a Kubernetes cluster:
 * they parse, every environment name they set is one the configuration knows, the values they set
 * pass the same validation a node runs at start, and the README documents every setting.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, test } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { knownSettingNames, loadConfig } from "../../src/config/index.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const read = (p: string) => readFileSync(resolve(ROOT, p), "utf8");
const known = new Set(knownSettingNames());

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML is walked freely; the assertions are the checks.
type Doc = Record<string, any>;

function k8sDocs(): { file: string; doc: Doc }[] {
	return readdirSync(resolve(ROOT, "k8s"))
		.filter((f) => f.endsWith(".yaml"))
		.flatMap((file) =>
			parseAllDocuments(read(`k8s/${file}`)).map((d) => {
				assert.equal(d.errors.length, 0, `${file}: ${d.errors.join("; ")}`);
				return { file, doc: d.toJS() as Doc };
			}),
		);
}

describe("docker-compose.yml", () => {
	const compose = parse(read("docker-compose.yml"), { merge: true }) as Doc;
	const saguaroServices = Object.entries(compose.services as Record<string, Doc>).filter(([, s]) =>
		String(s.image ?? "").startsWith("saguaro"),
	);

	test("has the infrastructure and the Saguaro roles", () => {
		for (const name of ["nats", "redis", "mongo", "api", "orchestrator", "scrapers", "browsers"]) {
			assert.ok(compose.services[name], `service ${name}`);
		}
	});

	test("every Saguaro role's environment is known and valid", () => {
		assert.ok(saguaroServices.length >= 4);
		for (const [name, svc] of saguaroServices) {
			const env = Object.fromEntries(
				Object.entries(svc.environment as Record<string, string>).map(([k, v]) => [
					k,
					String(v).replace(/\$\{[A-Z_]+:-\}/g, ""),
				]),
			);
			for (const key of Object.keys(env)) assert.ok(known.has(key), `${name}: unknown variable ${key}`);
			assert.doesNotThrow(() => loadConfig(env), `${name}'s environment must validate`);
		}
	});
});

describe("k8s manifests", () => {
	const docs = k8sDocs();
	const configMap = docs.find((d) => d.doc.kind === "ConfigMap")!.doc.data as Record<string, string>;
	const secret = docs.find((d) => d.doc.kind === "Secret")!.doc.stringData as Record<string, string>;
	const deployments = docs.filter((d) => d.doc.kind === "Deployment");

	test("ConfigMap and Secret only set known variables", () => {
		for (const key of [...Object.keys(configMap), ...Object.keys(secret)]) {
			assert.ok(known.has(key), `unknown variable ${key}`);
		}
	});

	test("a Deployment per role, each with probes on the health port and a valid environment", () => {
		assert.deepEqual(deployments.map((d) => d.doc.metadata.name).sort(), [
			"saguaro-api",
			"saguaro-browsers",
			"saguaro-orchestrator",
			"saguaro-scrapers",
		]);
		for (const { file, doc } of deployments) {
			const [container] = doc.spec.template.spec.containers;
			assert.equal(container.readinessProbe.httpGet.path, "/ready", file);
			assert.equal(container.livenessProbe.httpGet.path, "/live", file);
			assert.equal(doc.spec.template.spec.securityContext.runAsNonRoot, true, file);
			const env: Record<string, string> = { ...configMap, ...secret, NODE_ID: "pod-0" };
			for (const e of container.env as { name: string; value?: string }[]) {
				assert.ok(known.has(e.name), `${file}: unknown variable ${e.name}`);
				if (e.value !== undefined) env[e.name] = e.value;
			}
			assert.doesNotThrow(() => loadConfig(env), `${file}'s environment must validate`);
		}
	});

	test("the api has a Service, scraper and browser roles an HPA", () => {
		assert.ok(
			docs.some(
				(d) => d.doc.kind === "Service" && d.doc.spec.selector["app.kubernetes.io/component"] === "api",
			),
		);
		const hpaTargets = docs
			.filter((d) => d.doc.kind === "HorizontalPodAutoscaler")
			.map((d) => d.doc.spec.scaleTargetRef.name);
		assert.deepEqual(hpaTargets.sort(), ["saguaro-browsers", "saguaro-scrapers"]);
	});

	test("kustomization lists every manifest", () => {
		const kustomization = parse(read("k8s/kustomization.yaml")) as Doc;
		const files = readdirSync(resolve(ROOT, "k8s")).filter(
			(f) => f.endsWith(".yaml") && f !== "kustomization.yaml",
		);
		assert.deepEqual([...kustomization.resources].sort(), files.sort());
	});
});

describe("Dockerfile", () => {
	const dockerfile = read("Dockerfile");
	test("multi-stage, runs as non-root, copies only what exists", () => {
		assert.ok((dockerfile.match(/^FROM /gm) ?? []).length >= 2, "multi-stage");
		const users = [...dockerfile.matchAll(/^USER (\S+)/gm)].map((m) => m[1]);
		assert.notEqual(users.at(-1), "root", "final stage must not run as root");
		for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
			for (const src of m[1].split(/\s+/)) assert.ok(existsSync(resolve(ROOT, src)), `COPY source ${src}`);
		}
	});
});

describe("README", () => {
	test("documents every setting", () => {
		const readme = read("README.md");
		const missing = [...known].filter((name) => !readme.includes(`\`${name}\``));
		assert.deepEqual(missing, [], "settings missing from README's configuration table");
	});
});

describe("README configuration table", () => {
	test("is the one generated from the settings declarations (npm run docs:config)", async () => {
		const { configTable, START, END } = await import("../../scripts/config-table.ts");
		const readme = read("README.md");
		const current = readme.split(START)[1]?.split(END)[0]?.trim();
		assert.equal(current, configTable(), "run `npm run docs:config` to refresh README");
	});
});
