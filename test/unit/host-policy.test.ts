/** HostPolicy on the in-memory shared state: budget, pause, retries, breaker, fatal stop. */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { maxInSlidingWindow } from "../../sandbox/counters.ts";
import {
	type Attempt,
	HostFatalError,
	HostPolicy,
	type HostPolicyEvent,
	HostRequestError,
} from "../../src/core/host-policy.ts";
import { MemorySharedState } from "../../src/shared-state/index.ts";
import { sleep } from "../../src/utils/time.ts";

const states: MemorySharedState[] = [];
function freshState() {
	const s = new MemorySharedState();
	states.push(s);
	return s;
}
after(async () => {
	for (const s of states) await s.close();
});

const ok = <T>(value: T): Attempt<T> => ({ kind: "ok", value });

describe("HostPolicy (memory state)", () => {
	test("several policies on one state never exceed the budget in any sliding window", async () => {
		const state = freshState();
		const rate = { points: 5, durationMs: 500 };
		const policies = [1, 2, 3].map((n) => new HostPolicy(state, { host: "h1", rate, nodeId: `n${n}` }));
		const sent: number[] = [];
		await Promise.all(
			policies.flatMap((p) =>
				Array.from({ length: 8 }, () =>
					p.run("x", async () => {
						sent.push(Date.now());
						return ok(1);
					}),
				),
			),
		);
		assert.equal(sent.length, 24);
		sent.sort((a, b) => a - b);
		assert.ok(
			maxInSlidingWindow(sent, rate.durationMs) <= rate.points,
			`max ${maxInSlidingWindow(sent, 500)}`,
		);
	});

	test("transient failures are retried, permanent ones are not", async () => {
		const state = freshState();
		const events: HostPolicyEvent[] = [];
		const policy = new HostPolicy(state, {
			host: "h2",
			rate: { points: 100, durationMs: 1000 },
			retry: { maxAttempts: 4, baseMs: 5, maxMs: 20 },
			onEvent: (e) => events.push(e),
		});
		let calls = 0;
		const value = await policy.run("flaky", async () =>
			++calls < 3 ? { kind: "transient", reason: "HTTP 503" } : ok("done"),
		);
		assert.equal(value, "done");
		assert.equal(calls, 3);
		const outcomes = events.filter((e) => e.type === "request").map((e) => e.outcome);
		assert.deepEqual(outcomes, ["transient", "transient", "ok"]);

		let permanentCalls = 0;
		await assert.rejects(
			policy.run("bad", async () => {
				permanentCalls++;
				return { kind: "failed", reason: "HTTP 400" };
			}),
			(err: unknown) => err instanceof HostRequestError && err.outcome === "failed",
		);
		assert.equal(permanentCalls, 1);

		let exhaustedCalls = 0;
		await assert.rejects(
			policy.run("down", async () => {
				exhaustedCalls++;
				throw new Error("ECONNREFUSED");
			}),
			(err: unknown) =>
				err instanceof HostRequestError && err.attempts === 4 && /ECONNREFUSED/.test(err.message),
		);
		assert.equal(exhaustedCalls, 4);
	});

	test("backoff grows exponentially with jitter and is capped", () => {
		const policy = new HostPolicy(freshState(), {
			host: "h3",
			rate: { points: 1, durationMs: 1000 },
			retry: { baseMs: 100, maxMs: 1000 },
		});
		for (let i = 0; i < 20; i++) {
			const b1 = policy.backoffMs(1);
			const b3 = policy.backoffMs(3);
			const b9 = policy.backoffMs(9);
			assert.ok(b1 >= 50 && b1 <= 100, `b1 ${b1}`);
			assert.ok(b3 >= 200 && b3 <= 400, `b3 ${b3}`);
			assert.ok(b9 >= 500 && b9 <= 1000, `b9 ${b9}`);
		}
	});

	test("a Retry-After from one node pauses every node", async () => {
		const state = freshState();
		const a = new HostPolicy(state, { host: "h4", rate: { points: 50, durationMs: 1000 } });
		const b = new HostPolicy(state, { host: "h4", rate: { points: 50, durationMs: 1000 } });
		let answered429 = false;
		const sentAfterPause: number[] = [];
		let pauseSetAt = 0;
		await a.run("first", async () => {
			if (!answered429) {
				answered429 = true;
				pauseSetAt = Date.now();
				return { kind: "rate-limited", retryAfterMs: 400, reason: "HTTP 429" };
			}
			sentAfterPause.push(Date.now());
			return ok(1);
		});
		await b.run("second", async () => {
			sentAfterPause.push(Date.now());
			return ok(2);
		});
		assert.ok((await a.status()).pausedUntil === null || sentAfterPause.length === 2);
		for (const t of sentAfterPause) assert.ok(t >= pauseSetAt + 400, "no request inside the pause");
	});

	test("an error storm opens the breaker for every node; a good trial closes it", async () => {
		const state = freshState();
		const opts = {
			host: "h5",
			rate: { points: 200, durationMs: 1000 },
			retry: { maxAttempts: 1, baseMs: 1, maxMs: 1 },
			breaker: { windowMs: 10_000, minRequests: 4, failureRate: 0.5, openMs: 300 },
		};
		const events: HostPolicyEvent[] = [];
		const a = new HostPolicy(state, { ...opts, onEvent: (e) => events.push(e) });
		const b = new HostPolicy(state, opts);
		for (let i = 0; i < 4; i++) {
			await assert.rejects(a.run("storm", async () => ({ kind: "transient", reason: "HTTP 502" })));
		}
		assert.equal((await b.status()).breaker, "open");
		let trialCalls = 0;
		const value = await b.run("after", async () => {
			trialCalls++;
			return ok("recovered");
		});
		assert.equal(value, "recovered");
		assert.equal(trialCalls, 1);
		assert.equal((await a.status()).breaker, "closed");
		assert.ok(events.some((e) => e.type === "breaker" && e.state === "open"));
	});

	test("a fatal answer stops every node, with no retry", async () => {
		const state = freshState();
		const a = new HostPolicy(state, { host: "h6", rate: { points: 100, durationMs: 1000 } });
		const b = new HostPolicy(state, { host: "h6", rate: { points: 100, durationMs: 1000 } });
		let calls = 0;
		await assert.rejects(
			a.run("auth", async () => {
				calls++;
				return { kind: "fatal", reason: "Unauthorized" };
			}),
			HostFatalError,
		);
		assert.equal(calls, 1);
		let bCalls = 0;
		await assert.rejects(
			b.run("next", async () => {
				bCalls++;
				return ok(1);
			}),
			(err: unknown) => err instanceof HostFatalError && /Unauthorized/.test(err.message),
		);
		assert.equal(bCalls, 0, "the other node never called the host");
		assert.equal((await b.status()).fatal?.reason, "Unauthorized");
		await b.resume();
		const c = new HostPolicy(state, { host: "h6", rate: { points: 100, durationMs: 1000 } });
		assert.equal(await c.run("again", async () => ok(3)), 3);
	});

	test("a request that is answered slowly holds back only the request a budget after it", async () => {
		const state = freshState();
		const rate = { points: 3, durationMs: 300 };
		const policy = new HostPolicy(state, { host: "slow", rate });
		const arrived: number[] = [];
		const left: number[] = [];
		// The host stamps each request on arrival, 0-150 ms after it left (a loaded machine, a slow
		// network): the budget must hold on the host's clock, not only on the sender's.
		await Promise.all(
			Array.from({ length: 12 }, (_, i) =>
				policy.run("x", async () => {
					left.push(Date.now());
					await sleep((i * 37) % 150);
					arrived.push(Date.now());
					await sleep(5);
					return ok(1);
				}),
			),
		);
		arrived.sort((a, b) => a - b);
		assert.equal(arrived.length, 12);
		assert.ok(
			maxInSlidingWindow(arrived, rate.durationMs) <= rate.points,
			`max ${maxInSlidingWindow(arrived, 300)}`,
		);
	});

	test("a number taken by a caller that gave up, or by a node that died, does not stall the budget", async () => {
		const state = freshState();
		const rate = { points: 2, durationMs: 200 };
		const policy = new HostPolicy(state, { host: "gone", rate });
		// A caller that gives up while waiting for its turn.
		const ac = new AbortController();
		const fills = [policy.run("a", async () => ok(1)), policy.run("b", async () => ok(1))];
		const gaveUp = policy.run("c", async () => ok(1), ac.signal);
		ac.abort(new Error("cancelled"));
		await assert.rejects(gaveUp, /cancelled/);
		await Promise.all(fills);
		// A node that took a number and died: its pending record is never refreshed nor settled.
		await state.incr("host:gone:budget:seq");
		const next = await Promise.all([1, 2, 3].map((n) => policy.run(`after-${n}`, async () => ok(n))));
		assert.deepEqual(next, [1, 2, 3]);
	});

	test("bad budgets are refused", () => {
		assert.throws(
			() => new HostPolicy(freshState(), { host: "h7", rate: { points: 0, durationMs: 1000 } }),
			RangeError,
		);
		assert.throws(
			() => new HostPolicy(freshState(), { host: "bad host", rate: { points: 1, durationMs: 1 } }),
			RangeError,
		);
	});
});
