/**
 * Two Saguaro node processes running proxy-pool over one real Redis and NATS: a ban, a sticky
 * session and a concurrency slot taken through one node are honoured by the other at once.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type moleculer from "moleculer";
import { type ProxyFarm, startProxyFarm } from "../../sandbox/proxy-farm.ts";
import { waitFor } from "../../src/utils/time.ts";
import { clientBroker, type NodeProcess, spawnNode } from "../harness/cluster.ts";
import { type RunningServer, startNats, startRedis } from "../harness/servers.ts";

interface AcquireResult {
	leaseId: string;
	proxy: { id: string; label: string };
	sticky: boolean;
}

describe("proxy-pool across two node processes", () => {
	let redis: RunningServer;
	let nats: RunningServer;
	let farm: ProxyFarm;
	let nodes: NodeProcess[] = [];
	let client: moleculer.ServiceBroker;

	before(async () => {
		[redis, nats, farm] = await Promise.all([
			startRedis(),
			startNats(),
			startProxyFarm({ count: 3, seed: 21 }),
		]);
		const env = {
			SERVICES: "proxy-pool",
			TRANSPORTER: nats.url,
			REDIS_URL: redis.url,
			PROXIES: farm.urls().join(","),
			PROXY_CHECK_INTERVAL_S: "0",
			PROXY_MAX_CONCURRENCY: "1",
		};
		nodes = [spawnNode({ nodeId: "proxy-a", env }), spawnNode({ nodeId: "proxy-b", env })];
		await Promise.all(nodes.map((n) => n.ready()));
		client = clientBroker(nats.url, "proxy-test-client");
		await client.start();
		await client.waitForServices(["proxy-pool"], 20_000);
		await waitForNodes(client, ["proxy-a", "proxy-b"]);
	});

	after(async () => {
		await client?.stop();
		await Promise.all(nodes.map((n) => n.stop()));
		await Promise.all([farm?.close(), nats?.stop(), redis?.stop()]);
	});

	const on = <T>(nodeID: string, action: string, params: object) =>
		client.call(action, params, { nodeID }) as Promise<T>;

	test("a ban recorded through one node is honoured by the other", async () => {
		const lease = await on<AcquireResult>("proxy-a", "proxy-pool.acquire", { domain: "mls.test" });
		const released = await on<{ banned: boolean }>("proxy-b", "proxy-pool.release", {
			leaseId: lease.leaseId,
			ok: true,
			status: 429,
		});
		assert.equal(released.banned, true, "node B releases a lease node A handed out");
		for (let i = 0; i < 6; i++) {
			const node = i % 2 === 0 ? "proxy-b" : "proxy-a";
			const l = await on<AcquireResult>(node, "proxy-pool.acquire", { domain: "mls.test" });
			assert.notEqual(l.proxy.id, lease.proxy.id, `node ${node} skipped the banned proxy`);
			await on(node, "proxy-pool.release", { leaseId: l.leaseId, ok: true, status: 200 });
		}
		const list = await on<{ id: string; bans: { domain: string }[] }[]>("proxy-b", "proxy-pool.list", {
			domain: "mls.test",
		});
		assert.deepEqual(
			list.find((p) => p.id === lease.proxy.id)?.bans.map((b) => b.domain),
			["mls.test"],
		);
		assert.ok(!JSON.stringify(list).includes(farm.proxy(0).password), "no password in results");
	});

	test("concurrency slots and sticky sessions are cluster-wide", async () => {
		const held = [
			await on<AcquireResult>("proxy-a", "proxy-pool.acquire", {}),
			await on<AcquireResult>("proxy-b", "proxy-pool.acquire", {}),
			await on<AcquireResult>("proxy-a", "proxy-pool.acquire", {}),
		];
		assert.equal(new Set(held.map((h) => h.proxy.id)).size, 3, "cap 1: three leases, three proxies");
		await assert.rejects(
			on("proxy-b", "proxy-pool.acquire", {}),
			(err: Error & { code?: number; type?: string }) => {
				assert.equal(err.type, "NO_PROXY_AVAILABLE");
				return true;
			},
		);
		for (const h of held) await on("proxy-a", "proxy-pool.release", { leaseId: h.leaseId, ok: true });

		const first = await on<AcquireResult>("proxy-a", "proxy-pool.acquire", { session: "s-1" });
		await on("proxy-a", "proxy-pool.release", { leaseId: first.leaseId, ok: true });
		const again = await on<AcquireResult>("proxy-b", "proxy-pool.acquire", { session: "s-1" });
		assert.equal(again.proxy.id, first.proxy.id);
		assert.equal(again.sticky, true);
		await on("proxy-b", "proxy-pool.release", { leaseId: again.leaseId, ok: true });
	});
});

async function waitForNodes(broker: moleculer.ServiceBroker, ids: string[]): Promise<void> {
	await waitFor(
		() => {
			const list = broker.registry.getServiceList({ onlyAvailable: true, withActions: false }) as {
				name: string;
				nodeID: string;
			}[];
			const have = new Set(list.filter((s) => s.name === "proxy-pool").map((s) => s.nodeID));
			return ids.every((id) => have.has(id));
		},
		`proxy-pool on ${ids.join(", ")}`,
		20_000,
	);
}
