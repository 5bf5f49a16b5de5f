/**
 * Prometheus figures of the work (issue 13, item 10), read from a node's real /metrics endpoint
 * after a sandbox job: jobs by status, tasks by source and state, records collected by source, and
 * requests by host and source (the MLS site's included).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Sandbox, startSandbox } from "../../sandbox/index.ts";
import { loadConfig } from "../../src/config/index.ts";
import type { JobStatusView } from "../../src/jobs/orchestrator.ts";
import { TERMINAL_JOB_STATUSES } from "../../src/jobs/types.ts";
import { type RunningNode, startNode } from "../../src/node/start-node.ts";
import { freePort } from "../../src/utils/net.ts";
import { waitFor } from "../../src/utils/time.ts";

const ZIP = "85031";

/** The value of one series of a Prometheus text answer, or null when absent. */
function series(text: string, name: string, labels: Record<string, string>): number | null {
	for (const line of text.split("\n")) {
		if (!line.startsWith(`${name}{`)) continue;
		const inner = line.slice(name.length + 1, line.indexOf("}"));
		const got = Object.fromEntries([...inner.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
		if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(line.split(" ").at(-1));
	}
	return null;
}

describe("Prometheus metrics of jobs, tasks, records and requests", () => {
	let sandbox: Sandbox;
	let node: RunningNode;
	let dataDir: string;
	let metricsUrl: string;
	let view: JobStatusView;

	before(async () => {
		sandbox = await startSandbox({
			seed: 13,
			world: { zips: [ZIP], parcelsPerZip: 20 },
			mls: { pageSize: 8, jsRenderedShare: 0 },
			proxies: { count: 3, listed: 3, behaviours: [] },
		});
		dataDir = mkdtempSync(join(tmpdir(), "saguaro-metrics-"));
		const metricsPort = await freePort();
		metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
		node = await startNode(
			loadConfig({
				...sandbox.env,
				NODE_ID: "metrics-test",
				SERVICES: "store,orchestrator,maricopa,mls,proxy-pool",
				DATA_DIR: dataDir,
				LOG_LEVEL: "warn",
				METRICS_PORT: String(metricsPort),
				HEALTH_PORT: "0",
				REPL: "off",
				MLS_USE_BROWSER: "false",
				MLS_RATE_PER_MIN: "6000",
				MARICOPA_RATE_PER_MIN: "6000",
				MARICOPA_GIS_RATE_PER_MIN: "6000",
				PROXY_CHECK_INTERVAL_S: "0",
				ORCHESTRATOR_TICK_MS: "200",
			}),
		);
		const started = await node.broker.call<JobStatusView, object>("orchestrator.collect", {
			zips: [ZIP],
			sources: ["maricopa", "mls"],
		});
		view = await waitFor(
			async () => {
				const v = await node.broker.call<JobStatusView, object>("orchestrator.status", {
					id: started.job.id,
				});
				return TERMINAL_JOB_STATUSES.includes(v.job.status) ? v : null;
			},
			"the job to end",
			180_000,
			250,
		);
	});

	after(async () => {
		await node?.stop();
		await sandbox?.stop();
		if (dataDir) rmSync(dataDir, { recursive: true, force: true });
	});

	test("jobs by status, tasks by state and records by source, as the ledger says", async () => {
		const maricopaItems = view.progress.bySource.maricopa!.counts.items;
		assert.ok(maricopaItems > 0, "the job collected parcels");
		// The leader samples the ledger every few seconds.
		const text = await waitFor(
			async () => {
				const t = await (await fetch(metricsUrl)).text();
				return series(t, "saguaro_items_done_total", { source: "maricopa" }) === maricopaItems ? t : null;
			},
			"the records collected to reach the metrics",
			30_000,
			500,
		);
		assert.equal(series(text, "saguaro_jobs", { status: view.job.status }), 1);
		assert.equal(series(text, "saguaro_jobs", { status: "running" }), 0);
		assert.equal(
			series(text, "saguaro_tasks", { source: "maricopa", state: "done" }),
			view.progress.bySource.maricopa!.tasks.done,
		);
		assert.equal(series(text, "saguaro_tasks", { source: "maricopa", state: "pending" }), 0);
		assert.equal(
			series(text, "saguaro_items_done_total", { source: "mls" }),
			view.progress.bySource.mls!.counts.items,
		);
	});

	test("requests by host and by source, the MLS site's included", async () => {
		const text = await (await fetch(metricsUrl)).text();
		for (const [host, source] of [
			["maricopa-gis", "maricopa"],
			["maricopa-api", "maricopa"],
			["mls", "mls"],
		] as const) {
			const ok = series(text, "saguaro_host_requests_total", { host, source, outcome: "ok" });
			assert.ok(ok !== null && ok > 0, `requests to ${host} by ${source}: ${ok}`);
		}
	});
});
