/**
 * The orchestrator on one embedded node (memory shared state, no transporter) with a fixture source
 * that collects from the sandbox's GIS simulator over real HTTP: a job completes with every parcel
 * of the ground truth stored once; bad input is refused; cancel stops a job; a ZIP that keeps failing
 * ends as a dead letter.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
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
