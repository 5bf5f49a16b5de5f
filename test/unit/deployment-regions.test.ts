/**
 * The two-region deployment examples (issue 15), checked without Docker or Kubernetes: every Saguaro
 * role of docker-compose.regions.yml has a valid environment with its REGION and its own region's
 * NATS; each region's NATS joins the other by a gateway; the k8s overlays (k8s/regions/*) give the
 * base ConfigMap a region and still pass the validation a node runs at start.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { loadConfig } from "../../src/config/index.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const read = (p: string) => readFileSync(resolve(ROOT, p), "utf8");
// biome-ignore lint/suspicious/noExplicitAny: parsed YAML is walked freely; the assertions are the checks.
type Doc = Record<string, any>;

const OPERATOR: Record<string, string> = {
	API_TOKENS: "deploy-test-token-5b0e",
	PROXIES_US_WEST: "http://user:deploy-test-pw@proxy-w:8000",
	PROXIES_US_EAST: "http://user:deploy-test-pw@proxy-e:8000",
};

function resolveCompose(environment: Record<string, string>) {
	return Object.fromEntries(
		Object.entries(environment).map(([k, v]) => [
			k,
			String(v).replace(/\$\{([A-Z_]+):-([^}]*)\}/g, (_, name: string, def: string) => OPERATOR[name] || def),
		]),
	);
}

describe("docker-compose.regions.yml", () => {
	const compose = parse(read("docker-compose.regions.yml"), { merge: true }) as Doc;
	const roles = Object.entries(compose.services as Record<string, Doc>).filter(([, s]) =>
		String(s.image ?? "").startsWith("saguaro"),
	);

	test("each region's roles run on its own NATS, with its REGION and a valid environment", () => {
		const byRegion = new Map<string, string[]>();
		for (const [name, service] of roles) {
			const env = resolveCompose(service.environment);
			const config = loadConfig({ ...env, NODE_ID: name });
			const region = config.core.region;
			assert.ok(region, `${name}: REGION set`);
			assert.ok(name.startsWith(region), `${name} is in ${region}`);
			assert.equal(env.TRANSPORTER, `nats://nats-${region}:4222`, `${name}: its region's NATS`);
			assert.equal(config.proxy.region, region);
			byRegion.set(region, [...(byRegion.get(region) ?? []), ...config.core.services]);
		}
		assert.deepEqual([...byRegion.keys()].sort(), ["us-east", "us-west"]);
		// Each region can carry a job alone: an orchestrator, the sources and a store in each.
		for (const [region, services] of byRegion) {
			for (const s of ["orchestrator", "maricopa", "mls", "proxy-pool", "store"]) {
				assert.ok(services.includes(s as never), `${region} runs ${s}`);
			}
		}
	});

	test("the regions' NATS servers are joined by gateways, each naming the other", () => {
		for (const [own, other] of [
			["us-west", "us-east"],
			["us-east", "us-west"],
		]) {
			const conf = String(compose.configs[`nats-${own}`].content);
			assert.match(conf, new RegExp(`gateway \\{\\s*name: ${own}`));
			assert.match(conf, new RegExp(`name: ${other}, url: "nats://nats-${other}:7222"`));
			assert.deepEqual(compose.services[`nats-${own}`].command, ["-c", "/etc/nats/nats.conf"]);
		}
	});
});

describe("k8s/regions", () => {
	const base = parse(read("k8s/configmap.yaml")) as Doc;
	for (const region of ["us-west", "us-east"]) {
		test(`${region}: the overlay sets the region over the base ConfigMap, and the result is valid`, () => {
			const kustomization = parse(read(`k8s/regions/${region}/kustomization.yaml`)) as Doc;
			assert.deepEqual(kustomization.resources, ["../../"]);
			const data: Record<string, string> = { ...base.data };
			for (const p of kustomization.patches as Doc[]) {
				assert.equal(p.target.name, "saguaro-config");
				for (const op of parse(p.patch) as Doc[])
					data[String(op.path).replace("/data/", "")] = String(op.value);
			}
			const config = loadConfig({ ...data, API_TOKENS: OPERATOR.API_TOKENS });
			assert.equal(config.core.region, region);
			const values = parse(read(`k8s/regions/nats-gateway.${region}.values.yaml`)) as Doc;
			assert.equal(values.config.gateway.enabled, true);
			assert.equal(values.config.gateway.merge.name, region);
			assert.equal(values.config.gateway.merge.gateways.length, 1);
		});
	}
});
