/**
 * Active proxy health checks against a check URL that is down (issue 13, item 6): offline, the
 * default PROXY_CHECK_URL cannot be reached, and that must not mark every proxy dead. The sandbox
 * offers a check URL of its own and prints it among its env lines. Real sandbox proxies, real
 * ProxyRuntime, real HTTP on loopback.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { request } from "undici";
import { type Sandbox, startSandbox } from "../../sandbox/index.ts";
import { loadConfig } from "../../src/config/index.ts";
import { ProxyRuntime } from "../../src/proxy/runtime.ts";
import { MemorySharedState } from "../../src/shared-state/memory.ts";
import { freePort } from "../../src/utils/net.ts";

let sandbox: Sandbox;
const runtimes: ProxyRuntime[] = [];
const quiet = { info() {}, warn() {} };

async function runtimeWith(checkUrl: string): Promise<ProxyRuntime> {
	const config = loadConfig({
		PROXIES: sandbox.env.PROXIES!,
		PROXY_CHECK_URL: checkUrl,
		PROXY_CHECK_INTERVAL_S: "0",
		PROXY_CHECK_TIMEOUT_MS: "2000",
		PROXY_DEAD_AFTER: "1",
		PROXY_GATEWAY_PORT: "off",
	});
	const runtime = new ProxyRuntime(config.proxy, new MemorySharedState(), "check-test", quiet);
	runtimes.push(runtime);
	await runtime.start();
	return runtime;
}

before(async () => {
	sandbox = await startSandbox({ world: { zips: ["85031"], parcelsPerZip: 10 } });
});

after(async () => {
	for (const r of runtimes) await r.stop();
	await sandbox?.stop();
});

describe("proxy health checks", () => {
	test("the sandbox prints a check URL that answers, and its proxies pass the check through it", async () => {
		const url = sandbox.env.PROXY_CHECK_URL;
		assert.ok(url, "the sandbox's env lines name PROXY_CHECK_URL");
		const res = await request(url);
		await res.body.dump();
		assert.ok(res.statusCode >= 200 && res.statusCode < 400, `check URL answered ${res.statusCode}`);
		const runtime = await runtimeWith(url);
		const results = await runtime.check();
		assert.ok(results.length > 0);
		// The farm has healthy and slow proxies, and a dead one: the check tells them apart.
		const status = await runtime.pool.status();
		const stateOf = (port: number) => status.find((p) => p.label.endsWith(`:${port}`))?.state;
		const listed = sandbox.proxies.proxies().filter((p) => p.listed);
		const working = listed.filter((p) => p.behaviour === "healthy" || p.behaviour === "slow");
		assert.ok(working.length > 0);
		for (const p of working) assert.equal(stateOf(p.port), "healthy", `${p.behaviour} proxy ${p.index}`);
		for (const p of listed.filter((x) => x.behaviour === "dead")) {
			assert.equal(stateOf(p.port), "dead", `dead proxy ${p.index}`);
		}
	});

	test("a check URL that is down marks no proxy dead (the target is down, not the proxies)", async () => {
		// A loopback port nobody listens on: connection refused, through every proxy and directly.
		const down = `http://127.0.0.1:${await freePort()}/generate_204`;
		const runtime = await runtimeWith(down);
		for (let i = 0; i < 3; i++) {
			const results = await runtime.check();
			assert.ok(results.length > 0);
			assert.ok(results.every((r) => !r.ok));
		}
		const status = await runtime.pool.status();
		const dead = status.filter((p) => p.state === "dead").map((p) => p.label);
		assert.deepEqual(dead, [], "no proxy is marked dead because the check URL is down");
		// The proxies still work: a real request through one reaches the sandbox.
		const lease = await runtime.pool.acquire({});
		assert.ok(lease.proxy.id);
		await runtime.pool.release(lease.leaseId, { ok: true });
	});
});
