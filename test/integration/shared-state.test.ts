/** One contract suite, run against the in-memory state and against a real redis-server. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MemorySharedState, RedisSharedState, type SharedState } from "../../src/shared-state/index.ts";
import { sleep } from "../../src/utils/time.ts";
import { type RunningServer, startRedis } from "../harness/servers.ts";

function contract(name: string, make: () => Promise<SharedState>, makePeer: () => Promise<SharedState>) {
	describe(`shared state contract: ${name}`, () => {
		let state: SharedState;
		let peer: SharedState;
		before(async () => {
			state = await make();
			peer = await makePeer();
		});
		after(async () => {
			await state.close();
			if (peer !== state) await peer.close();
		});

		test("rate budget refuses past its points and says how long to wait", async () => {
			const budget = { points: 3, durationMs: 1000 };
			const results = [];
			for (let i = 0; i < 4; i++) results.push(await state.consume("budget:a", budget));
			assert.deepEqual(
				results.map((r) => r.allowed),
				[true, true, true, false],
			);
			assert.ok(results[3].waitMs > 0 && results[3].waitMs <= 1000, `waitMs ${results[3].waitMs}`);
			// The budget is shared: a peer with the same key is refused too.
			assert.equal((await peer.consume("budget:a", budget)).allowed, false);
			// Another key has its own budget.
			assert.equal((await peer.consume("budget:b", budget)).allowed, true);
			await sleep(results[3].waitMs + 20);
			assert.equal((await state.consume("budget:a", budget)).allowed, true);
		});

		test("rate budget rejects a nonsensical budget", async () => {
			await assert.rejects(state.consume("x", { points: 0, durationMs: 1000 }), RangeError);
			await assert.rejects(state.consume("x", { points: 1, durationMs: 1500 }), RangeError);
		});

		test("a lease has one holder until released or expired", async () => {
			const lease = await state.acquire("job:1", 300);
			assert.ok(lease);
			assert.equal(await peer.acquire("job:1", 300), null);
			await lease.release();
			const second = await peer.acquire("job:1", 200);
			assert.ok(second, "released lease can be taken");
			assert.notEqual(second.token, lease.token);
			// The first holder cannot extend what it no longer holds.
			assert.equal(await lease.extend(500), false);
			await sleep(260);
			const third = await state.acquire("job:1", 1000);
			assert.ok(third, "expired lease can be taken");
			assert.equal(await second.extend(500), false);
			assert.equal(await third.extend(1000), true);
			await third.release();
		});

		test("a lease whose key vanished or ran out untaken is its holder's again", async () => {
			const lease = await state.acquire("job:2", 300);
			assert.ok(lease);
			// What a Redis restarted without persistence does to every lease.
			await state.del("lease:job:2");
			assert.equal(await lease.extend(500), true, "the vanished lease is re-taken with its token");
			assert.equal(await peer.acquire("job:2", 300), null, "and nobody else can take it");
			await sleep(600);
			assert.equal(await lease.extend(500), true, "expired, not taken: still the holder's");
			await lease.release();
			const next = await peer.acquire("job:2", 300);
			assert.ok(next, "released after the re-take: free again");
			await next.release();
		});

		test("counters are atomic across clients and can expire", async () => {
			await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? state : peer).incr("count:x")));
			assert.equal(await state.incr("count:x", 0), 50);
			assert.equal(await state.incr("count:ttl", 5, 150), 5);
			assert.ok((await state.ttl("count:ttl")) > 0);
			await sleep(200);
			assert.equal(await peer.incr("count:ttl", 1), 1);
			await Promise.all(
				Array.from({ length: 20 }, (_, i) =>
					(i % 2 ? state : peer).hincr("progress", i % 4 ? "done" : "failed"),
				),
			);
			assert.deepEqual(await peer.hgetall("progress"), { done: 15, failed: 5 });
			assert.deepEqual(await peer.hgetall("absent"), {});
			await state.hdel("progress", "failed");
			await state.hdel("absent", "x");
			assert.deepEqual(await peer.hgetall("progress"), { done: 15 });
		});

		test("a counter raised to a floor: racing callers get consecutive values, the TTL is kept", async () => {
			const got = await Promise.all(
				Array.from({ length: 20 }, (_, i) => (i % 2 ? state : peer).incrAtLeast("slots:a", 100, 5000)),
			);
			assert.deepEqual(
				[...got].sort((a, b) => a - b),
				Array.from({ length: 20 }, (_, i) => 101 + i),
			);
			// Past the floor it counts on; a higher floor lifts it.
			assert.equal(await state.incrAtLeast("slots:a", 50), 121);
			assert.equal(await peer.incrAtLeast("slots:a", 500), 501);
			const ttl = await state.ttl("slots:a");
			assert.ok(ttl > 0 && ttl <= 5000, `ttl ${ttl}`);
			assert.equal(await state.incrAtLeast("slots:b", 0), 1);
			assert.equal(await state.ttl("slots:b"), -1);
		});

		test("key/value with TTL, set-if-absent, prefix listing", async () => {
			await state.set("kv:a", { n: 1, s: "x" });
			assert.deepEqual(await peer.get("kv:a"), { n: 1, s: "x" });
			assert.equal(await peer.get("kv:none"), undefined);
			assert.equal(await state.ttl("kv:a"), -1);
			assert.equal(await state.ttl("kv:none"), -2);
			await state.set("kv:short", "v", 100);
			assert.deepEqual(await peer.getMany(["kv:a", "kv:short", "kv:none"]), [
				{ n: 1, s: "x" },
				"v",
				undefined,
			]);
			await sleep(150);
			assert.equal(await peer.get("kv:short"), undefined);
			const wins = await Promise.all(
				Array.from({ length: 10 }, (_, i) => (i % 2 ? state : peer).setIfAbsent("tick:1", i, 1000)),
			);
			assert.equal(wins.filter(Boolean).length, 1, "exactly one setIfAbsent wins");
			await state.set("ban:example.com:p1", true, 1000);
			await state.set("ban:example.com:p2", true, 1000);
			await state.set("ban:other.com:p1", true, 1000);
			assert.deepEqual((await peer.keys("ban:example.com:")).sort(), [
				"ban:example.com:p1",
				"ban:example.com:p2",
			]);
			await peer.del("ban:example.com:p1");
			assert.deepEqual(await state.keys("ban:example.com:"), ["ban:example.com:p2"]);
		});

		test("get-and-delete hands a value to exactly one of racing callers", async () => {
			await state.set("once:a", { proxyId: "p1", at: 5 }, 1000);
			const got = await Promise.all(
				Array.from({ length: 10 }, (_, i) => (i % 2 ? state : peer).getAndDelete("once:a")),
			);
			assert.deepEqual(
				got.filter((v) => v !== undefined),
				[{ proxyId: "p1", at: 5 }],
			);
			assert.equal(await state.get("once:a"), undefined);
			assert.equal(await peer.getAndDelete("once:none"), undefined);
		});

		test("delete-if-equals deletes only while the key holds that value", async () => {
			await state.set("slot:p1:0", "lease-a", 1000);
			assert.equal(await peer.deleteIfEquals("slot:p1:0", "lease-b"), false);
			assert.equal(await state.get("slot:p1:0"), "lease-a");
			assert.equal(await peer.deleteIfEquals("slot:p1:0", "lease-a"), true);
			assert.equal(await state.get("slot:p1:0"), undefined);
			assert.equal(await state.deleteIfEquals("slot:p1:0", "lease-a"), false);
			await state.set("obj:a", { n: 1 }, 1000);
			assert.equal(await peer.deleteIfEquals("obj:a", { n: 2 }), false);
			assert.equal(await peer.deleteIfEquals("obj:a", { n: 1 }), true);
		});
	});
}

const memory = new MemorySharedState();
contract(
	"memory",
	async () => memory,
	async () => memory,
);

let redis: RunningServer;
before(async () => {
	redis = await startRedis();
});
after(async () => {
	await redis?.stop();
});
contract(
	"redis",
	async () => new RedisSharedState(redis.url, "contract"),
	async () => new RedisSharedState(redis.url, "contract"),
);
