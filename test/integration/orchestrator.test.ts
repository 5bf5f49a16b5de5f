/**
 * The orchestrator on one embedded node (memory shared state, no transporter) with a fixture source
 * that collects from the sandbox's GIS simulator over real HTTP: a job completes with every parcel
 * of the ground truth stored once; bad input is refused; cancel stops a job; a ZIP that keeps failing
 * ends as a dead letter. Then the real maricopa source, store and llm enricher: a job with enrich
 * leaves every property of its ZIP enriched.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Errors } from "moleculer";
import type { Sandbox } from "../../sandbox/index.ts";
import { startSandbox } from "../../sandbox/index.ts";
import { loadConfig } from "../../src/config/index.ts";
import type { JobStatusView } from "../../src/jobs/orchestrator.ts";
import type { JobProgress } from "../../src/jobs/progress.ts";
import { type RunningNode, startNode } from "../../src/node/start-node.ts";
import { waitFor } from "../../src/utils/time.ts";

const FIXTURE = resolve(import.meta.dirname, "../fixtures/fixture-source.service.ts");
const ZIPS = ["85031", "85033", "85008"];

describe("orchestrator (embedded)", () => {
	let sandbox: Sandbox;
	let node: RunningNode;
	const call = <T>(action: string, params: object = {}) => node.broker.call(action, params) as Promise<T>;

	before(async () => {
		sandbox = await startSandbox({ world: { zips: ZIPS, parcelsPerZip: 40 } });
		Object.assign(process.env, {
			FIXTURE_SOURCE_NAME: "fixture",
			FIXTURE_GIS_URL: sandbox.urls.gis,
			FIXTURE_PAGE_SIZE: "10",
			FIXTURE_PAGE_DELAY_MS: "20",
			FIXTURE_FAIL_ZIPS: "85008",
		});
		const config = loadConfig({
			NODE_ID: "orch-embedded",
			SERVICES: "orchestrator",
			LOG_LEVEL: "warn",
			METRICS_PORT: "0",
			HEALTH_PORT: "0",
			ORCHESTRATOR_TICK_MS: "100",
			ORCHESTRATOR_BACKOFF_BASE_MS: "100",
			ORCHESTRATOR_MAX_ATTEMPTS: "2",
		});
		node = await startNode(config, { extraServiceFiles: [FIXTURE] });
	});

	after(async () => {
		await node?.stop();
		await sandbox?.stop();
	});

	const finished = (id: string, timeoutMs = 30_000) =>
		waitFor(
			async () => {
				const s = await call<JobStatusView>("orchestrator.status", { id });
				return ["running", "cancelling"].includes(s.job.status) ? null : s;
			},
			`job ${id} to finish`,
			timeoutMs,
			100,
		);

	test("a job collects every parcel of its ZIPs exactly once", async () => {
		const started = await call<JobStatusView>("orchestrator.collect", { zips: ["85031", "85033"] });
		assert.equal(started.job.status, "running");
		assert.deepEqual(started.job.spec.sources, ["fixture"]);
		const done = await finished(started.job.id);
		assert.equal(done.job.status, "completed");
		const truth = sandbox.world.parcels.filter((p) => ["85031", "85033"].includes(p.zip)).map((p) => p.apn);
		const stored = (await node.context.state.keys("fixture:prop:")).map((k) =>
			k.slice("fixture:prop:".length),
		);
		assert.deepEqual(stored.sort(), [...truth].sort());
		assert.equal(done.progress.counts.items, truth.length);
		assert.equal(done.progress.counts.new, truth.length);
		assert.equal(done.progress.tasks.done, 2);
		assert.equal(done.progress.bySource.fixture.counts.requests > 0, true);

		// Running the same ZIPs again changes nothing: the writes are idempotent.
		const again = await finished(
			(await call<JobStatusView>("orchestrator.collect", { zips: ["85031"] })).job.id,
		);
		assert.equal(again.progress.counts.new, 0);
		assert.equal(again.progress.counts.unchanged, sandbox.world.byZip.get("85031")?.length);
		const jobs = await call<JobProgress[]>("orchestrator.list");
		assert.ok(jobs.some((j) => j.jobId === started.job.id && j.status === "completed"));
	});

	test("bad input is refused with a clear message", async () => {
		const refused = async (params: object, pattern: RegExp) => {
			await assert.rejects(call("orchestrator.collect", params), (err: Errors.MoleculerError) => {
				assert.equal(err.code, 422);
				assert.match(`${err.message} ${JSON.stringify(err.data)}`, pattern);
				return true;
			});
		};
		await refused(
			{ zips: ["85031"], sources: ["zillow"] },
			/unknown or unavailable source\(s\) 'zillow' \(available: fixture\)/,
		);
		await refused({ zips: ["8503"] }, /malformed ZIP code\(s\) '8503'/);
		await refused({ zips: ["85031", "abcde"] }, /malformed ZIP code\(s\) 'abcde'/);
		await refused({ zips: [] }, /zips/);
		await refused({ zips: ["85031"], enrich: true }, /no llm service/);
		assert.equal(
			(await call<JobProgress[]>("orchestrator.list", { limit: 500 })).length,
			2,
			"nothing planned",
		);
	});

	test("a ZIP that keeps failing becomes a dead letter with its reasons", async () => {
		const started = await call<JobStatusView>("orchestrator.collect", { zips: ["85008", "85033"] });
		const done = await finished(started.job.id);
		assert.equal(done.job.status, "completed_with_errors");
		assert.equal(done.job.deadLetters.length, 1);
		const [letter] = done.job.deadLetters;
		assert.equal(letter.zip, "85008");
		assert.equal(letter.attempts, 2);
		assert.equal(letter.reasons.length, 2);
		assert.match(letter.reasons[0], /ZIP 85008 always fails/);

		// Retry puts the dead letter back; it fails again and the job ends the same way.
		const retried = await call<JobStatusView>("orchestrator.retry", { id: started.job.id });
		assert.equal(retried.job.id, started.job.id);
		const again = await finished(started.job.id);
		assert.equal(again.job.status, "completed_with_errors");
		assert.equal(again.progress.tasks.done, 1);
	});

	test("cancel stops a running job and leaves whole records only", async () => {
		process.env.FIXTURE_PAGE_DELAY_MS = "600";
		const slowZip = "85031";
		// A slow collection: the fixture sleeps between pages, so the job is mid-flight when cancelled.
		const started = await call<JobStatusView>("orchestrator.collect", {
			zips: [slowZip, "85033"],
			priority: 1,
		});
		await waitFor(
			async () =>
				(await call<JobStatusView>("orchestrator.status", { id: started.job.id })).progress.tasks.leased > 0,
			"a task to be running",
			10_000,
			20,
		);
		await call("orchestrator.cancel", { id: started.job.id });
		const done = await finished(started.job.id, 10_000);
		assert.equal(done.job.status, "cancelled");
		assert.equal(done.progress.tasks.leased + done.progress.tasks.pending, 0);
		// Every stored record is whole (the fixture writes one key per parcel, atomically).
		const stored = await node.context.state.getMany<{ apn: string; zip: string }>(
			await node.context.state.keys("fixture:prop:"),
		);
		assert.ok(stored.every((r) => r && /^\d{8}[A-Z]?$/.test(r.apn) && /^\d{5}$/.test(r.zip)));
	});
});

describe("orchestrator (embedded) with the maricopa source, the store and the llm enricher", () => {
	const ZIP = "85301";
	let sandbox: Sandbox;
	let node: RunningNode;
	let dataDir: string;
	const call = <T>(action: string, params: object = {}) => node.broker.call(action, params) as Promise<T>;

	before(async () => {
		sandbox = await startSandbox({ seed: 23, world: { zips: [ZIP], parcelsPerZip: 15 } });
		dataDir = await mkdtemp(join(tmpdir(), "saguaro-orch-llm-"));
		node = await startNode(
			loadConfig({
				...sandbox.env,
				NODE_ID: "orch-llm",
				SERVICES: "orchestrator,store,maricopa,llm",
				DATA_DIR: dataDir,
				STORE_NEDB_COMPACT_S: "0",
				LOG_LEVEL: "warn",
				METRICS_PORT: "0",
				HEALTH_PORT: "0",
				ORCHESTRATOR_TICK_MS: "100",
				MARICOPA_RATE_PER_MIN: "600",
				MARICOPA_GIS_RATE_PER_MIN: "600",
				MARICOPA_RATE_WINDOW_S: "1",
				LLM_RATE_PER_MIN: "60000",
				LLM_MODEL: "sandbox-llm",
			}),
		);
	});

	after(async () => {
		await node?.stop();
		await sandbox?.stop();
		if (dataDir) await rm(dataDir, { recursive: true, force: true });
	});

	const finished = (id: string) =>
		waitFor(
			async () => {
				const s = await call<JobStatusView>("orchestrator.status", { id });
				return ["running", "cancelling"].includes(s.job.status) ? null : s;
			},
			`job ${id} to finish`,
			120_000,
			100,
		);

	test("collect with enrich: the ZIP's properties are collected, then each carries an enrichment", async () => {
		const started = await call<JobStatusView>("orchestrator.collect", {
			zips: [ZIP],
			sources: ["maricopa"],
			enrich: true,
		});
		const done = await finished(started.job.id);
		assert.equal(done.job.status, "completed", JSON.stringify(done.job.deadLetters));
		const parcels = sandbox.world.byZip.get(ZIP)?.length ?? 0;
		const { rows, total } = await call<{
			rows: { key: string; enrichment?: { processing: { source: string } } }[];
			total: number;
		}>("properties.find", { zip: ZIP, pageSize: 500 });
		assert.equal(total, parcels);
		assert.ok(
			rows.every((r) => r.enrichment?.processing.source === "llm"),
			"every property enriched by the LLM",
		);
		assert.equal(done.progress.bySource.llm?.counts.items, parcels);
		assert.equal(done.progress.bySource.llm?.counts.new, parcels);
		assert.equal(sandbox.llm.usage.requests, parcels);

		// The nightly schedule's job: enrichment only (no source), nothing left to do, no request.
		const nightly = await finished(
			(await call<JobStatusView>("orchestrator.collect", { zips: [ZIP], sources: [], enrich: true })).job.id,
		);
		assert.equal(nightly.job.status, "completed");
		assert.deepEqual(nightly.job.spec.sources, []);
		assert.equal(nightly.progress.enriched?.unchanged, parcels);
		assert.equal(nightly.progress.counts.items, 0, "no record collected");
		assert.equal(sandbox.llm.usage.requests, parcels);
	});
});

describe("orchestrator (embedded): an attempt that outlives its task timeout", () => {
	const ZIP = "85033";
	let sandbox: Sandbox;
	let node: RunningNode;
	const call = <T>(action: string, params: object = {}) => node.broker.call(action, params) as Promise<T>;

	before(async () => {
		sandbox = await startSandbox({ seed: 5, world: { zips: [ZIP], parcelsPerZip: 40 } });
		Object.assign(process.env, {
			FIXTURE_SOURCE_NAME: "fixture",
			FIXTURE_GIS_URL: sandbox.urls.gis,
			FIXTURE_PAGE_SIZE: "10",
			FIXTURE_PAGE_DELAY_MS: "800",
			FIXTURE_FAIL_ZIPS: "",
		});
		const config = loadConfig({
			NODE_ID: "orch-timeout",
			SERVICES: "orchestrator",
			LOG_LEVEL: "error",
			METRICS_PORT: "0",
			HEALTH_PORT: "0",
			ORCHESTRATOR_TICK_MS: "100",
			ORCHESTRATOR_BACKOFF_BASE_MS: "100",
			ORCHESTRATOR_MAX_ATTEMPTS: "4",
			// Four pages 800 ms apart outlast it: the first attempt times out mid-ZIP.
			ORCHESTRATOR_TASK_TIMEOUT_S: "1",
		});
		node = await startNode(config, { extraServiceFiles: [FIXTURE] });
	});

	after(async () => {
		process.env.FIXTURE_PAGE_DELAY_MS = "200";
		await node?.stop();
		await sandbox?.stop();
	});

	test("the timed-out attempt is stopped on its worker, and the retry completes the ZIP once", async () => {
		const started = await call<JobStatusView>("orchestrator.collect", { zips: [ZIP] });
		const [task] = (await call<JobStatusView>("orchestrator.status", { id: started.job.id, tasks: true }))
			.tasks ?? [{ id: "" }];
		await waitFor(
			async () => {
				const s = await call<JobStatusView>("orchestrator.status", { id: started.job.id, tasks: true });
				return (s.tasks?.find((t) => t.id === task?.id)?.attempts ?? 0) >= 2;
			},
			"a second attempt",
			30_000,
			50,
		);
		// The retry runs fast enough to finish within the timeout.
		process.env.FIXTURE_PAGE_DELAY_MS = "0";
		const done = await waitFor(
			async () => {
				const s = await call<JobStatusView>("orchestrator.status", { id: started.job.id, tasks: true });
				return ["running", "cancelling"].includes(s.job.status) ? null : s;
			},
			"the job to finish",
			30_000,
			100,
		);
		assert.equal(done.job.status, "completed", JSON.stringify(done.job.deadLetters));
		const errors = done.tasks?.[0]?.errors ?? [];
		assert.match(errors[0]?.message ?? "", /timed out/i);
		// The first attempt did not run on beside its retry: the worker stopped it.
		const state = node.context.state;
		await waitFor(
			async () => ((await state.get<number>("fixture:stopped:TaskAbandonedError")) ?? 0) >= 1,
			"the abandoned attempt to stop",
			10_000,
			50,
		);
		const truth = (sandbox.world.byZip.get(ZIP) ?? []).map((p) => p.apn).sort();
		const stored = (await state.keys("fixture:prop:")).map((k) => k.slice("fixture:prop:".length)).sort();
		assert.deepEqual(stored, truth);
	});
});
