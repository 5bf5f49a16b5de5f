/**
 * A county-wide collection on one embedded node against the sandbox: started over the REST API
 * (`{county: true}`) and by a schedule, planned as GIS page tasks (three a ZIP here), with
 * per-record progress and an ETA while it runs; every parcel of every county ZIP ends stored once
 * (read back by key), and a second sweep finds nothing changed and fetches no details.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Sandbox, startSandbox } from "../../sandbox/index.ts";
import { loadConfig } from "../../src/config/index.ts";
import type { JobStatusView } from "../../src/jobs/orchestrator.ts";
import type { JobProgress } from "../../src/jobs/progress.ts";
import { type RunningNode, startNode } from "../../src/node/start-node.ts";
import { waitFor } from "../../src/utils/time.ts";

const COUNTY = ["85031", "85033", "85008"];
const PARCELS_PER_ZIP = 45;
const PAGE_SIZE = 15;
const TOKEN = "county-test-token-5e21";

describe("county-wide collection (embedded)", () => {
	let sandbox: Sandbox;
	let node: RunningNode;
	let base: string;
	let dataDir: string;
	const call = <T>(action: string, params: object = {}) => node.broker.call(action, params) as Promise<T>;

	const post = async (path: string, body: unknown) => {
		const res = await fetch(`${base}${path}`, {
			method: "POST",
			headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
			body: JSON.stringify(body),
		});
		return { status: res.status, json: (await res.json()) as Record<string, unknown> };
	};

	before(async () => {
		dataDir = await mkdtemp(join(tmpdir(), "saguaro-county-"));
		sandbox = await startSandbox({ seed: 11, world: { zips: COUNTY, parcelsPerZip: PARCELS_PER_ZIP } });
		// Slow enough answers that the job is seen running, with records done and an ETA.
		sandbox.gis.faults.set({ latency: { minMs: 20, maxMs: 40 } });
		sandbox.maricopa.faults.set({ latency: { minMs: 5, maxMs: 15 } });
		const config = loadConfig({
			...sandbox.env,
			NODE_ID: "county-test",
			SERVICES: "api,store,orchestrator,scheduler,maricopa",
			DATA_DIR: dataDir,
			LOG_LEVEL: "warn",
			METRICS_PORT: "0",
			HEALTH_PORT: "0",
			API_PORT: "0",
			API_TOKENS: TOKEN,
			REPL: "off",
			COUNTY_ZIPS: COUNTY.join(","),
			MARICOPA_GIS_PAGE_SIZE: String(PAGE_SIZE),
			// 30 details a second: the sliding budget sends a whole window at once, so a looser budget
			// ends the job (135 parcels) before a poll can see it running.
			MARICOPA_RATE_PER_MIN: "30",
			MARICOPA_RATE_WINDOW_S: "1",
			MARICOPA_GIS_RATE_PER_MIN: "6000",
			ORCHESTRATOR_TICK_MS: "100",
			ORCHESTRATOR_CONCURRENCY_PER_SOURCE: "2",
			SCHEDULES: JSON.stringify([
				{ name: "county", cron: "0 2 * * 0", params: { county: true, sources: ["maricopa"] } },
			]),
		});
		node = await startNode(config);
		const api = node.broker.getLocalService("api") as unknown as { server: { address(): AddressInfo } };
		base = `http://127.0.0.1:${api.server.address().port}`;
	});

	after(async () => {
		await node?.stop();
		await sandbox?.stop();
		if (dataDir) await rm(dataDir, { recursive: true, force: true });
	});

	const finished = (id: string) =>
		waitFor(
			async () => {
				const s = await call<JobStatusView>("orchestrator.status", { id, tasks: true });
				return ["running", "cancelling"].includes(s.job.status) ? null : s;
			},
			`job ${id} to finish`,
			120_000,
			100,
		);

	/** Every stored property, read page by page by key. */
	async function storedApns(): Promise<string[]> {
		const apns: string[] = [];
		for (let afterKey: string | null = ""; afterKey !== null; ) {
			const res: { rows: { apn: string | null }[]; nextKey: string | null } = await call("properties.find", {
				afterKey,
				pageSize: 20,
			});
			apns.push(...res.rows.map((r) => r.apn ?? "(no apn)"));
			afterKey = res.nextKey;
		}
		return apns;
	}

	test("started over the API: page tasks, per-record progress with an ETA, every parcel once", async () => {
		const bad = await post("/api/jobs", { county: true, zips: ["85031"] });
		assert.equal(bad.status, 422);
		assert.match(JSON.stringify(bad.json), /ZIP codes or county, not both/);

		const started = await post("/api/jobs", { county: true, sources: ["maricopa"] });
		assert.equal(started.status, 200, JSON.stringify(started.json));
		const view = started.json as unknown as JobStatusView;
		assert.deepEqual(view.job.spec.zips, COUNTY);
		assert.equal(view.job.spec.county, true);
		const id = view.job.id;

		// While it runs: records against the ZIPs' sizes, and an ETA once records are done.
		const midway = await waitFor(
			async () => {
				const s = await call<JobStatusView>("orchestrator.status", { id });
				const p = s.progress;
				return p.status === "running" && p.items.done > 0 && p.items.expected !== null && p.etaS !== null
					? p
					: null;
			},
			"progress with records and an ETA",
			60_000,
			50,
		);
		assert.ok(midway.items.done < (midway.items.expected ?? 0));
		assert.ok(midway.fraction > 0 && midway.fraction < 1);

		const done = await finished(id);
		assert.equal(done.job.status, "completed", JSON.stringify(done.job.deadLetters));
		const pages = PARCELS_PER_ZIP / PAGE_SIZE;
		assert.equal(done.progress.tasks.total, COUNTY.length * pages, "a task per GIS page");
		assert.equal(done.progress.tasks.done, COUNTY.length * pages);
		assert.deepEqual(done.progress.items, {
			done: COUNTY.length * PARCELS_PER_ZIP,
			expected: COUNTY.length * PARCELS_PER_ZIP,
		});
		assert.equal(done.progress.fraction, 1);
		assert.ok(done.progress.counts.storeRoundTrips > 0, "store round trips are counted");
		const list = await call<JobProgress[]>("orchestrator.list", { limit: 5 });
		assert.equal(list.find((p) => p.jobId === id)?.items.done, COUNTY.length * PARCELS_PER_ZIP);

		const truth = COUNTY.flatMap((z) => (sandbox.world.byZip.get(z) ?? []).map((p) => p.apn)).sort();
		const stored = await storedApns();
		assert.deepEqual([...stored].sort(), truth, "every parcel of the county once");
	});

	test("a schedule starts the county sweep; nothing changed, so no detail is fetched again", async () => {
		const before = sandbox.maricopa.counters.stats().total;
		const firing = await call<{ result?: { jobId?: string }; error?: string }>("scheduler.trigger", {
			name: "county",
		});
		assert.ok(firing.result?.jobId, firing.error);
		const done = await finished(firing.result.jobId);
		assert.equal(done.job.status, "completed");
		assert.equal(done.job.spec.county, true);
		assert.equal(done.job.origin, "schedule:county");
		assert.equal(done.progress.counts.unchanged, COUNTY.length * PARCELS_PER_ZIP);
		assert.equal(done.progress.counts.new + done.progress.counts.updated, 0);
		assert.equal(sandbox.maricopa.counters.stats().total, before, "no REST request: details are fresh");
	});
});
