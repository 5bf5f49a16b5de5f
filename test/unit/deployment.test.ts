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
import { BROWSER_NODE_FLAGS } from "../../src/browser/launch.ts";
import { knownSettingNames, loadConfig } from "../../src/config/index.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const read = (p: string) => readFileSync(resolve(ROOT, p), "utf8");
const known = new Set(knownSettingNames());

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML is walked freely; the assertions are the checks.
type Doc = Record<string, any>;

/** What an operator sets (README, "Scaling out"): one token, the proxies. */
const OPERATOR = {
	API_TOKENS: "deploy-test-token-5b0e",
	PROXIES: "http://user:deploy-test-pw@proxy-1:8000,http://user:deploy-test-pw@proxy-2:8000",
};

/** A compose environment as `docker compose` resolves it: ${NAME:-default} from `operator`. */
function resolveCompose(environment: Record<string, string>, operator: Record<string, string>) {
	return Object.fromEntries(
		Object.entries(environment).map(([k, v]) => [
			k,
			String(v).replace(/\$\{([A-Z_]+):-([^}]*)\}/g, (_, name: string, def: string) => operator[name] || def),
		]),
	);
}

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
			const env = resolveCompose(svc.environment, OPERATOR);
			for (const key of Object.keys(env)) assert.ok(known.has(key), `${name}: unknown variable ${key}`);
			assert.doesNotThrow(() => loadConfig(env), `${name}'s environment must validate`);
		}
	});

	test("the proxy pools start with proxies when the operator sets PROXIES (issue 13)", () => {
		const pools = saguaroServices.filter(([, s]) => String(s.environment.SERVICES).includes("proxy-pool"));
		assert.ok(pools.length >= 2, "scrapers and browsers run a proxy pool");
		for (const [name, svc] of pools) {
			const config = loadConfig(resolveCompose(svc.environment, OPERATOR));
			assert.equal(config.proxy.proxies.length, 2, `${name} has the operator's proxies`);
		}
		for (const [name, svc] of saguaroServices) {
			for (const key of ["PROXIES", "PROXY_LIST_URL", "PROXY_LIST_KEY", "PROXY_SECRETS_KEY"])
				assert.ok(key in svc.environment, `${name} passes ${key}`);
		}
	});

	test("a provider key without its list URL is refused, naming PROXY_LIST_URL", () => {
		const [, scrapers] = saguaroServices.find(([n]) => n === "scrapers")!;
		const env = resolveCompose(scrapers.environment, { ...OPERATOR, PROXY_LIST_KEY: "wskey-123456" });
		assert.throws(() => loadConfig(env), /PROXY_LIST_KEY is set but PROXY_LIST_URL is not/);
		const withUrl = {
			...OPERATOR,
			PROXY_LIST_KEY: "wskey-123456",
			PROXY_LIST_URL: "https://proxy.example/list/",
		};
		assert.doesNotThrow(() => loadConfig(resolveCompose(scrapers.environment, withUrl)));
	});

	test("the api requires a token unless API_AUTH=off, and is published on loopback by default", () => {
		const api = compose.services.api as Doc;
		assert.throws(
			() => loadConfig(resolveCompose(api.environment, {})),
			/API_AUTH=on but API_TOKENS is empty/,
			"the api must refuse to start with no token",
		);
		assert.equal(loadConfig(resolveCompose(api.environment, OPERATOR)).core.apiAuth, true);
		assert.equal(loadConfig(resolveCompose(api.environment, { API_AUTH: "off" })).core.apiAuth, false);
		for (const port of api.ports as string[]) {
			const published = String(port).replace(/\$\{([A-Z_]+):-([^}]*)\}/g, (_, _n: string, d: string) => d);
			assert.match(published, /^127\.0\.0\.1:/, `api port ${port} is published on every interface`);
		}
	});

	test("Redis runs with AOF persistence", () => {
		const command = (compose.services.redis.command as string[]).join(" ");
		assert.match(command, /--appendonly yes/);
	});
});

describe("k8s manifests", () => {
	const docs = k8sDocs();
	const kustomization = parse(read("k8s/kustomization.yaml")) as Doc;
	const applied = docs.filter((d) => (kustomization.resources as string[]).includes(d.file));
	const configMap = docs.find((d) => d.doc.kind === "ConfigMap")!.doc.data as Record<string, string>;
	// The operator's Secret, as secret.example.yaml shows it.
	const secret = docs.find((d) => d.doc.kind === "Secret")!.doc.stringData as Record<string, string>;
	const deployments = applied.filter((d) => d.doc.kind === "Deployment");

	test("kubectl apply -k never writes a Secret: the operator's stays as it is (issue 13)", () => {
		assert.deepEqual(
			applied.filter((d) => d.doc.kind === "Secret").map((d) => d.file),
			[],
			"a Secret in the kustomization overwrites the operator's",
		);
		assert.equal(kustomization.secretGenerator, undefined);
		for (const { file, doc } of deployments) {
			const refs = doc.spec.template.spec.containers[0].envFrom as { secretRef?: { name: string } }[];
			assert.ok(
				refs.some((r) => r.secretRef?.name === "saguaro-secrets"),
				`${file} reads the operator's Secret`,
			);
		}
	});

	test("the api requires a token unless API_AUTH=off; the proxy pools get the Secret's proxies", () => {
		const api = deployments.find((d) => d.doc.metadata.name === "saguaro-api")!.doc;
		const apiEnv = (extra: Record<string, string>) => {
			const env: Record<string, string> = { ...configMap, ...extra, NODE_ID: "pod-0" };
			for (const e of api.spec.template.spec.containers[0].env as { name: string; value?: string }[])
				if (e.value !== undefined) env[e.name] = e.value;
			return env;
		};
		assert.throws(() => loadConfig(apiEnv({})), /API_AUTH=on but API_TOKENS is empty/);
		assert.equal(loadConfig(apiEnv({ API_TOKENS: OPERATOR.API_TOKENS })).core.apiAuth, true);
		for (const key of ["API_TOKENS", "PROXIES", "PROXY_SECRETS_KEY"])
			assert.ok(key in secret, `secret.example.yaml shows ${key}`);
		for (const { file, doc } of deployments) {
			const [container] = doc.spec.template.spec.containers;
			const services = (container.env as { name: string; value?: string }[]).find(
				(e) => e.name === "SERVICES",
			);
			if (!services?.value?.includes("proxy-pool")) continue;
			const env = { ...configMap, PROXIES: OPERATOR.PROXIES, API_TOKENS: OPERATOR.API_TOKENS };
			assert.equal(loadConfig({ ...env, SERVICES: services.value }).proxy.proxies.length, 2, file);
		}
	});

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

	test("kustomization lists every manifest (examples excepted)", () => {
		const files = readdirSync(resolve(ROOT, "k8s")).filter(
			(f) => f.endsWith(".yaml") && f !== "kustomization.yaml" && !f.endsWith(".example.yaml"),
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

	test("browser nodes run Node with the pool's V8 flags (BROWSER_NODE_FLAGS)", () => {
		const browserStage = dockerfile.split(/^FROM .* AS browser$/m)[1] ?? "";
		const cmd = JSON.parse(/^CMD (\[.+\])$/m.exec(browserStage)?.[1] ?? "[]") as string[];
		assert.deepEqual(cmd, ["node", ...BROWSER_NODE_FLAGS, "bin/saguaro.ts"]);
		// The soak renders as a browser node does.
		const pkg = JSON.parse(read("package.json")) as { scripts: Record<string, string> };
		for (const flag of BROWSER_NODE_FLAGS)
			assert.ok(pkg.scripts.soak?.includes(flag), `npm run soak: ${flag}`);
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
