/**
 * The first run as a new user makes it (issue 13): the sandbox's env lines exported, `npm start`
 * (bin/saguaro.ts, every service, nothing else set), then `collect 85031 --sources maricopa,mls`.
 * Real node process over real NATS and Redis, the real store (NeDB under DATA_DIR), real Chromium
 * (CHROMIUM_PATH's default, /usr/bin/chromium) and the sandbox; nothing of Saguaro is mocked.
 *
 * - The job completes with every ground-truth listing of the ZIP stored (MLS works on a default node:
 *   the proxy gateway is on without PROXY_GATEWAY_PORT).
 * - Progress counts the records a running task has stored (with an ETA), and a cancelled job keeps
 *   them.
 * - `cancel` of a job whose MLS task waits on an open host breaker reaches `cancelled` within 5 s.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type moleculer from "moleculer";
import { type Sandbox, startSandbox } from "../../sandbox/index.ts";
import type { JobStatusView } from "../../src/jobs/orchestrator.ts";
import { TERMINAL_JOB_STATUSES } from "../../src/jobs/types.ts";
import { createSharedState, type SharedState } from "../../src/shared-state/index.ts";
import { waitFor } from "../../src/utils/time.ts";
import { clientBroker, type NodeProcess, spawnNode } from "../harness/cluster.ts";
import { type RunningServer, startNats, startRedis } from "../harness/servers.ts";

const ZIP = "85031";
/** A ZIP nobody collected before the maricopa progress test. */
const OTHER_ZIP = "85033";

describe("first run: sandbox env + npm start + collect maricopa,mls", () => {
	let nats: RunningServer;
	let redis: RunningServer;
	let sandbox: Sandbox;
	let client: moleculer.ServiceBroker;
	let state: SharedState;
	let node: NodeProcess;
	const dataDir = mkdtempSync(join(tmpdir(), "saguaro-first-run-"));

	before(async () => {
		[nats, redis, sandbox] = await Promise.all([
			startNats(),
			startRedis(),
			startSandbox({ world: { zips: [ZIP, OTHER_ZIP], parcelsPerZip: 60 } }),
		]);
		node = spawnNode({
			nodeId: "first-run",
			env: {
				// What `npm run sandbox` prints, as a user exports it; PROXY_GATEWAY_PORT is not among it.
				...sandbox.env,
				TRANSPORTER: nats.url,
				REDIS_URL: redis.url,
				DATA_DIR: dataDir,
				API_PORT: "0",
				// The sandbox is on loopback: budgets that let the test finish in seconds.
				MARICOPA_RATE_PER_MIN: "1200",
				MARICOPA_GIS_RATE_PER_MIN: "600",
				MLS_RATE_PER_MIN: "600",
				// One listing at a time, so a slowed run is still mid-way when it is cancelled.
				MLS_CONCURRENCY: "1",
				ORCHESTRATOR_TICK_MS: "200",
				ORCHESTRATOR_BACKOFF_BASE_MS: "500",
			},
		});
		await node.ready();
		client = clientBroker(nats.url, "first-run-client", { requestTimeout: 30_000 });
		await client.start();
		await client.waitForServices(["orchestrator", "mls", "maricopa", "raw", "proxy-pool"], 30_000);
		state = createSharedState(redis.url, "saguaro");
	});

	after(async () => {
		await client?.stop();
		await state?.close();
		await node?.stop();
		await Promise.all([nats?.stop(), redis?.stop(), sandbox?.stop()]);
		rmSync(dataDir, { recursive: true, force: true });
	});

	const status = (id: string) => client.call("orchestrator.status", { id }) as Promise<JobStatusView>;

	test("the job completes and every ground-truth listing is stored", async () => {
		const started = (await client.call("orchestrator.collect", {
			zips: [ZIP],
			sources: ["maricopa", "mls"],
		})) as JobStatusView;
		const view = await waitFor(
			async () => {
				const v = await status(started.job.id);
				return TERMINAL_JOB_STATUSES.includes(v.job.status) ? v : null;
			},
			"the job to finish",
			240_000,
			500,
		);
		assert.equal(
			view.job.status,
			"completed",
			`job ${view.job.status}: ${JSON.stringify(view.job.deadLetters)}\n${node.output().slice(-3000)}`,
		);
		const truth = sandbox.world.listings.filter((l) => l.zip === ZIP).map((l) => l.mlsId);
		assert.ok(truth.length > 0, "the sandbox lists some MLS listings in the ZIP");
		const stored = (await client.call("raw.ages", { source: "mls", sourceIds: truth })) as Record<
			string,
			string
		>;
		const missing = truth.filter((id) => !stored[id]);
		assert.deepEqual(missing, [], `every ground-truth listing stored (${truth.length})`);
		assert.equal(view.progress.bySource.mls?.counts.failures, 0, "no MLS listing failed");
	});

	test("progress counts records while the task runs, shows an ETA, and a cancelled job keeps what was stored", async () => {
		const truth = sandbox.world.listings.filter((l) => l.zip === ZIP).map((l) => l.mlsId);
		// Fetched again (not skipped as fresh), each answer slowed so the job is cancelled mid-way: the
		// ZIP has three listings, so the cancel has one listing's time to land (0.8 s was too short
		// once in a loaded CI run: all three were done when the cancel arrived).
		for (const id of truth) await state.del(`mls:fetched:${id}`);
		sandbox.mls.server.faults.set({ latency: { minMs: 2000, maxMs: 2500 } });
		try {
			const started = (await client.call("orchestrator.collect", {
				zips: [ZIP],
				sources: ["mls"],
			})) as JobStatusView;
			// Records show before the (only) task ends, with what is expected and an ETA.
			const running = await waitFor(
				async () => {
					const v = await status(started.job.id);
					return v.job.status === "running" && v.progress.items.done > 0 && v.progress.etaS !== null
						? v
						: null;
				},
				"records and an ETA while the task runs",
				60_000,
				100,
			);
			assert.equal(running.progress.tasks.done, 0, "the task has not ended");
			assert.equal(running.progress.items.expected, truth.length);
			await client.call("orchestrator.cancel", { id: started.job.id });
			const view = await waitFor(
				async () => {
					const v = await status(started.job.id);
					return v.job.status === "cancelled" ? v : null;
				},
				"the job to be cancelled",
				30_000,
				100,
			);
			const stored = view.progress.counts.new + view.progress.counts.updated + view.progress.counts.unchanged;
			assert.ok(view.progress.items.done >= running.progress.items.done, JSON.stringify(view.progress));
			assert.ok(stored >= running.progress.items.done - running.progress.counts.failures);
			assert.ok(view.progress.items.done < truth.length, "cancelled before the end");
		} finally {
			sandbox.mls.server.faults.set({ latency: { minMs: 0, maxMs: 0 } });
		}
	});

	test("maricopa: a page's parcels count as they are done, and a cancelled job keeps them", async () => {
		// Slow parcel details, so the page is cancelled while its details are still being fetched.
		sandbox.maricopa.faults.set({ latency: { minMs: 300, maxMs: 500 } });
		try {
			const started = (await client.call("orchestrator.collect", {
				zips: [OTHER_ZIP],
				sources: ["maricopa"],
			})) as JobStatusView;
			const running = await waitFor(
				async () => {
					const v = await status(started.job.id);
					return v.job.status === "running" && v.progress.items.done > 0 ? v : null;
				},
				"parcels counted while the page runs",
				60_000,
				100,
			);
			assert.equal(running.progress.tasks.done, 0, "the page has not ended");
			const parcels = sandbox.world.parcels.filter((p) => p.zip === OTHER_ZIP).length;
			assert.equal(running.progress.items.expected, parcels);
			await client.call("orchestrator.cancel", { id: started.job.id });
			const view = await waitFor(
				async () => {
					const v = await status(started.job.id);
					return v.job.status === "cancelled" ? v : null;
				},
				"the job to be cancelled",
				30_000,
				100,
			);
			assert.ok(view.progress.items.done >= running.progress.items.done, JSON.stringify(view.progress));
			assert.ok(view.progress.items.done < parcels, "cancelled before the end");
			assert.ok(view.progress.counts.new > 0, "the parcels stored are reported as new");
		} finally {
			sandbox.maricopa.faults.set({ latency: { minMs: 0, maxMs: 0 } });
		}
	});

	test("cancel of a job whose MLS task waits on an open host breaker reaches cancelled within 5 s", async () => {
		// Open the MLS host's cluster-wide breaker for 5 minutes, as an error storm would.
		const now = Date.now();
		await state.set(
			"host:mls:breaker",
			{ openedAt: now, until: now + 300_000, reason: "test: error storm" },
			600_000,
		);
		try {
			const started = (await client.call("orchestrator.collect", {
				zips: [ZIP],
				sources: ["mls"],
			})) as JobStatusView;
			// The task is running on the worker, which now waits on the breaker.
			await waitFor(
				async () => (await status(started.job.id)).progress.tasks.leased > 0,
				"the MLS task to be dispatched",
				30_000,
				100,
			);
			await waitFor(async () => {
				const host = (await client.call("mls.status")) as { breaker: string }[];
				return host[0]?.breaker === "open";
			}, "the worker to see the breaker open");
			await client.call("orchestrator.cancel", { id: started.job.id });
			// A generous bound, the one the issue names; the job must not stay `cancelling`.
			const view = await waitFor(
				async () => {
					const v = await status(started.job.id);
					return v.job.status === "cancelled" ? v : null;
				},
				"the job to be cancelled",
				5_000,
				100,
			);
			assert.equal(view.job.status, "cancelled");
		} finally {
			await state.del("host:mls:breaker");
		}
	});
});
