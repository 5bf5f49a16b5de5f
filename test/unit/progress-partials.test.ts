/**
 * Progress of a job whose tasks are still running (issue 13, item 5): the records a running attempt
 * has reported (its partial progress) count in the job's records, expected records and ETA, and a
 * finished task of a source that does not page sizes its ZIP by what it saw.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { planJob } from "../../src/jobs/plan.ts";
import { jobProgress, progressBar } from "../../src/jobs/progress.ts";
import type { PartialProgress } from "../../src/jobs/source-contract.ts";
import { complete, lease } from "../../src/jobs/task-machine.ts";

const spec = { zips: ["85031", "85033"], county: false, sources: ["mls"], enrich: false, priority: 0 };
const throughput = () => ({ requestsPerSecond: null, concurrency: 2 });
const counts = (items: number) => ({
	items,
	new: items,
	updated: 0,
	unchanged: 0,
	requests: items + 1,
	failures: 0,
	storeRoundTrips: 0,
	gaps: 0,
});

describe("progress with running attempts", () => {
	test("a running task's reported records count, with what it expects and an ETA", () => {
		const { job, tasks } = planJob("j", spec, 0, "t");
		tasks[0] = lease(tasks[0]!, "a1", 0);
		const partials = new Map<string, PartialProgress>([
			[tasks[0]!.id, { counts: counts(4), expectItems: 10 }],
		]);
		const before = jobProgress(job, tasks, 10_000, throughput);
		assert.equal(before.items.done, 0, "without partial progress nothing shows until a task ends");
		assert.equal(before.etaS, null);
		const p = jobProgress(job, tasks, 10_000, throughput, partials);
		assert.equal(p.items.done, 4);
		assert.equal(p.counts.new, 4);
		// 10 expected in the running ZIP, the other ZIP guessed alike.
		assert.equal(p.items.expected, 20);
		assert.ok(p.etaS !== null && p.etaS > 0, `an ETA: ${p.etaS}`);
		assert.match(progressBar(p), /4\/20 records/);
	});

	test("a finished task of a source that does not page sizes its ZIP by its records", () => {
		const { job, tasks } = planJob("j", spec, 0, "t");
		tasks[0] = complete(lease(tasks[0]!, "a1", 0), counts(12), 5_000);
		tasks[1] = lease(tasks[1]!, "a2", 5_000);
		const partials = new Map<string, PartialProgress>([
			[tasks[1]!.id, { counts: counts(3), expectItems: 8 }],
		]);
		const p = jobProgress(job, tasks, 10_000, throughput, partials);
		assert.equal(p.items.done, 15);
		assert.equal(p.items.expected, 20);
	});
});
