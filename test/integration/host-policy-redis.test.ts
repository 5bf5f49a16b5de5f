/** HostPolicy on a real Redis: two state connections (two "nodes") share budget, pause and stop. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { maxInSlidingWindow } from "../../sandbox/counters.ts";
import { HostFatalError, HostPolicy } from "../../src/core/host-policy.ts";
import { RedisSharedState } from "../../src/shared-state/index.ts";
import { type RunningServer, startRedis } from "../harness/servers.ts";

describe("HostPolicy on Redis", () => {
	let redis: RunningServer;
	let a: RedisSharedState;
	let b: RedisSharedState;
	before(async () => {
		redis = await startRedis();
		a = new RedisSharedState(redis.url, "hp-test");
		b = new RedisSharedState(redis.url, "hp-test");
	});
	after(async () => {
		await a?.close();
		await b?.close();
		await redis?.stop();
	});

	test("two nodes share one sliding-window budget, a pause and a fatal stop", async () => {
		const rate = { points: 4, durationMs: 500 };
		const pa = new HostPolicy(a, { host: "redis-host", rate });
		const pb = new HostPolicy(b, { host: "redis-host", rate });
		const sent: number[] = [];
		const call = (p: HostPolicy) =>
			p.run("x", async () => {
				sent.push(Date.now());
				return { kind: "ok", value: 1 } as const;
			});
		await Promise.all([
			...Array.from({ length: 8 }, () => call(pa)),
			...Array.from({ length: 8 }, () => call(pb)),
		]);
		sent.sort((x, y) => x - y);
		assert.equal(sent.length, 16);
		assert.ok(maxInSlidingWindow(sent, rate.durationMs) <= rate.points);

		await pa.pause(300);
		const pausedAt = Date.now();
		let sentAt = 0;
		await pb.run("after-pause", async () => {
			sentAt = Date.now();
			return { kind: "ok", value: 1 };
		});
		assert.ok(sentAt >= pausedAt + 250, "the other node waited for the pause");

		await pa.stopCluster("Unauthorized");
		let called = false;
		await assert.rejects(
			pb.run("stopped", async () => {
				called = true;
				return { kind: "ok", value: 1 };
			}),
			HostFatalError,
		);
		assert.equal(called, false);
		await pb.resume();
		assert.equal(await pa.run("resumed", async () => ({ kind: "ok", value: 2 })), 2);
	});
});
