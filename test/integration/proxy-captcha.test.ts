/**
 * 2captcha client and solver against the sandbox captcha simulator: both protocols, one solve per
 * challenge however many callers ask at once, the daily budget, the timeout and bad-token reports.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type CaptchaHandle, startCaptcha } from "../../sandbox/captcha.ts";
import {
	CaptchaError,
	type CaptchaProtocol,
	CaptchaSolver,
	TwoCaptchaClient,
} from "../../src/proxy/captcha.ts";
import { MemorySharedState } from "../../src/shared-state/index.ts";

describe("captcha solving against the sandbox", () => {
	let sim: CaptchaHandle;
	const states: MemorySharedState[] = [];

	before(async () => {
		sim = await startCaptcha({ solveDelayMs: 300, price: 0.00299, seed: 5 });
	});
	after(async () => {
		await sim.close();
		for (const s of states) await s.close();
	});

	const client = (protocol: CaptchaProtocol, key = sim.key) =>
		new TwoCaptchaClient({ baseUrl: sim.url, key, protocol, pollIntervalMs: 100, priceUsd: 0.003 });
	const solver = (
		protocol: CaptchaProtocol,
		budgetUsdPerDay = 1,
		timeoutMs = 10_000,
		state = new MemorySharedState(),
	) => {
		states.push(state);
		return new CaptchaSolver(client(protocol), state, { budgetUsdPerDay, timeoutMs, nodeId: "test" });
	};

	for (const protocol of ["legacy", "v2"] as const) {
		test(`${protocol}: solves, the token verifies, and a bad one can be reported`, async () => {
			const sitekey = `sk-${protocol}-1`;
			const r = await solver(protocol).solve({
				type: "hcaptcha",
				sitekey,
				pageurl: "http://mls.test/search",
			});
			assert.ok(r.token.length > 10);
			assert.equal(r.shared, false);
			assert.ok(r.costUsd > 0);
			assert.equal(sim.verifyToken(sitekey, r.token), true);
			await client(protocol).report(r.id, false);
			assert.equal(sim.stats().reportsBad >= 1, true);
			assert.ok((await client(protocol).balance()) < 5);
		});

		test(`${protocol}: a wrong key is a clear error`, async () => {
			await assert.rejects(
				client(protocol, "0".repeat(32)).solve(
					{ type: "recaptcha", sitekey: "k", pageurl: "http://x.test/" },
					2000,
				),
				(err: unknown) => err instanceof CaptchaError && /KEY/.test(err.type),
			);
		});
	}

	test("several callers of the same challenge get one solve (same node and across nodes)", async () => {
		const shared = new MemorySharedState();
		states.push(shared);
		const a = solver("v2", 1, 10_000, shared);
		const b = solver("v2", 1, 10_000, shared);
		const sitekey = "sk-dedup";
		const before = sim.stats().bySitekey[sitekey]?.submissions ?? 0;
		const challenge = { type: "recaptcha" as const, sitekey, pageurl: "http://mls.test/listing/1" };
		const results = await Promise.all([
			a.solve(challenge),
			a.solve(challenge),
			a.solve(challenge),
			b.solve(challenge),
			b.solve(challenge),
		]);
		assert.equal((sim.stats().bySitekey[sitekey]?.submissions ?? 0) - before, 1, "one submission");
		assert.equal(new Set(results.map((r) => r.token)).size, 1);
		assert.equal(results.filter((r) => !r.shared).length, 1);
	});

	test("the daily budget refuses solves beyond it", async () => {
		const s = solver("legacy", 0.005);
		await s.solve({ type: "hcaptcha", sitekey: "sk-budget-1", pageurl: "http://x.test/" });
		await assert.rejects(
			s.solve({ type: "hcaptcha", sitekey: "sk-budget-2", pageurl: "http://x.test/" }),
			(err: unknown) => err instanceof CaptchaError && err.type === "ERROR_BUDGET_EXCEEDED",
		);
		assert.ok((await s.spentToday()) <= 0.005);
	});

	test("a solve that takes too long times out and is not charged against the budget", async () => {
		sim.configure({ solveDelayMs: 5000 });
		try {
			const s = solver("v2", 1, 1200);
			await assert.rejects(
				s.solve({ type: "hcaptcha", sitekey: "sk-slow", pageurl: "http://x.test/" }),
				(err: unknown) => err instanceof CaptchaError && err.type === "ERROR_TIMEOUT",
			);
			assert.equal(await s.spentToday(), 0);
		} finally {
			sim.configure({ solveDelayMs: 300 });
		}
	});
});
