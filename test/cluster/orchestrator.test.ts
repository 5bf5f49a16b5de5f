/**
 * Durable jobs across real Saguaro processes over real NATS and Redis, with the real source and the
 * real store: three `maricopa` worker nodes collect from the sandbox's Assessor API + GIS, one store
 * node (never killed) holds the properties, two orchestrator nodes (one leads). Each ZIP is three
 * GIS pages, so a job is page tasks shared by the workers. SIGKILL a worker mid-job, then SIGKILL the
 * leading orchestrator mid-job; each job still completes and the store holds every parcel of the
 * sandbox's ground truth for its ZIPs exactly once (read back page by page by key).
 * (Dead letters and cancel are covered in test/integration/orchestrator.test.ts.)
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type moleculer from "moleculer";
import { type Sandbox, startSandbox } from "../../sandbox/index.ts";
import type { JobStatusView } from "../../src/jobs/orchestrator.ts";
import { waitFor } from "../../src/utils/time.ts";
import { clientBroker, type NodeProcess, spawnNode } from "../harness/cluster.ts";
import { type RunningServer, startNats, startRedis } from "../harness/servers.ts";

const FIRST = ["85031", "85033"];
const SECOND = ["85301", "85379"];
const PARCELS_PER_ZIP = 60;
/** GIS rows a page: three pages a ZIP. */
const PAGE_SIZE = 20;
const PAGES_PER_ZIP = PARCELS_PER_ZIP / PAGE_SIZE;
const WORKERS = ["mc-1", "mc-2", "mc-3"];
const ORCHESTRATORS = ["orch-1", "orch-2"];

type TaskInFlight = NonNullable<JobStatusView["tasks"]>[number];

interface KeysetPage {
	rows: { key: string; apn: string | null; zip: string | null }[];
	nextKey: string | null;
}

describe("orchestrator in a cluster, with the maricopa source and the store", () => {
	let nats: RunningServer;
	let redis: RunningServer;
	let sandbox: Sandbox;
	let client: moleculer.ServiceBroker;
	const nodes: NodeProcess[] = [];
	const dataDir = mkdtempSync(join(tmpdir(), "saguaro-orchestrator-"));

	before(async () => {
		[nats, redis, sandbox] = await Promise.all([
			startNats(),
			startRedis(),
			startSandbox({ world: { zips: [...FIRST, ...SECOND], parcelsPerZip: PARCELS_PER_ZIP } }),
		]);
		// Slow answers so that a ZIP takes a few seconds and a kill lands while a task is in flight.
		const latency = { latency: { minMs: 50, maxMs: 80 } };
		sandbox.maricopa.faults.set(latency);
		sandbox.gis.faults.set(latency);
		const base = {
			TRANSPORTER: nats.url,
			REDIS_URL: redis.url,
			API_PORT: "0",
			LOG_LEVEL: "warn",
			HEARTBEAT_INTERVAL_S: "1",
			HEARTBEAT_TIMEOUT_S: "3",
			ENABLE_METRICS: "false",
		};
		// Only this process runs the store, so NeDB files under DATA_DIR are safe.
		nodes.push(spawnNode({ nodeId: "store-1", env: { ...base, SERVICES: "store", DATA_DIR: dataDir } }));
		for (const id of WORKERS) {
			nodes.push(
				spawnNode({
					nodeId: id,
					env: {
						...base,
						SERVICES: "maricopa",
						MARICOPA_BASE_URL: sandbox.env.MARICOPA_BASE_URL!,
						MARICOPA_TOKEN: sandbox.env.MARICOPA_TOKEN!,
						MARICOPA_GIS_URL: sandbox.env.MARICOPA_GIS_URL!,
						// A budget far above what two tasks use: the sandbox's latency sets the pace.
						MARICOPA_RATE_PER_MIN: "200",
						MARICOPA_GIS_RATE_PER_MIN: "200",
						MARICOPA_RATE_WINDOW_S: "1",
						MARICOPA_CONCURRENCY: "2",
						MARICOPA_GIS_PAGE_SIZE: String(PAGE_SIZE),
						MARICOPA_TIMEOUT_MS: "5000",
						MARICOPA_BACKOFF_BASE_MS: "100",
						MARICOPA_BACKOFF_MAX_MS: "800",
					},
				}),
			);
		}
		for (const id of ORCHESTRATORS) {
			nodes.push(
				spawnNode({
					nodeId: id,
					env: {
						...base,
						SERVICES: "orchestrator",
						ORCHESTRATOR_TASK_LEASE_S: "3",
						ORCHESTRATOR_LEADER_TTL_S: "3",
						ORCHESTRATOR_TICK_MS: "200",
						ORCHESTRATOR_BACKOFF_BASE_MS: "200",
						ORCHESTRATOR_CONCURRENCY_PER_SOURCE: "3",
					},
				}),
			);
		}
		client = clientBroker(nats.url);
		await client.start();
		// The "started" line is printed at info level; warn-level nodes are awaited through the registry.
		const endpointCount = (action: string) =>
			(client.registry.getActionEndpoints(action) as unknown as { endpoints: unknown[] } | undefined)
				?.endpoints.length ?? 0;
		await waitFor(
			() =>
				endpointCount("maricopa.collectZip") === WORKERS.length &&
				endpointCount("orchestrator.leader") === ORCHESTRATORS.length &&
				endpointCount("properties.find") === 1,
			"workers, orchestrators and the store to join",
			60_000,
			100,
		);
	});

	after(async () => {
		await client?.stop().catch(() => {});
		await Promise.all(nodes.map((n) => n.stop()));
		await Promise.all([nats?.stop(), redis?.stop(), sandbox?.stop()]);
		rmSync(dataDir, { recursive: true, force: true });
	});

	const status = (id: string) =>
		client.call("orchestrator.status", { id, tasks: true }) as Promise<JobStatusView>;

	const alive = () => nodes.filter((n) => n.process.exitCode === null && n.process.signalCode === null);

	async function leaderId(): Promise<string> {
		return waitFor(
			async () => {
				for (const n of alive().filter((x) => ORCHESTRATORS.includes(x.nodeId))) {
					const r = (await client.call("orchestrator.leader", {}, { nodeID: n.nodeId })) as {
						leader: boolean;
					};
					if (r.leader) return n.nodeId;
				}
				return null;
			},
			"an orchestrator leader",
			20_000,
			100,
		);
	}

	/**
	 * Every stored property of the ZIP, paged by key (`afterKey`): a page never shifts under writes,
	 * so a property stored twice or missing shows as such.
	 */
	async function storedOf(zip: string): Promise<{ apns: string[]; total: number }> {
		const apns: string[] = [];
		for (let afterKey: string | null = ""; afterKey !== null; ) {
			const res = (await client.call("properties.find", { zip, afterKey, pageSize: 25 })) as KeysetPage;
			for (const row of res.rows) apns.push(row.apn ?? "(no apn)");
			afterKey = res.nextKey;
		}
		return { apns, total: apns.length };
	}

	/** The store holds exactly the ground truth of each ZIP: none missing, none twice, none extra. */
	async function assertStoredExactlyOnce(zips: string[]) {
		for (const zip of zips) {
			const truth = (sandbox.world.byZip.get(zip) ?? []).map((p) => p.apn).sort();
			assert.equal(truth.length, PARCELS_PER_ZIP);
			const stored = await storedOf(zip);
			assert.equal(stored.total, truth.length, `${zip}: stored count equals the ground truth`);
			assert.deepEqual([...stored.apns].sort(), truth, `${zip}: stored APNs are the ground truth`);
			for (const apn of truth) {
				const doc = (await client.call("properties.byApn", { apn })) as { apn: string; zip: string } | null;
				assert.ok(doc, `parcel ${apn} of ${zip} stored`);
				assert.equal(doc.zip, zip);
			}
		}
	}

	/**
	 * Start a job; once a leased task has stored part (not all) of its ZIP, SIGKILL the node `victimOf`
	 * picks for that task; wait for the job to end.
	 */
	async function runJobKilling(
		zips: string[],
		victimOf: (task: TaskInFlight, leader: string) => string | null,
	) {
		const started = (await client.call("orchestrator.collect", {
			zips,
			sources: ["maricopa"],
		})) as JobStatusView;
		const leader = await leaderId();
		const victimId = await waitFor(
			async () => {
				const view = await status(started.job.id);
				for (const task of view.tasks ?? []) {
					if (task.state !== "leased") continue;
					const { total } = await storedOf(task.zip);
					if (total > 0 && total < PARCELS_PER_ZIP) return victimOf(task, leader);
				}
				return null;
			},
			"a task in flight with part of its ZIP stored",
			30_000,
			50,
		);
		const victim = nodes.find((n) => n.nodeId === victimId) as NodeProcess;
		victim.kill("SIGKILL");
		await victim.exited;
		const done = await waitFor(
			async () => {
				const view = await status(started.job.id);
				return ["running", "cancelling"].includes(view.job.status) ? null : view;
			},
			`job ${started.job.id} to finish`,
			90_000,
			200,
		);
		return { done, victimId, leader };
	}

	test("SIGKILL of a worker mid-job: the job completes, each parcel stored once", {
		timeout: 120_000,
	}, async () => {
		const { done, victimId } = await runJobKilling(FIRST, (task) =>
			task.node && WORKERS.includes(task.node) ? task.node : null,
		);
		assert.equal(done.job.status, "completed", JSON.stringify(done.job.deadLetters));
		await assertStoredExactlyOnce(FIRST);
		// The victim's task was dispatched again elsewhere and finished there.
		const redone = done.tasks?.filter((t) => t.errors.some((e) => e.node === victimId)) ?? [];
		assert.ok(redone.length >= 1, "a task of the killed worker was re-dispatched");
		for (const t of redone) {
			assert.equal(t.state, "done");
			assert.notEqual(t.node, victimId);
			assert.ok(t.attempts >= 2);
		}
		assert.equal(done.progress.tasks.done, FIRST.length * PAGES_PER_ZIP, "every page a task of its own");
		assert.deepEqual(done.progress.items, {
			done: done.progress.counts.items,
			expected: FIRST.length * PARCELS_PER_ZIP,
		});
		// The pages were shared: more than one worker finished tasks of this job.
		const by = new Set(done.tasks?.filter((t) => t.state === "done").map((t) => t.node));
		assert.ok(by.size >= 2, `tasks done by ${[...by].join(", ")}`);
	});

	test("SIGKILL of the leading orchestrator mid-job: another takes over and completes it", {
		timeout: 120_000,
	}, async () => {
		const { done, victimId, leader } = await runJobKilling(SECOND, (_task, leaderNode) => leaderNode);
		assert.equal(victimId, leader);
		assert.equal(done.job.status, "completed", JSON.stringify(done.job.deadLetters));
		assert.notEqual(done.job.leader, victimId, "finished by a new leader");
		await assertStoredExactlyOnce(SECOND);
		assert.equal(done.progress.tasks.done, SECOND.length * PAGES_PER_ZIP);
	});
});
