/**
 * A proxy password given at run time (`proxy-pool.add`) is never stored in clear (issue 19): two
 * nodes share a real Redis, one adds a sandbox proxy with its password; nothing in Redis holds the
 * password, and the other node (same PROXY_SECRETS_KEY) still uses the proxy: its health check goes
 * through the proxy with the right credentials. A node with another key cannot open it; a Redis-backed
 * node with no key refuses such an addition rather than store it in clear.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { type ProxyFarm, startProxyFarm } from "../../sandbox/proxy-farm.ts";
import { loadConfig } from "../../src/config/index.ts";
import { type RunningNode, startNode } from "../../src/node/start-node.ts";
import { waitFor } from "../../src/utils/time.ts";
import { type RunningServer, startRedis } from "../harness/servers.ts";

const KEY = "k3y-for-proxy-secrets-test-9a7e21c4b0d85f36";
const OTHER_KEY = "another-key-proxy-secrets-test-1b2c3d4e5f60";

interface CheckResult {
	proxyId: string;
	ok: boolean;
	error?: string;
}

/** Every key and value in Redis, as text. */
async function dumpRedis(redis: Redis): Promise<string> {
	const parts: string[] = [];
	for (const key of await redis.keys("*")) {
		const type = await redis.type(key);
		let value: unknown;
		if (type === "string") value = await redis.get(key);
		else if (type === "hash") value = await redis.hgetall(key);
		else if (type === "list") value = await redis.lrange(key, 0, -1);
		else if (type === "set") value = await redis.smembers(key);
		else if (type === "zset") value = await redis.zrange(key, 0, -1, "WITHSCORES");
		else value = `(${type})`;
		parts.push(`${key} ${JSON.stringify(value)}`);
	}
	return parts.join("\n");
}

describe("run-time proxy passwords in Redis", () => {
	let redisServer: RunningServer;
	let redis: Redis;
	let farm: ProxyFarm;
	let target: Server;
	const nodes: RunningNode[] = [];

	const start = async (id: string, extra: Record<string, string>) => {
		const targetPort = (target.address() as AddressInfo).port;
		const node = await startNode(
			loadConfig({
				NODE_ID: id,
				NAMESPACE: `proxy-secrets-${process.pid}`,
				SERVICES: "proxy-pool",
				REDIS_URL: redisServer.url,
				LOG_LEVEL: "fatal",
				METRICS_PORT: "0",
				HEALTH_PORT: "0",
				REPL: "off",
				PROXY_CHECK_INTERVAL_S: "0",
				PROXY_CHECK_URL: `http://127.0.0.1:${targetPort}/generate_204`,
				...extra,
			}),
		);
		nodes.push(node);
		return node;
	};

	before(async () => {
		redisServer = await startRedis();
		redis = new Redis(redisServer.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
		farm = await startProxyFarm({ count: 2, seed: 19 });
		target = createServer((_req, res) => {
			res.writeHead(204);
			res.end();
		});
		await new Promise<void>((r) => target.listen(0, "127.0.0.1", r));
	});

	after(async () => {
		for (const node of nodes.reverse()) await node.stop();
		redis?.disconnect();
		await redisServer?.stop();
		await farm?.close();
		await new Promise((r) => (target ? target.close(r) : r(undefined)));
	});

	test("the password is stored encrypted, and another node with the key uses the proxy", async () => {
		const proxy = farm.proxy(0);
		assert.ok(proxy.password.length >= 6);
		const adder = await start("proxy-secrets-a", { PROXY_SECRETS_KEY: KEY });
		const user = await start("proxy-secrets-b", { PROXY_SECRETS_KEY: KEY });

		const added = (await adder.broker.call("proxy-pool.add", { url: proxy.url })) as { id: string };
		assert.ok(added.id);
		assert.ok(!JSON.stringify(added).includes(proxy.password));

		const stored = await dumpRedis(redis);
		assert.match(stored, /proxy:runtime/, "the addition is in Redis");
		assert.ok(!stored.includes(proxy.password), "Redis holds the proxy password in clear");
		assert.ok(!stored.includes(encodeURIComponent(proxy.password)), "Redis holds the encoded password");

		// The other node picks the addition up from Redis (its periodic sync) and can use it.
		await waitFor(
			async () =>
				((await user.broker.call("proxy-pool.list")) as { id: string }[]).some((p) => p.id === added.id),
			"the second node to see the added proxy",
			20_000,
			200,
		);
		const before = farm.proxy(0).counts;
		const [result] = (await user.broker.call("proxy-pool.check", { ids: [added.id] })) as CheckResult[];
		assert.ok(result, "the proxy was checked");
		assert.equal(result.ok, true, `health check through the proxy: ${result.error ?? ""}`);
		const after = farm.proxy(0).counts;
		assert.ok(after.forwarded > before.forwarded, "the check went through the proxy");
		assert.equal(after.authFailures, before.authFailures, "the proxy refused the credentials");
	});

	test("a node with another key cannot read the addition; with no key, Redis-backed nodes refuse it", async () => {
		const stranger = await start("proxy-secrets-c", { PROXY_SECRETS_KEY: OTHER_KEY });
		const listed = (await stranger.broker.call("proxy-pool.list")) as { source: string }[];
		assert.equal(listed.filter((p) => p.source === "api").length, 0);

		const keyless = await start("proxy-secrets-d", {});
		await assert.rejects(keyless.broker.call("proxy-pool.add", { url: farm.proxy(1).url }), (err: Error) => {
			assert.match(err.message, /PROXY_SECRETS_KEY/);
			return true;
		});
		assert.ok(!(await dumpRedis(redis)).includes(farm.proxy(1).password));
		// A proxy with no password needs no key.
		const open = (await keyless.broker.call("proxy-pool.add", { url: "http://127.0.0.1:9" })) as {
			id: string;
		};
		assert.ok(open.id);
	});
});
