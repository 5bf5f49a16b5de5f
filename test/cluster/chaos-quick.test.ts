/**
 * The chaos suite's quick set (issue 19), as CI runs it: NATS restarted, the store node SIGKILLed
 * and back in 4 s, the orchestrator leader SIGKILLed, a maricopa worker SIGKILLed — each mid-job on a
 * fresh real cluster (test/chaos/chaos.ts: store on FerretDB/PostgreSQL, two workers, two
 * orchestrators, NATS, Redis, the sandbox's Assessor with 2 ZIPs x 150 parcels). Each test asserts
 * the row's pass criteria one by one: the job ended (not hung, not vanished) with an honest status,
 * every parcel of the ground truth stored, none extra, none twice, and the Assessor's ok requests
 * within 5% of what the job needs. The whole suite: `npm run chaos`.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
	judge,
	QUICK_SIZE,
	REQUEST_TOLERANCE,
	runScenario,
	SCENARIOS,
	type ScenarioResult,
	stopEverything,
} from "../chaos/chaos.ts";
import { type RestartableFerretDb, startRestartableFerretDb } from "../harness/restartable.ts";

const HONEST_NOT_COMPLETE = ["completed_with_errors", "failed"];

function assertRow(r: ScenarioResult) {
	const context = `${r.id} (fault: ${r.fault}; ${r.failures.join("; ")})`;
	assert.notEqual(r.fault, "none", `the fault was injected mid-job: ${context}`);
	assert.ok(
		r.status === "completed" || HONEST_NOT_COMPLETE.includes(r.status),
		`the job ended with a status: ${r.status}; ${context}`,
	);
	if (r.status === "completed")
		assert.equal(r.missing, 0, `never "completed" with a parcel missing: ${context}`);
	else assert.ok(r.reasons.length > 0, `"${r.status}" says why: ${context}`);
	assert.equal(r.truth, QUICK_SIZE.zips.length * QUICK_SIZE.parcelsPerZip, "the ground truth is the world");
	assert.equal(r.stored, r.truth, `every parcel stored: ${context}`);
	assert.equal(r.extra, 0, `nothing stored beyond the ground truth: ${context}`);
	assert.equal(r.duplicates, 0, `no parcel stored twice: ${context}`);
	assert.ok(r.requests.needed > 0);
	assert.ok(
		Math.abs(r.requests.ok - r.requests.needed) <= r.requests.needed * REQUEST_TOLERANCE,
		`ok Assessor requests ${r.requests.ok} within ${REQUEST_TOLERANCE * 100}% of ${r.requests.needed} needed: ${context}`,
	);
	assert.ok(r.pass, context);
}

describe("chaos: the row's judge fails what it must", () => {
	const good = {
		status: "completed",
		reasons: [] as string[],
		missing: 0,
		truth: 300,
		extra: 0,
		duplicates: 0,
		requests: { ok: 297, failed: 3, layer: 4, needed: 297, overPct: 0 },
	};
	test("a complete, exact row passes; each defect alone fails it", () => {
		assert.deepEqual(judge(good), []);
		const bad: [string, Partial<typeof good>][] = [
			["false completed", { missing: 1 }],
			["hung", { status: "running (hung 90 s)" }],
			["vanished", { status: "vanished (no job)" }],
			["errors without reasons", { status: "completed_with_errors" }],
			["failed without reasons", { status: "failed" }],
			["cancelled", { status: "cancelled" }],
			["honest but incomplete", { status: "completed_with_errors", reasons: ["x"], missing: 2 }],
			["duplicates", { duplicates: 1 }],
			["extra", { extra: 1 }],
			["empty world", { truth: 0, requests: { ...good.requests, ok: 0, needed: 0 } }],
			["6% over", { requests: { ...good.requests, ok: 315 } }],
			["6% under", { requests: { ...good.requests, ok: 279 } }],
		];
		for (const [name, change] of bad) assert.notDeepEqual(judge({ ...good, ...change }), [], name);
		assert.deepEqual(judge({ ...good, status: "completed_with_errors", reasons: ["dead letter"] }), []);
		assert.deepEqual(
			judge({ ...good, requests: { ...good.requests, ok: 311 } }),
			[],
			"4.7% over is within 5%",
		);
	});
});

describe("chaos, quick set: faults mid-job on a real cluster", () => {
	let ferret: RestartableFerretDb;
	before(async () => {
		ferret = await startRestartableFerretDb();
	});
	after(async () => {
		await stopEverything();
		await ferret?.destroy();
	});

	for (const scenario of SCENARIOS.filter((s) => s.quick)) {
		test(`${scenario.no}. ${scenario.title}`, { timeout: 180_000 }, async () => {
			const r = await runScenario(scenario, {
				size: QUICK_SIZE,
				ferret,
				log: (line) => console.log(line),
			});
			assertRow(r);
		});
	}
});
