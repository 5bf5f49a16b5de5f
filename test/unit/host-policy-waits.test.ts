/**
 * Waits of HostPolicy end when they must (issue 13, item 2): a cancelled caller, a stopping service,
 * a wait longer than the call may wait, and a missing configuration, on the in-memory shared state.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { NotConfiguredError } from "../../src/core/errors.ts";
import { type Attempt, HostPolicy, HostRequestError } from "../../src/core/host-policy.ts";
import { MemorySharedState } from "../../src/shared-state/index.ts";

const states: MemorySharedState[] = [];
after(async () => {
	for (const s of states) await s.close();
});

/** A policy whose breaker is open for `openMs` (opened by real failures), and its state. */
async function withOpenBreaker(openMs: number) {
	const state = new MemorySharedState();
	states.push(state);
	const policy = new HostPolicy(state, {
		host: "waits",
		rate: { points: 1000, durationMs: 1000 },
		retry: { maxAttempts: 1, baseMs: 1, maxMs: 1 },
		breaker: { minRequests: 2, failureRate: 0.5, openMs },
	});
	const failing = async (): Promise<Attempt<number>> => ({ kind: "transient", reason: "HTTP 503" });
	for (let i = 0; i < 2; i++) await policy.run("x", failing).catch(() => undefined);
	assert.equal((await policy.status()).breaker, "open");
	return policy;
}

const neverCalled = async (): Promise<Attempt<number>> => {
	throw new Error("the attempt must not run while the breaker is open");
};

describe("HostPolicy waits", () => {
	test("a call waiting on an open breaker ends when its signal aborts, with the signal's reason", async () => {
		const policy = await withOpenBreaker(60_000);
		const controller = new AbortController();
		const waiting = policy.run("x", neverCalled, controller.signal);
		setTimeout(() => controller.abort(new Error("job cancelled")), 50);
		await assert.rejects(waiting, /job cancelled/);
	});

	test("close() (the service stops) ends every wait", async () => {
		const policy = await withOpenBreaker(60_000);
		const waits = [policy.run("a", neverCalled), policy.run("b", neverCalled)];
		setTimeout(() => policy.close(), 50);
		for (const w of waits) await assert.rejects(w, /stopping/);
		await assert.rejects(policy.run("c", neverCalled), /stopping/);
	});

	test("a breaker open longer than the call may wait fails at once, naming it", async () => {
		const policy = await withOpenBreaker(600_000);
		await assert.rejects(
			policy.run("x", neverCalled, undefined, { maxWaitMs: 1000 }),
			(err: unknown) => err instanceof HostRequestError && /breaker is open \(.*HTTP 503\)/.test(err.message),
		);
	});

	test("a NotConfiguredError from the attempt passes through: no retry, no breaker failure", async () => {
		const state = new MemorySharedState();
		states.push(state);
		const policy = new HostPolicy(state, {
			host: "nc",
			rate: { points: 1000, durationMs: 1000 },
			retry: { maxAttempts: 5, baseMs: 1, maxMs: 1 },
			breaker: { minRequests: 1, failureRate: 0.5, openMs: 60_000 },
		});
		let calls = 0;
		await assert.rejects(
			policy.run("x", async () => {
				calls++;
				throw new NotConfiguredError("proxy", "no proxy configured");
			}),
			NotConfiguredError,
		);
		assert.equal(calls, 1);
		const s = await policy.status();
		assert.equal(s.breaker, "closed");
		assert.equal(s.window.failed, 0);
	});
});
