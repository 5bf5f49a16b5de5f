/**
 * Proxy pools scoped to a region (issue 15), over one shared state: a proxy added at run time in
 * one region is that region's own (the other region's pool never hands it out), and a pool keeps
 * only proxies of its countries among those that are tagged (PROXY_COUNTRIES), untagged ones too.
 * PROXY_COUNTRIES and REGION reach the pool's options through the config.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { loadConfig } from "../../src/config/index.ts";
import { ProxyPool } from "../../src/proxy/pool.ts";
import { makeEndpoint } from "../../src/proxy/proxy-url.ts";
import { MemorySharedState } from "../../src/shared-state/index.ts";

const endpoint = (host: string, countryCode?: string) =>
	makeEndpoint({
		protocol: "http",
		host,
		port: 8080,
		username: "",
		password: "",
		source: "provider",
		...(countryCode ? { countryCode } : {}),
	});

describe("proxy pools by region", () => {
	test("a run-time addition belongs to its region's pool", async () => {
		const state = new MemorySharedState();
		const a = new ProxyPool(state, { region: "us-west" });
		const b = new ProxyPool(state, { region: "us-east" });
		const added = await a.add("http://10.0.0.1:3128");
		await Promise.all([a.syncRuntime(), b.syncRuntime()]);
		assert.deepEqual(
			a.proxies().map((p) => p.id),
			[added.id],
		);
		assert.deepEqual(b.proxies(), []);
		await assert.rejects(b.acquire({ domain: "example.com" }), /no proxy available/);
		const lease = await a.acquire({ domain: "example.com" });
		assert.equal(lease.proxy.id, added.id);
		await state.close();
	});

	test("PROXY_COUNTRIES keeps tagged proxies of those countries, and untagged ones", () => {
		const config = loadConfig({ PROXY_COUNTRIES: "us, ca", REGION: "us-west", METRICS_PORT: "0" });
		assert.deepEqual(config.proxy.countries, ["US", "CA"]);
		assert.equal(config.proxy.region, "us-west");
		assert.throws(() => loadConfig({ PROXY_COUNTRIES: "usa" }), /PROXY_COUNTRIES/);
		const pool = new ProxyPool(new MemorySharedState(), { countries: config.proxy.countries });
		pool.setSource("provider", [endpoint("1.1.1.1", "US"), endpoint("2.2.2.2", "DE"), endpoint("3.3.3.3")]);
		assert.deepEqual(
			pool
				.proxies()
				.map((p) => p.host)
				.sort(),
			["1.1.1.1", "3.3.3.3"],
		);
	});
});
