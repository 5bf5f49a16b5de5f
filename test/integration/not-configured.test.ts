/**
 * What a node lacks is said clearly and is permanent (issue 13, items 1 and 4), on embedded nodes
 * against the sandbox (real HTTP on loopback, real proxies, the real store and orchestrator):
 * - no proxy configured, or the gateway off: an MLS task is a dead letter after one attempt whose
 *   reason says what to set, never retried as if the site were down;
 * - Chromium missing: the start-up check names it, what fails and what still works; the job stores
 *   the plain-HTML listings and names each script-filled one that failed, with Chromium as the reason.
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
import { preflight } from "../../src/node/preflight.ts";
import { type RunningNode, startNode } from "../../src/node/start-node.ts";
import { waitFor } from "../../src/utils/time.ts";

const ZIP = "85031";

let sandbox: Sandbox;
const dirs: string[] = [];
const nodes: RunningNode[] = [];

before(async () => {
	sandbox = await startSandbox({
		world: { zips: [ZIP], parcelsPerZip: 80, listingShare: 0.15, relistShare: 0 },
		mls: { jsRenderedShare: 0.4 },
		proxies: { count: 3, listed: 3, behaviours: [] },
	});
});

after(async () => {
	for (const n of nodes) await n.stop();
	await sandbox?.stop();
	for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function nodeConfig(env: Record<string, string>, drop: string[] = []) {
	const dataDir = mkdtempSync(join(tmpdir(), "saguaro-not-configured-"));
	dirs.push(dataDir);
	const base: Record<string, string> = { ...sandbox.env };
	for (const k of drop) delete base[k];
	return loadConfig({
		...base,
		NODE_ID: `nc-${nodes.length}`,
		SERVICES: "store,proxy-pool,browser-pool,mls,orchestrator",
		DATA_DIR: dataDir,
		LOG_LEVEL: "error",
		METRICS_PORT: "0",
		HEALTH_PORT: "0",
		API_PORT: "0",
		REPL: "off",
		MLS_RATE_PER_MIN: "6000",
		BROWSER_COUNT: "1",
		BROWSER_CONTEXTS: "2",
		ORCHESTRATOR_TICK_MS: "100",
		ORCHESTRATOR_BACKOFF_BASE_MS: "200",
		...env,
	});
}

async function collectMls(node: RunningNode): Promise<JobStatusView> {
	const job = (await node.broker.call("orchestrator.collect", {
		zips: [ZIP],
		sources: ["mls"],
	})) as JobStatusView;
	return waitFor(
		async () => {
			const v = (await node.broker.call("orchestrator.status", {
				id: job.job.id,
				tasks: true,
			})) as JobStatusView;
			return TERMINAL_JOB_STATUSES.includes(v.job.status) ? v : null;
		},
		"the job to finish",
		180_000,
		100,
	);
}

const PROXY_SOURCES = ["PROXIES", "PROXY_LIST_URL", "PROXY_LIST_KEY", "PROXY_LIST_TEXT_URL"];

describe("a node that lacks something", () => {
	test("no proxy configured: MLS fails at once, permanently, saying what to set", async () => {
		const config = nodeConfig({ MLS_USE_BROWSER: "false" }, PROXY_SOURCES);
		assert.ok(
			preflight(config).some((f) => f.service === "mls" && /no proxy configured/.test(f.missing)),
			"the start-up check names the missing proxies",
		);
		const node = await startNode(config);
		nodes.push(node);
		const view = await collectMls(node);
		const task = view.tasks?.find((t) => t.source === "mls");
		assert.ok(task);
		assert.equal(task.state, "dead", JSON.stringify(task));
		assert.equal(task.attempts, 1, `not retried: ${JSON.stringify(task.errors)}`);
		assert.match(
			task.errors.at(-1)?.message ?? "",
			/no proxy configured: set PROXIES, PROXY_FILE or PROXY_LIST_URL/,
		);
		const host = (await node.broker.call("mls.status")) as { breaker: string; window: { failed: number } }[];
		assert.equal(host[0]?.breaker, "closed", "a missing proxy is not the site's failure");
		assert.equal(host[0]?.window.failed, 0);
		await node.stop();
	});

	test("the gateway off: MLS fails at once, permanently, naming PROXY_GATEWAY_PORT", async () => {
		const node = await startNode(nodeConfig({ MLS_USE_BROWSER: "false", PROXY_GATEWAY_PORT: "off" }));
		nodes.push(node);
		const view = await collectMls(node);
		const task = view.tasks?.find((t) => t.source === "mls");
		assert.ok(task);
		assert.equal(task.state, "dead");
		assert.equal(task.attempts, 1);
		assert.match(task.errors.at(-1)?.message ?? "", /PROXY_GATEWAY_PORT/);
		await node.stop();
	});

	test("a Chromium that does not start: render answers a permanent, clear error", async () => {
		// An executable that is not Chromium: the start-up check cannot tell, the launch fails.
		const node = await startNode(nodeConfig({ CHROMIUM_PATH: "/bin/false", SERVICES: "browser-pool" }));
		nodes.push(node);
		await assert.rejects(
			node.broker.call("browser-pool.render", { url: `${sandbox.env.MLS_BASE_URL}/` }),
			(err: { code?: number; type?: string; message: string }) => {
				assert.equal(err.type, "BROWSER_NOT_CONFIGURED", err.message);
				assert.equal(err.code, 424);
				assert.match(err.message, /Chromium at \/bin\/false does not start/);
				return true;
			},
		);
		await node.stop();
	});

	test("Chromium missing: said at start; plain listings stored, script-filled ones named with the reason", async () => {
		const config = nodeConfig({ CHROMIUM_PATH: "/nonexistent/chromium" });
		const finding = preflight(config).find((f) => f.service === "browser-pool");
		assert.ok(finding, "the start-up check names the missing Chromium");
		assert.match(finding.missing, /no Chromium at \/nonexistent\/chromium \(CHROMIUM_PATH\)/);
		assert.match(finding.effect, /plain-HTML listings/);
		const node = await startNode(config);
		nodes.push(node);
		const view = await collectMls(node);
		const expected = sandbox.mls.listingIds(ZIP);
		const scripted = expected.filter((id) => sandbox.mls.isJsRendered(id));
		assert.ok(scripted.length > 0 && scripted.length < expected.length);
		const mls = view.progress.bySource.mls;
		assert.ok(mls);
		assert.equal(mls.counts.failures, scripted.length, JSON.stringify(view.job.failedRecords));
		assert.equal(mls.counts.items, expected.length - scripted.length);
		assert.ok(view.job.failedRecords.length > 0);
		for (const f of view.job.failedRecords) {
			assert.match(f.reason, /no Chromium at \/nonexistent\/chromium/, f.reason);
		}
		await node.stop();
	});
});
