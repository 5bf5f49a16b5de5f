/** Pure job logic: planning and input checks, the task state machine, backoff, progress and ETA. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { taskLeaseKey } from "../../src/jobs/ledger.ts";
import { classify, Orchestrator } from "../../src/jobs/orchestrator.ts";
import { PlanError, pageTasks, planJob, validateRequest } from "../../src/jobs/plan.ts";
import { estimateSeconds, formatDuration, jobProgress, progressBar } from "../../src/jobs/progress.ts";
import { parseCollectCommand } from "../../src/jobs/repl.ts";
import {
	claimKey,
	parseSourceResult,
	runSourceTask,
	TaskAbandonedError,
} from "../../src/jobs/source-contract.ts";
import {
	backoffMs,
	cancel,
	complete,
	deadLetterOf,
	fail,
	isDispatchable,
	jobOutcome,
	lease,
	phaseOpen,
	revive,
} from "../../src/jobs/task-machine.ts";
import type { Task } from "../../src/jobs/types.ts";
import { MemorySharedState } from "../../src/shared-state/index.ts";
import { sleep } from "../../src/utils/time.ts";

const policy = { maxAttempts: 3, backoffBaseMs: 1000, backoffMaxMs: 8000 };
const counts = {
	items: 10,
	new: 4,
	updated: 1,
	unchanged: 5,
	requests: 3,
	failures: 0,
	storeRoundTrips: 0,
	gaps: 0,
};
const spec = {
	zips: ["85031", "85033"],
	county: false,
	sources: ["maricopa", "mls"],
	enrich: false,
	priority: 0,
};

describe("planning", () => {
	test("source x ZIP tasks, interleaved by ZIP, plus enrichment per ZIP", () => {
		const { job, tasks } = planJob("j1", { ...spec, enrich: true }, 1000, "test");
		assert.deepEqual(
			tasks.map((t) => t.id),
			[
				"j1/maricopa/85031",
				"j1/mls/85031",
				"j1/maricopa/85033",
				"j1/mls/85033",
				"j1/enrich/85031",
				"j1/enrich/85033",
			],
		);
		assert.equal(job.status, "running");
		assert.equal(job.taskCount, tasks.length);
		assert.ok(tasks.every((t) => t.page === 1));
		assert.ok(tasks.every((t) => t.state === "pending" && t.attempts === 0));
	});

	test("requests are checked and normalized; every problem is named", () => {
		assert.deepEqual(validateRequest({ zips: ["85031", " 85031 "] }, ["maricopa"], ["maricopa"], false), {
			zips: ["85031"],
			county: false,
			sources: ["maricopa"],
			enrich: false,
			priority: 0,
		});
		try {
			validateRequest(
				{ zips: ["8503x"], sources: ["zillow"], enrich: true },
				["maricopa"],
				["maricopa"],
				false,
			);
			assert.fail("should refuse");
		} catch (err) {
			assert.ok(err instanceof PlanError);
			assert.equal(err.problems.length, 3);
			assert.match(err.message, /malformed ZIP code\(s\) '8503x'/);
			assert.match(err.message, /unknown or unavailable source\(s\) 'zillow' \(available: maricopa\)/);
			assert.match(err.message, /no llm service/);
		}
		assert.throws(
			() => validateRequest({ zips: [] }, ["maricopa"], ["maricopa"], false),
			/no ZIP codes given/,
		);
		assert.throws(() => validateRequest({ zips: ["85031"] }, [], [], false), /no source service is running/);
	});

	test("an empty source list with enrich plans enrichment tasks only", () => {
		const spec = validateRequest({ zips: ["85031", "85033"], sources: [], enrich: true }, [], [], true);
		assert.deepEqual(spec.sources, []);
		const { tasks } = planJob("j", spec, 0, "t");
		assert.deepEqual(
			tasks.map((t) => [t.kind, t.id]),
			[
				["enrich", "j/enrich/85031"],
				["enrich", "j/enrich/85033"],
			],
		);
		assert.ok(
			tasks.every((t) => phaseOpen(t, tasks)),
			"no collect task to wait for",
		);
		// Without enrich an empty list still means the default sources, and none running is refused.
		assert.throws(() => validateRequest({ zips: ["85031"], sources: [] }, [], [], true), /no source service/);
		assert.throws(
			() => validateRequest({ zips: ["85031"], sources: [], enrich: true }, [], [], false),
			/no llm service/,
		);
	});
});

describe("county and pages", () => {
	test("county: every configured ZIP; not with ZIPs; malformed input is never echoed whole", () => {
		const county = validateRequest({ county: true }, ["maricopa"], ["maricopa"], false, ["85031", "85033"]);
		assert.deepEqual([county.zips, county.county], [["85031", "85033"], true]);
		assert.throws(
			() => validateRequest({ county: true, zips: ["85031"] }, ["maricopa"], ["maricopa"], false, ["85031"]),
			/ZIP codes or county, not both/,
		);
		const huge = "9".repeat(100_000);
		try {
			validateRequest({ zips: [huge, "x", "y", "z", "w", "v", "u"] }, ["maricopa"], ["maricopa"], false);
			assert.fail("expected a PlanError");
		} catch (err) {
			assert.ok(err instanceof PlanError);
			assert.ok(err.message.length < 300, `message of ${err.message.length} chars`);
			assert.match(err.message, /and 2 more/);
		}
	});

	test("page 1 plans the ZIP's other pages, with stable ids", () => {
		const { tasks } = planJob("j", { ...spec, sources: ["maricopa"] }, 0, "t");
		const pages = pageTasks(tasks[0]!, 3);
		assert.deepEqual(
			pages.map((t) => [t.id, t.page, t.zip, t.state]),
			[
				["j/maricopa/85031/p2", 2, "85031", "pending"],
				["j/maricopa/85031/p3", 3, "85031", "pending"],
			],
		);
		assert.deepEqual(pageTasks(tasks[0]!, 1), []);
	});

	test("per-record progress: records against the sizes page 1 reported, unsized ZIPs estimated", () => {
		const { job, tasks } = planJob("j", { ...spec, sources: ["maricopa"] }, 0, "t");
		const first = {
			...complete(lease(tasks[0]!, "x", 0), { ...counts, items: 1000, requests: 10 }, 10_000),
			expect: { items: 2500, pages: 3 },
		};
		const all = [first, tasks[1]!, ...pageTasks(first, 3)];
		const p = jobProgress(job, all, 10_000, () => ({ requestsPerSecond: null, concurrency: 2 }));
		// 85031 said 2,500; 85033 is unsized: estimated like the sized one.
		assert.deepEqual(p.items, { done: 1000, expected: 5000 });
		assert.equal(p.fraction, 0.2);
		assert.equal(p.itemsPerS, 100);
		assert.match(progressBar(p, 10), /20% 1,000\/5,000 records {2}1\/4 tasks/);
		// 4,000 records left at 100 a second observed: 40 s; at 0.01 requests a record and 0.1/s: 400 s.
		assert.equal(p.etaS, 40);
		assert.equal(
			estimateSeconds(all, 10_000, () => ({ requestsPerSecond: 0.1, concurrency: 2 })),
			400,
		);
	});
});

describe("task state machine", () => {
	const fresh = (): Task => planJob("j", spec, 0, "t").tasks[0];

	test("lease, complete", () => {
		const t = lease(fresh(), "tok", 100);
		assert.equal(t.state, "leased");
		assert.equal(t.attempts, 1);
		assert.equal(t.leaseToken, "tok");
		assert.throws(() => lease(t, "x", 100), /not pending/);
		const done = complete(t, counts, 200);
		assert.equal(done.state, "done");
		assert.equal(done.leaseToken, null);
		assert.deepEqual(done.counts, counts);
	});

	test("failures back off, then become a dead letter with their reasons", () => {
		let t = lease(fresh(), "a", 0);
		t = fail(t, { message: "boom 1", retryable: false, permanent: false, node: "n1" }, 1000, policy, 0.5);
		assert.equal(t.state, "pending");
		assert.ok(t.notBefore >= 1500 && t.notBefore <= 2000, `notBefore ${t.notBefore}`);
		assert.equal(isDispatchable(t, 1000), false);
		assert.equal(isDispatchable(t, t.notBefore), true);
		t = fail(
			lease(t, "b", 2000),
			{ message: "node gone", retryable: true, permanent: false, node: "n2" },
			2000,
			policy,
			0.5,
		);
		assert.equal(t.notBefore, 3000, "a dead node is retried soon, not after the backoff");
		t = fail(
			lease(t, "c", 3000),
			{ message: "boom 3", retryable: false, permanent: false, node: "n3" },
			3000,
			policy,
			0.5,
		);
		assert.equal(t.state, "dead");
		assert.deepEqual(deadLetterOf(t).reasons, [
			"attempt 1 on n1: boom 1",
			"attempt 2 on n2: node gone",
			"attempt 3 on n3: boom 3",
		]);
		const revived = revive(t);
		assert.equal(revived.state, "pending");
		assert.equal(revived.attempts, 0);
	});

	test("a permanent failure is a dead letter at once", () => {
		const t = fail(
			lease(fresh(), "a", 0),
			{ message: "bad", retryable: false, permanent: true, node: null },
			0,
			policy,
			0,
		);
		assert.equal(t.state, "dead");
		assert.equal(t.attempts, 1);
	});

	test("a dependency that is down (the store) gives the attempt back and waits, never a dead letter", () => {
		let t = fresh();
		for (let i = 0; i < 10; i++) {
			t = lease(t, "tok", i * 1000);
			t = fail(
				t,
				{ message: "store unavailable", retryable: false, permanent: false, dependency: true, node: "w" },
				i * 1000,
				policy,
				0.999,
			);
			assert.equal(t.state, "pending");
		}
		assert.equal(t.deferrals, 10);
		// The wait grows with the deferrals, up to the cap.
		assert.ok(t.notBefore - 9000 > policy.backoffMaxMs * 0.99 && t.notBefore - 9000 <= policy.backoffMaxMs);
		// A real failure after that still has its whole attempt budget.
		t = fail(
			lease(t, "tok", 0),
			{ message: "boom", retryable: false, permanent: false, node: "w" },
			0,
			policy,
			0,
		);
		assert.equal(t.state, "pending");
		assert.deepEqual(
			classify({ name: "MoleculerRetryableError", type: "STORE_UNAVAILABLE", code: 503 }, "w").dependency,
			true,
		);
	});

	test("backoff doubles, is capped, and jitters within [half, full]", () => {
		assert.equal(backoffMs(1, policy, 0), 500);
		assert.equal(backoffMs(1, policy, 0.999999), 1000);
		assert.equal(backoffMs(3, policy, 0), 2000);
		assert.equal(backoffMs(10, policy, 0.999999), 8000);
	});

	test("job outcome and phases", () => {
		const { job, tasks } = planJob("j", { ...spec, enrich: true }, 0, "t");
		assert.equal(jobOutcome(job, tasks), "running");
		const enrich = tasks.find((t) => t.kind === "enrich") as Task;
		assert.equal(phaseOpen(enrich, tasks), false);
		const collected = tasks.map((t) => (t.kind === "collect" ? complete(lease(t, "x", 0), counts, 1) : t));
		assert.equal(phaseOpen(enrich, collected), true);
		const allDone = collected.map((t) => (t.state === "pending" ? complete(lease(t, "x", 0), counts, 1) : t));
		assert.equal(jobOutcome(job, allDone), "completed");
		const oneDead = allDone.map((t, i) => (i === 0 ? { ...t, state: "dead" as const } : t));
		assert.equal(jobOutcome(job, oneDead), "completed_with_errors");
		// Never a false "completed": a done task that could not collect a record is an error too.
		const lostRecord = allDone.map((t, i) => (i === 0 ? { ...t, counts: { ...counts, failures: 1 } } : t));
		assert.equal(jobOutcome(job, lostRecord), "completed_with_errors");
		assert.equal(
			jobOutcome(
				job,
				allDone.map((t) => ({ ...t, state: "dead" as const })),
			),
			"failed",
		);
		const cancelling = { ...job, status: "cancelling" as const };
		const leasedOne = tasks.map((t, i) => (i === 0 ? lease(t, "x", 0) : cancel(t, 0)));
		assert.equal(jobOutcome(cancelling, leasedOne), "cancelling");
		assert.equal(
			jobOutcome(
				cancelling,
				leasedOne.map((t) => cancel(t, 1)),
			),
			"cancelled",
		);
	});

	test("errors are classified: node gone, refused, transient", () => {
		assert.deepEqual(
			[classify({ name: "RequestRejectedError", retryable: true, code: 503 }, "n")].map((c) => [
				c.retryable,
				c.permanent,
			]),
			[[true, false]],
		);
		assert.equal(classify({ name: "ValidationError", code: 422 }, null).permanent, true);
		assert.equal(classify({ name: "MoleculerError", code: 429 }, null).permanent, false);
		const timeout = classify({ name: "RequestTimeoutError", retryable: true, code: 504 }, null);
		assert.deepEqual([timeout.retryable, timeout.permanent], [false, false]);
		assert.equal(classify(new Error("x"), null).permanent, false);
	});
});

describe("source results", () => {
	test("accepts parcels/listings/items and defaults optional counts", () => {
		assert.deepEqual(parseSourceResult({ parcels: 3, new: 1, updated: 1, unchanged: 1 }), {
			counts: {
				items: 3,
				new: 1,
				updated: 1,
				unchanged: 1,
				requests: 0,
				failures: 0,
				storeRoundTrips: 0,
				gaps: 0,
			},
			expect: null,
			failed: [],
		});
		const withFailures = parseSourceResult({
			parcels: 3,
			new: 1,
			updated: 0,
			unchanged: 0,
			failures: 2,
			failed: [
				{ apn: "10306005", reason: "HTTP 500 after 5 attempts" },
				{ mlsId: "6543210", reason: "blocked" },
			],
		});
		assert.deepEqual(typeof withFailures === "object" && withFailures.failed, [
			{ id: "10306005", reason: "HTTP 500 after 5 attempts" },
			{ id: "6543210", reason: "blocked" },
		]);
		const listed = parseSourceResult({ listings: 2, new: 2, updated: 0, unchanged: 0 });
		assert.equal(typeof listed === "object" && listed.counts.items, 2);
		const paged = parseSourceResult({
			parcels: 1000,
			new: 1000,
			updated: 0,
			unchanged: 0,
			expect: { items: 2500, pages: 3 },
		});
		assert.deepEqual(typeof paged === "object" && paged.expect, { items: 2500, pages: 3 });
	});
	test("a malformed answer is named, not trusted", () => {
		assert.match(parseSourceResult(null) as string, /not an object/);
		assert.match(
			parseSourceResult({ parcels: -1, new: "2", updated: 0, unchanged: 0 }) as string,
			/'parcels' is -1, 'new' is "2"/,
		);
		assert.match(
			parseSourceResult({
				parcels: 1,
				new: 1,
				updated: 0,
				unchanged: 0,
				expect: { items: 5, pages: -1 },
			}) as string,
			/'expect' is/,
		);
	});
});

describe("progress and ETA", () => {
	const throughput = () => ({ requestsPerSecond: null, concurrency: 2 });

	test("counts by state, source and ZIP", () => {
		const { job, tasks } = planJob("j", spec, 0, "t");
		tasks[0] = complete(lease(tasks[0], "x", 0), counts, 10_000);
		tasks[1] = lease(tasks[1], "y", 0);
		const p = jobProgress(job, tasks, 20_000, throughput);
		assert.deepEqual(p.tasks, { pending: 2, leased: 1, done: 1, dead: 0, cancelled: 0, total: 4 });
		assert.equal(p.fraction, 0.25);
		assert.deepEqual(p.counts, counts);
		assert.equal(p.bySource.maricopa.tasks.done, 1);
		assert.equal(p.bySource.mls.tasks.leased, 1);
		assert.deepEqual(p.byZip["85033"], { pending: 2, leased: 0, done: 0, dead: 0, cancelled: 0 });
		assert.equal(p.elapsedS, 20);
		assert.match(progressBar(p, 8), /^\[##------\] 25% 10 records {2}1\/4 tasks \(4 new, 1 updated\)/);
	});

	test("enrichment is counted apart from the collected records", () => {
		const { job, tasks } = planJob("j", { ...spec, sources: ["maricopa"], enrich: true }, 0, "t");
		const enrichIndex = tasks.findIndex((t) => t.kind === "enrich");
		const collectIndex = tasks.findIndex((t) => t.kind === "collect");
		tasks[collectIndex] = complete(lease(tasks[collectIndex]!, "x", 0), counts, 10_000);
		const enrichCounts = { ...counts, items: 10, new: 10, updated: 0, unchanged: 0 };
		tasks[enrichIndex] = complete(lease(tasks[enrichIndex]!, "y", 0), enrichCounts, 12_000);
		const p = jobProgress(job, tasks, 20_000, throughput);
		assert.deepEqual(p.counts, counts);
		assert.deepEqual(p.enriched, enrichCounts);
		assert.deepEqual(p.bySource.llm?.counts, enrichCounts);
		assert.match(progressBar(p, 8), /\(4 new, 1 updated\), 10 enriched/);
		// Without enrichment tasks there is nothing to report.
		const plain = planJob("k", spec, 0, "t");
		assert.equal(jobProgress(plain.job, plain.tasks, 0, throughput).enriched, null);
	});

	test("ETA: unknown before any task finished; observed speed; the rate budget when slower", () => {
		const { tasks } = planJob("j", { ...spec, sources: ["maricopa"] }, 0, "t");
		assert.equal(estimateSeconds(tasks, 0, throughput), null);
		tasks[0] = complete(lease(tasks[0], "x", 0), { ...counts, requests: 100 }, 10_000);
		// One task left, 10 s each, concurrency 2 (but only one left): 10 s.
		assert.equal(estimateSeconds(tasks, 10_000, throughput), 10);
		// 100 requests per task at 2 requests/s: 50 s, slower than observed.
		assert.equal(
			estimateSeconds(tasks, 10_000, () => ({ requestsPerSecond: 2, concurrency: 2 })),
			50,
		);
		assert.equal(formatDuration(3725), "1h02m");
		assert.equal(formatDuration(75), "1m15s");
	});
});

describe("REPL", () => {
	test("collect command line: ZIPs, --sources, --enrich", () => {
		assert.deepEqual(parseCollectCommand("collect 85031 85033 --sources maricopa,mls"), {
			zips: ["85031", "85033"],
			sources: ["maricopa", "mls"],
			enrich: false,
		});
		assert.deepEqual(parseCollectCommand("collect 85031,85008 -s mls --enrich"), {
			zips: ["85031", "85008"],
			sources: ["mls"],
			enrich: true,
		});
		assert.deepEqual(parseCollectCommand("collect 85031 --sources=maricopa"), {
			zips: ["85031"],
			sources: ["maricopa"],
			enrich: false,
		});
		assert.deepEqual(parseCollectCommand("collect --county --sources maricopa"), {
			zips: [],
			sources: ["maricopa"],
			enrich: false,
			county: true,
		});
	});
});

describe("orchestrator engine on memory state", () => {
	const settings = {
		maxAttempts: 3,
		backoffBaseMs: 10,
		backoffMaxMs: 100,
		taskLeaseMs: 5000,
		taskTimeoutMs: 60_000,
		leaderTtlMs: 5000,
		tickMs: 50,
		retentionMs: 3_600_000,
		concurrency: () => 1,
		countyZips: ["85031", "85033"],
		requestsPerSecond: () => null,
	};
	const quiet = { info() {}, warn() {}, error() {}, debug() {} };
	/** An engine on `state` with one worker, w1, answering calls with `call`. */
	const engineOn = (
		state: MemorySharedState,
		call: (action: string, params: Record<string, unknown>) => Promise<unknown>,
		overrides: Partial<typeof settings> & { dispatchGraceMs?: number } = {},
	) =>
		new Orchestrator({
			state,
			nodeId: "n1",
			settings: { ...settings, ...overrides },
			endpoints: () => ["w1"],
			call,
			nodeAlive: () => true,
			availableSources: () => ["maricopa"],
			enrichAvailable: () => false,
			broadcast: () => {},
			logger: quiet,
		});

	test("tasks in flight: per node, but no more than the source's budget can serve", async () => {
		const state = new MemorySharedState();
		const calls: string[] = [];
		const make = (rps: number | null) =>
			new Orchestrator({
				state,
				nodeId: "n1",
				settings: { ...settings, concurrency: () => 4, requestsPerSecond: () => rps, taskTimeoutMs: 60_000 },
				endpoints: () => ["w1", "w2"],
				call: (_action, params) => {
					calls.push(String(params.taskId));
					return new Promise(() => {});
				},
				nodeAlive: () => true,
				availableSources: () => ["maricopa"],
				enrichAvailable: () => false,
				broadcast: () => {},
				logger: quiet,
			});
		const zips = Array.from({ length: 12 }, (_, i) => String(85001 + i));
		// Unlimited budget: 4 per node, 2 nodes.
		let engine = make(null);
		await engine.collect({ zips, sources: ["maricopa"] });
		await engine.tick();
		assert.equal(calls.length, 8);
		await engine.stop();
		// 100 requests/s for 60 s tasks of ~1,000 requests: 3 at once finish within half the timeout.
		calls.length = 0;
		for (const key of await state.keys("")) await state.del(key);
		engine = make(100);
		await engine.collect({ zips, sources: ["maricopa"] });
		await engine.tick();
		assert.equal(calls.length, 3);
		await engine.stop();
		await state.close();
	});

	test("a ledger wiped under the leader (Redis restarted empty) is written back from its memory", async () => {
		const state = new MemorySharedState();
		const calls: string[] = [];
		// Workers never answer here: the tasks stay leased.
		const engine = engineOn(state, (_action, params) => {
			calls.push(String(params.taskId));
			return new Promise(() => {});
		});
		try {
			const { job } = await engine.collect({ county: true, sources: ["maricopa"] });
			await engine.tick();
			assert.equal(engine.isLeader, true);
			assert.equal(calls.length, 1, "one task leased (concurrency 1)");
			const running = (await engine.status(job.id, true)).tasks?.find((t) => t.state === "leased");
			assert.ok(running?.leaseToken);
			// Redis restarted without persistence: every key is gone.
			for (const key of await state.keys("")) await state.del(key);
			await engine.tick();
			await engine.tick();
			const back = await engine.status(job.id, true);
			assert.equal(back.job.id, job.id);
			assert.equal(back.tasks?.length, 2);
			assert.ok(back.tasks?.every((t) => t.state === "pending" || t.state === "leased"));
			// The attempt on its worker runs on under the same lease: it is not dispatched a second time.
			const kept = back.tasks?.find((t) => t.id === running.id);
			assert.equal(kept?.state, "leased");
			assert.equal(kept?.leaseToken, running.leaseToken);
			assert.equal(calls.length, 1, "the running attempt is not started again");
			assert.equal(await state.acquire(taskLeaseKey(running.id), 1000), null, "its lease is held again");
			assert.deepEqual(
				(await engine.list(5)).map((p) => p.jobId),
				[job.id],
			);
		} finally {
			await engine.stop();
			await state.close();
		}
	});
	test("a call no worker claimed is presumed lost in transit and dispatched again; a claimed one runs on", async () => {
		const state = new MemorySharedState();
		const calls: { taskId: string; attempt: string }[] = [];
		// The first call vanishes (never reaches a worker); the second is claimed and keeps running.
		const engine = engineOn(
			state,
			(_action, params) => {
				calls.push({ taskId: String(params.taskId), attempt: String(params.attempt) });
				if (calls.length > 1) void state.setIfAbsent(claimKey(String(params.attempt)), "started");
				return new Promise(() => {});
			},
			{ taskLeaseMs: 600, dispatchGraceMs: 300 },
		);
		try {
			await engine.collect({ zips: ["85031"], sources: ["maricopa"] });
			await engine.tick();
			assert.equal(calls.length, 1);
			for (let i = 0; i < 40 && calls.length < 2; i++) {
				await sleep(50);
				await engine.tick();
			}
			assert.equal(calls.length, 2, "dispatched again after the grace");
			assert.equal(calls[1]!.taskId, calls[0]!.taskId);
			assert.notEqual(calls[1]!.attempt, calls[0]!.attempt, "as a new attempt");
			assert.equal(await state.get(claimKey(calls[0]!.attempt)), "lost");
			// The second attempt was claimed by its worker: well past the grace, it is not dispatched again.
			for (let i = 0; i < 20; i++) {
				await sleep(50);
				await engine.tick();
			}
			assert.equal(calls.length, 2);
			assert.equal(await state.get(claimKey(calls[1]!.attempt)), "started");
		} finally {
			await engine.stop();
			await state.close();
		}
	});

	test("a source never starts an attempt declared lost; the same call delivered twice runs", async () => {
		const state = new MemorySharedState();
		let worked = 0;
		const work = async () => {
			worked++;
			return { items: 0 };
		};
		await state.set(claimKey("a1"), "lost");
		await assert.rejects(runSourceTask(state, { jobId: "j", attempt: "a1" }, work), TaskAbandonedError);
		assert.equal(worked, 0, "nothing of a lost call runs");
		await state.set(claimKey("a2"), "started");
		await runSourceTask(state, { jobId: "j", attempt: "a2" }, work);
		await runSourceTask(state, { jobId: "j", attempt: "a3" }, work);
		assert.equal(worked, 2);
		assert.equal(await state.get(claimKey("a3")), "started", "a new attempt is claimed by its worker");
		await state.close();
	});
});
