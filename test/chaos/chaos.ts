/**
 * The chaos suite's engine (issue 19), shared by `npm run chaos` (bench/chaos/run.ts) and the CI
 * test of the quick scenarios (test/cluster/chaos-quick.test.ts).
 *
 * Each scenario runs a real cluster on a fresh state: its own nats-server and redis-server
 * (restartable on the same port, test/harness/restartable.ts), its own database on a FerretDB (on
 * PostgreSQL) shared by the run, its own sandbox (Assessor API + GIS, ground truth and request
 * counters), and Saguaro processes (bin/saguaro.ts): one store node, two maricopa workers, two
 * orchestrators (one leads). It submits one job over the ZIPs, injects its fault once the Assessor
 * has answered about a quarter of the requests the job needs, waits for the job to end, then checks:
 *
 * - stored / truth: every parcel of the sandbox's ground truth (`world.byZip`) read back from the
 *   store by key (`properties.find({zip, afterKey, pageSize})` until `nextKey` is null), none
 *   missing, none extra; duplicates: APNs that appear on more than one property;
 * - an honest status: never "completed" with a parcel missing; "completed_with_errors" or "failed"
 *   must carry reasons (failed records or dead letters); a job still running with no Assessor
 *   request for the settle time (hung) or gone from the ledger (vanished) is not an outcome;
 * - Assessor requests (GIS queries + REST calls, not the layer's field-list checks) against what the
 *   job needs (per ZIP: the GIS count, one GIS query a page, one REST detail a residential parcel).
 *   Requests answered with a 5xx, a 429, a spoiled body (the sandbox's `malformed` fault) or never
 *   answered are "failed" (retries of them are expected); the others are "ok" and must be within 5%
 *   of needed.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type moleculer from "moleculer";
import type { FaultDecision, FaultKnobs } from "../../sandbox/faults.ts";
import { type Sandbox, startSandbox } from "../../sandbox/index.ts";
import type { JobStatusView } from "../../src/jobs/orchestrator.ts";
import { sleep, waitFor } from "../../src/utils/time.ts";
import { clientBroker, type NodeProcess, spawnNode } from "../harness/cluster.ts";
import { type Regions, startRegions } from "../harness/regions.ts";
import {
	type RestartableFerretDb,
	type RestartableServer,
	startRestartableFerretDb,
	startRestartableNats,
	startRestartableRedis,
	startToxiproxy,
	type ToxicProxy,
	type Toxiproxy,
	trackDir,
	trackProcess,
	untrackDir,
} from "../harness/restartable.ts";

// ---- sizes and settings ----

export interface ChaosSize {
	zips: string[];
	parcelsPerZip: number;
	/** MARICOPA_GIS_PAGE_SIZE: a ZIP is ceil(parcels / pageSize) page tasks. */
	pageSize: number;
	/** Sandbox latency per request (Assessor API and GIS). */
	latency: { minMs: number; maxMs: number };
	/** How long a job may go without an Assessor request (after its fault) before it counts as hung. */
	settleTimeoutMs: number;
}

/** The issue's cluster: 3 ZIPs x 1,000 parcels, four GIS pages a ZIP. */
export const FULL_SIZE: ChaosSize = {
	zips: ["85031", "85033", "85301"],
	parcelsPerZip: 1000,
	pageSize: 250,
	latency: { minMs: 20, maxMs: 50 },
	settleTimeoutMs: 240_000,
};

/** The quick set (CI): 2 ZIPs x 150 parcels, three GIS pages a ZIP. */
export const QUICK_SIZE: ChaosSize = {
	zips: ["85031", "85033"],
	parcelsPerZip: 150,
	pageSize: 50,
	latency: { minMs: 20, maxMs: 50 },
	settleTimeoutMs: 90_000,
};

/** Share of the needed requests answered before the fault is injected. */
const TRIGGER_SHARE = 0.25;
/** Allowed ok requests over (or under) needed. */
export const REQUEST_TOLERANCE = 0.05;
const LIFTED = "100000";
const WORKERS = ["mc-1", "mc-2"];
const ORCHESTRATORS = ["orch-1", "orch-2"];
const STORE = "store-1";

// ---- scenarios ----

export interface ScenarioContext {
	cluster: ChaosCluster;
	jobId: string;
	log(line: string): void;
}

export interface Scenario {
	/** Row number (the issue's order). */
	no: number;
	id: string;
	title: string;
	/** In the quick set (CI). */
	quick: boolean;
	/** Redis with AOF (appendonly yes). */
	redisAof?: boolean;
	/** Worker mc-1 reaches Redis through toxiproxy. */
	toxiproxy?: boolean;
	/**
	 * Two regions (test/harness/regions.ts): a holds the store, Redis, orch-1 and mc-1; b holds orch-2
	 * and mc-2 on its own nats-server, joined by gateways through toxiproxy, with b's Redis link too.
	 */
	regions?: boolean;
	/** Sandbox faults for the whole job (Assessor API and GIS). */
	sandboxFaults?: Partial<FaultKnobs>;
	/** Extra env of the worker nodes. */
	workerEnv?: Record<string, string>;
	/** Injects the fault (awaits its whole duration); answers what it did. Absent: no fault. */
	fault?(ctx: ScenarioContext): Promise<string>;
}

export const SCENARIOS: Scenario[] = [
	{
		no: 0,
		id: "baseline",
		title: "no fault (control row)",
		quick: false,
	},
	{
		no: 1,
		id: "redis-restart",
		title: "Redis restarted without persistence mid-job",
		quick: false,
		async fault({ cluster }) {
			await cluster.redis.restart(2000);
			return "redis-server SIGTERM, down 2 s, started empty on the same port";
		},
	},
	{
		no: 2,
		id: "redis-aof-restart",
		title: "Redis restarted with AOF mid-job",
		quick: false,
		redisAof: true,
		async fault({ cluster }) {
			await cluster.redis.restart(2000);
			return "redis-server (appendonly yes) SIGTERM, down 2 s, AOF replayed on restart";
		},
	},
	{
		no: 3,
		id: "nats-restart",
		title: "NATS restarted mid-job",
		quick: true,
		async fault({ cluster }) {
			await cluster.nats.restart(2000);
			return "nats-server SIGTERM, down 2 s, same port";
		},
	},
	{
		no: 4,
		id: "store-node-kill",
		title: "store node SIGKILLed, back in 4 s",
		quick: true,
		async fault({ cluster }) {
			await cluster.kill(STORE);
			await sleep(4000);
			cluster.respawn(STORE);
			return `${STORE} SIGKILL, respawned after 4 s`;
		},
	},
	{
		no: 5,
		id: "store-server-down",
		title: "store server (FerretDB) down 46 s",
		quick: false,
		async fault({ cluster }) {
			await cluster.ferret.restart(46_000);
			return "ferretdb SIGTERM, down 46 s, same port (PostgreSQL kept)";
		},
	},
	{
		no: 6,
		id: "leader-kill",
		title: "orchestrator leader SIGKILLed (a second one running)",
		quick: true,
		async fault({ cluster }) {
			const leader = await cluster.leaderId();
			await cluster.kill(leader);
			return `leader ${leader} SIGKILL (not restarted)`;
		},
	},
	{
		no: 7,
		id: "worker-kill",
		title: "a maricopa worker SIGKILLed",
		quick: true,
		async fault({ cluster, jobId }) {
			const victim = (await cluster.workerWithLeasedTask(jobId)) ?? WORKERS[0]!;
			await cluster.kill(victim);
			return `worker ${victim} SIGKILL with a task in flight (not restarted)`;
		},
	},
	{
		no: 8,
		id: "assessor-faults",
		title: "20% 5xx + 30% malformed answers from the Assessor",
		quick: false,
		sandboxFaults: { errorRate: 0.2, malformedRate: 0.3 },
		// The host breaker (failure rate 0.5 by default) would open over and over at 50% failures;
		// relaxed as in the issue's measurement, so the row measures retries, not the breaker's pauses.
		workerEnv: { MARICOPA_BREAKER_FAILURE_RATE: "0.9", MARICOPA_MAX_ATTEMPTS: "8" },
	},
	{
		no: 9,
		id: "worker-redis-partition",
		title: "partition between a worker and Redis (toxiproxy) ~5 s",
		quick: false,
		toxiproxy: true,
		async fault({ cluster }) {
			const link = cluster.redisLink!;
			await link.partition();
			await sleep(5000);
			await link.heal();
			return "mc-1 <-> Redis cut both ways for 5 s (toxiproxy holds the bytes), then healed";
		},
	},
	{
		no: 10,
		id: "region-link-cut",
		title: "link between two regions cut ~5 s",
		quick: false,
		regions: true,
		async fault({ cluster }) {
			const regions = cluster.regions!;
			await regions.cut();
			await sleep(5000);
			await regions.heal();
			return "region b (orch-2, mc-2) cut from region a (store, Redis, orch-1, mc-1) for 5 s: gateways and b's Redis link, then healed";
		},
	},
];

/** The region of a node in a `regions` scenario. */
const REGION_B = new Set(["orch-2", "mc-2"]);

// ---- the cluster of one scenario ----

/** What is running right now, so an interrupted run can stop it all (stopEverything). */
const running = new Set<{ stop(): Promise<void> }>();

let aborted = false;

/**
 * Stop every cluster and server the suite has running (for SIGINT/SIGTERM handlers); no scenario
 * starts after it. Pair it with `killEverythingSync` (test/harness/restartable.ts) on "exit".
 */
export async function stopEverything(): Promise<void> {
	aborted = true;
	await Promise.all([...running].map((r) => r.stop().catch(() => {})));
	running.clear();
}

interface KeysetPage {
	rows: { key: string; apn: string | null; zip: string | null }[];
	nextKey: string | null;
}

/** Per-request fault decisions of the sandbox, to tell spoiled answers from good ones. */
type Decisions = WeakMap<object, FaultDecision["kind"]>;

export class ChaosCluster {
	readonly scenario: Scenario;
	readonly size: ChaosSize;
	readonly ferret: RestartableFerretDb;
	readonly db: string;
	nats!: RestartableServer;
	redis!: RestartableServer;
	sandbox!: Sandbox;
	toxiproxy: Toxiproxy | null = null;
	redisLink: ToxicProxy | null = null;
	regions: Regions | null = null;
	client!: moleculer.ServiceBroker;
	readonly nodes = new Map<string, NodeProcess>();
	/** Every process spawned (respawns included), for logs and cleanup. */
	readonly spawned: NodeProcess[] = [];
	readonly #env = new Map<string, Record<string, string>>();
	readonly #dataDir = mkdtempSync(join(tmpdir(), "saguaro-chaos-data-"));
	readonly decisions: Decisions = new WeakMap();

	constructor(scenario: Scenario, size: ChaosSize, ferret: RestartableFerretDb, db: string) {
		this.scenario = scenario;
		this.size = size;
		this.ferret = ferret;
		this.db = db;
		trackDir(this.#dataDir);
	}

	async start(): Promise<void> {
		running.add(this);
		const { size, scenario } = this;
		if (scenario.regions) {
			[this.regions, this.sandbox] = await Promise.all([
				startRegions(),
				startSandbox({ world: { zips: size.zips, parcelsPerZip: size.parcelsPerZip } }),
			]);
			[this.nats, this.redis, this.toxiproxy] = [
				this.regions.nats.a,
				this.regions.redis,
				this.regions.toxiproxy,
			];
		} else {
			[this.nats, this.redis, this.sandbox] = await Promise.all([
				startRestartableNats(),
				startRestartableRedis({ appendonly: scenario.redisAof === true }),
				startSandbox({ world: { zips: size.zips, parcelsPerZip: size.parcelsPerZip } }),
			]);
		}
		const knobs: Partial<FaultKnobs> = { latency: size.latency, ...scenario.sandboxFaults };
		this.sandbox.maricopa.faults.set(knobs);
		this.sandbox.gis.faults.set(knobs);
		for (const sim of [this.sandbox.maricopa, this.sandbox.gis]) this.#recordDecisions(sim);
		if (scenario.toxiproxy) {
			this.toxiproxy = await startToxiproxy();
			this.redisLink = await this.toxiproxy.proxy("mc1-redis", this.redis.port);
		}
		const base = {
			TRANSPORTER: this.nats.url,
			REDIS_URL: this.redis.url,
			API_PORT: "0",
			LOG_LEVEL: process.env.CHAOS_LOG_LEVEL ?? "warn",
			HEARTBEAT_INTERVAL_S: "1",
			HEARTBEAT_TIMEOUT_S: "5",
			ENABLE_METRICS: "false",
		};
		this.#env.set(STORE, {
			...base,
			SERVICES: "store",
			MONGO_URI: this.ferret.urlFor(this.db),
			DATA_DIR: this.#dataDir,
		});
		for (const id of WORKERS) {
			this.#env.set(id, {
				...base,
				...(id === "mc-1" && this.redisLink ? { REDIS_URL: `redis://127.0.0.1:${this.redisLink.port}` } : {}),
				SERVICES: "maricopa",
				MARICOPA_BASE_URL: this.sandbox.env.MARICOPA_BASE_URL!,
				MARICOPA_TOKEN: this.sandbox.env.MARICOPA_TOKEN!,
				MARICOPA_GIS_URL: this.sandbox.env.MARICOPA_GIS_URL!,
				MARICOPA_RATE_PER_MIN: LIFTED,
				MARICOPA_GIS_RATE_PER_MIN: LIFTED,
				MARICOPA_RATE_WINDOW_S: "1",
				MARICOPA_CONCURRENCY: "8",
				MARICOPA_GIS_PAGE_SIZE: String(size.pageSize),
				MARICOPA_TIMEOUT_MS: "5000",
				MARICOPA_BACKOFF_BASE_MS: "100",
				MARICOPA_BACKOFF_MAX_MS: "800",
				// A store call lost to a NATS restart or a store kill fails after this long (its page is
				// retried): pages here are small, so their writes take a fraction of it.
				STORE_CALL_TIMEOUT_S: "15",
				// Details written five at a time: a worker killed mid-page (or an attempt abandoned with its
				// leader) costs at most a few refetched details per page in flight, at these small sizes
				// well inside the 5% the rows allow.
				MARICOPA_DETAIL_BATCH: "5",
				...scenario.workerEnv,
			});
		}
		for (const id of ORCHESTRATORS) {
			this.#env.set(id, {
				...base,
				SERVICES: "orchestrator",
				MARICOPA_RATE_PER_MIN: LIFTED,
				MARICOPA_GIS_RATE_PER_MIN: LIFTED,
				ORCHESTRATOR_TASK_LEASE_S: "5",
				ORCHESTRATOR_LEADER_TTL_S: "3",
				ORCHESTRATOR_TICK_MS: "200",
				ORCHESTRATOR_BACKOFF_BASE_MS: "300",
				ORCHESTRATOR_CONCURRENCY_PER_SOURCE: "2",
			});
		}
		if (this.regions) {
			for (const [id, env] of this.#env) {
				const b = REGION_B.has(id);
				Object.assign(env, {
					REGION: b ? "b" : "a",
					...(b ? { TRANSPORTER: this.regions.nats.b.url, REDIS_URL: this.regions.redisUrl.b } : {}),
				});
			}
		}
		for (const id of this.#env.keys()) this.respawn(id);
		this.client = clientBroker(this.nats.url, "chaos-client");
		await this.client.start();
		await waitFor(
			() => {
				for (const n of this.spawned) {
					if (n.process.exitCode !== null) throw new Error(`${n.nodeId} exited:\n${n.output().slice(-3000)}`);
				}
				return (
					this.#endpoints("maricopa.collectZip") === WORKERS.length &&
					this.#endpoints("orchestrator.leader") === ORCHESTRATORS.length &&
					this.#endpoints("properties.find") === 1
				);
			},
			"workers, orchestrators and the store to join",
			90_000,
			100,
		);
		await this.leaderId();
	}

	#endpoints(action: string): number {
		return (
			(this.client.registry.getActionEndpoints(action) as unknown as { endpoints: unknown[] } | undefined)
				?.endpoints.length ?? 0
		);
	}

	/** Tag each request record of a simulator with the fault decided for it (decide follows record). */
	#recordDecisions(sim: Sandbox["maricopa"] | Sandbox["gis"]) {
		const counters = sim.counters;
		const faults = sim.faults;
		let last: object | null = null;
		const record = counters.record.bind(counters);
		counters.record = (...args: Parameters<typeof record>) => {
			const rec = record(...args);
			last = rec;
			return rec;
		};
		const decide = faults.decide.bind(faults);
		faults.decide = (...args: Parameters<typeof decide>) => {
			const d = decide(...args);
			if (last) this.decisions.set(last, d.kind);
			last = null;
			return d;
		};
	}

	/** Spawn (or respawn, same id and env) a node. */
	respawn(id: string): NodeProcess {
		const env = this.#env.get(id);
		if (!env) throw new Error(`no node ${id}`);
		const node = spawnNode({ nodeId: id, env });
		trackProcess(node.process);
		this.nodes.set(id, node);
		this.spawned.push(node);
		return node;
	}

	async kill(id: string, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
		const node = this.nodes.get(id);
		if (!node) throw new Error(`no node ${id}`);
		node.kill(signal);
		await node.exited;
	}

	#alive(id: string): boolean {
		const n = this.nodes.get(id);
		return n !== undefined && n.process.exitCode === null && n.process.signalCode === null;
	}

	async leaderId(): Promise<string> {
		return waitFor(
			async () => {
				for (const id of ORCHESTRATORS.filter((x) => this.#alive(x))) {
					const r = (await this.client
						.call("orchestrator.leader", {}, { nodeID: id, timeout: 2000 })
						.catch(() => null)) as { leader: boolean } | null;
					if (r?.leader) return id;
				}
				return null;
			},
			"an orchestrator leader",
			30_000,
			100,
		);
	}

	async status(jobId: string, tasks = false): Promise<JobStatusView> {
		return (await this.client.call(
			"orchestrator.status",
			{ id: jobId, tasks },
			{ timeout: 3000 },
		)) as JobStatusView;
	}

	async workerWithLeasedTask(jobId: string): Promise<string | null> {
		const view = await this.status(jobId, true).catch(() => null);
		for (const t of view?.tasks ?? []) {
			if (t.state === "leased" && t.node && WORKERS.includes(t.node) && this.#alive(t.node)) return t.node;
		}
		return null;
	}

	/** Every property of the ZIP, by key (keyset paging until nextKey is null); retried while the store recovers. */
	async storedApns(zip: string): Promise<string[]> {
		return waitFor(
			async () => {
				try {
					const apns: string[] = [];
					for (let afterKey: string | null = ""; afterKey !== null; ) {
						// Small pages, a patient timeout: on a loaded machine FerretDB answers a 500-row page
						// slower than 10 s, and the row failed on reading back, not on what was stored.
						const res = (await this.client.call(
							"properties.find",
							{ zip, afterKey, pageSize: 100 },
							{ timeout: 30_000 },
						)) as KeysetPage;
						for (const row of res.rows) apns.push(row.apn ?? `(no apn: ${row.key})`);
						afterKey = res.nextKey;
					}
					return apns;
				} catch {
					return null;
				}
			},
			`the store to answer properties.find for ${zip}`,
			180_000,
			500,
		);
	}

	/** Requests the Assessor saw (GIS queries + REST calls; the layer checks apart), ok vs failed. */
	requests(): { ok: number; failed: number; layer: number } {
		let ok = 0;
		let failed = 0;
		let layer = 0;
		for (const sim of [this.sandbox.maricopa, this.sandbox.gis]) {
			for (const r of sim.counters.records()) {
				if (r.kind === "layer") {
					layer++;
					continue;
				}
				const spoiled = this.decisions.get(r) === "malformed" && r.status >= 200 && r.status < 300;
				if (r.status === 0 || r.status === 429 || r.status >= 500 || spoiled) failed++;
				else ok++;
			}
		}
		return { ok, failed, layer };
	}

	/** Requests the job needs: per ZIP the GIS count, one query a page, one REST detail a residential parcel. */
	needed(): number {
		let n = 0;
		for (const zip of this.size.zips) {
			const parcels = this.sandbox.world.byZip.get(zip) ?? [];
			n += 1 + Math.ceil(parcels.length / this.size.pageSize);
			n += parcels.filter((p) => p.propertyType === "RESIDENTIAL").length;
		}
		return n;
	}

	/** Write each node's output (all its runs) and the servers' output under `dir`. */
	saveLogs(dir: string): void {
		mkdirSync(dir, { recursive: true });
		const runs = new Map<string, number>();
		for (const n of this.spawned) {
			const i = (runs.get(n.nodeId) ?? 0) + 1;
			runs.set(n.nodeId, i);
			writeFileSync(join(dir, `${n.nodeId}${i > 1 ? `.run${i}` : ""}.log`), n.output());
		}
		for (const s of [this.nats, this.regions?.nats.b, this.redis, this.toxiproxy])
			if (s) writeFileSync(join(dir, `${s.name}.log`), s.output());
	}

	/** Stop everything this scenario started (the shared FerretDB is left running, started if it was stopped). */
	async stop(): Promise<void> {
		running.delete(this);
		await this.client?.stop().catch(() => {});
		await Promise.all(this.spawned.map((n) => n.stop().catch(() => null)));
		const servers = [this.nats, this.regions?.nats.b, this.redis, this.toxiproxy];
		await Promise.all(servers.map((s) => s?.destroy().catch(() => {})));
		await this.sandbox?.stop().catch(() => {});
		rmSync(this.#dataDir, { recursive: true, force: true });
		untrackDir(this.#dataDir);
		if (!this.ferret.running) await this.ferret.start().catch(() => {});
	}
}

// ---- one row ----

export interface ScenarioResult {
	no: number;
	id: string;
	title: string;
	/** Terminal job status, or "running (hung)", "vanished: ...", "error: ...". */
	status: string;
	/** Why the job says it is not complete: dead letters and failed records (bounded). */
	reasons: string[];
	stored: number;
	truth: number;
	missing: number;
	extra: number;
	duplicates: number;
	requests: { ok: number; failed: number; layer: number; needed: number; overPct: number };
	timeS: number;
	fault: string;
	pass: boolean;
	/** Why the row fails (empty when it passes). */
	failures: string[];
	logDir: string | null;
}

const TERMINAL = ["completed", "completed_with_errors", "failed", "cancelled"];

export interface RunOptions {
	size: ChaosSize;
	ferret: RestartableFerretDb;
	log?: (line: string) => void;
	/** Node and server logs go to `<logRoot>/<no>-<id>/` (none when absent). */
	logRoot?: string;
}

export async function runScenario(scenario: Scenario, opts: RunOptions): Promise<ScenarioResult> {
	const log = opts.log ?? (() => {});
	const db = `chaos_${scenario.id.replace(/-/g, "_")}_${Date.now().toString(36)}`;
	const cluster = new ChaosCluster(scenario, opts.size, opts.ferret, db);
	const result: ScenarioResult = {
		no: scenario.no,
		id: scenario.id,
		title: scenario.title,
		status: "not started",
		reasons: [],
		stored: 0,
		truth: 0,
		missing: 0,
		extra: 0,
		duplicates: 0,
		requests: { ok: 0, failed: 0, layer: 0, needed: 0, overPct: 0 },
		timeS: 0,
		fault: "none",
		pass: false,
		failures: [],
		logDir: opts.logRoot ? join(opts.logRoot, `${scenario.no}-${scenario.id}`) : null,
	};
	try {
		log(`[${scenario.no} ${scenario.id}] starting the cluster`);
		await cluster.start();
		const needed = cluster.needed();
		const started = Date.now();
		const view = (await cluster.client.call(
			"orchestrator.collect",
			{ zips: opts.size.zips, sources: ["maricopa"], origin: `chaos:${scenario.id}` },
			{ timeout: 15_000 },
		)) as JobStatusView;
		const jobId = view.job.id;
		log(`[${scenario.no} ${scenario.id}] job ${jobId}: ${needed} requests needed`);
		let faultEnded = Date.now();
		if (scenario.fault) {
			const reached = await waitFor(
				async () => {
					if (cluster.requests().ok >= needed * TRIGGER_SHARE) return "trigger";
					const s = await cluster.status(jobId).catch(() => null);
					return s && TERMINAL.includes(s.job.status) ? "ended" : null;
				},
				"the job to reach its fault point",
				opts.size.settleTimeoutMs,
				50,
			);
			if (reached === "ended") {
				result.failures.push("the job ended before its fault point: the fault was not tested");
			} else {
				log(`[${scenario.no} ${scenario.id}] fault at ${cluster.requests().ok}/${needed} requests`);
				result.fault = await scenario.fault({ cluster, jobId, log });
				log(`[${scenario.no} ${scenario.id}] ${result.fault}`);
			}
			faultEnded = Date.now();
		}
		// Wait for the end; tolerate unanswered calls while the cluster recovers.
		let last: JobStatusView | null = null;
		let lastError = "";
		// Hung means no Assessor request for the whole settle time, not "slower than a quiet machine":
		// a loaded machine (or a slow row) moves the deadline as long as the job keeps working.
		let deadline = faultEnded + opts.size.settleTimeoutMs;
		let seen = cluster.requests().ok;
		while (Date.now() < deadline) {
			const now = cluster.requests().ok;
			if (now > seen) {
				seen = now;
				deadline = Math.max(deadline, Date.now() + opts.size.settleTimeoutMs);
			}
			try {
				last = await cluster.status(jobId);
				lastError = "";
				if (TERMINAL.includes(last.job.status)) break;
			} catch (err) {
				lastError = (err as Error).message;
			}
			await sleep(300);
		}
		result.timeS = (Date.now() - started) / 1000;
		if (last && TERMINAL.includes(last.job.status) && !lastError) {
			result.status = last.job.status;
		} else if (lastError) {
			result.status = /no job/.test(lastError) ? "vanished (no job)" : `no answer: ${lastError.slice(0, 80)}`;
		} else {
			result.status = `${last?.job.status ?? "unknown"} (hung: no request for ${Math.round(opts.size.settleTimeoutMs / 1000)} s)`;
			// What the job still waits on, to say why it hung.
			const view = await cluster.status(jobId, true).catch(() => null);
			const now = Date.now();
			for (const t of (view?.tasks ?? []).filter((x) => !["done", "failed", "cancelled"].includes(x.state))) {
				const wait = t.notBefore > now ? `, due in ${Math.round((t.notBefore - now) / 1000)} s` : "";
				const err = t.errors.at(-1)?.message?.slice(0, 120) ?? "";
				result.reasons.push(
					`unsettled ${t.id}: ${t.state} on ${t.node ?? "-"}, ${t.attempts} attempts, ${t.deferrals ?? 0} deferrals${wait}${err ? `; last error: ${err}` : ""}`,
				);
			}
		}
		if (last) {
			for (const d of last.job.deadLetters) {
				result.reasons.push(
					`dead letter ${d.source} ${d.zip} (${d.attempts} attempts): ${d.reasons.at(-1) ?? "?"}`,
				);
			}
			if (last.job.deadLetterCount > last.job.deadLetters.length) {
				result.reasons.push(
					`... ${last.job.deadLetterCount - last.job.deadLetters.length} more dead letters`,
				);
			}
			for (const f of last.job.failedRecords.slice(0, 5))
				result.reasons.push(`record ${f.id} (${f.zip}): ${f.reason}`);
			if (last.job.failedRecords.length > 5) {
				result.reasons.push(`... ${last.job.failedRecords.length - 5} more failed records listed`);
			}
		}

		// Ground truth against the store.
		for (const zip of opts.size.zips) {
			const truth = new Set((cluster.sandbox.world.byZip.get(zip) ?? []).map((p) => p.apn));
			const stored = await cluster.storedApns(zip);
			const seen = new Map<string, number>();
			for (const apn of stored) seen.set(apn, (seen.get(apn) ?? 0) + 1);
			result.truth += truth.size;
			for (const apn of truth) if (seen.has(apn)) result.stored++;
			for (const [apn, n] of seen) {
				if (n > 1) result.duplicates += n - 1;
				if (!truth.has(apn)) result.extra++;
			}
		}
		result.missing = result.truth - result.stored;
		const req = cluster.requests();
		result.requests = { ...req, needed, overPct: ((req.ok - needed) / needed) * 100 };

		result.failures.push(...judge(result));
	} catch (err) {
		result.status = result.status === "not started" ? "error" : result.status;
		result.failures.push(`error: ${(err as Error).message.split("\n").slice(0, 6).join(" | ")}`);
	} finally {
		result.pass = result.failures.length === 0;
		if (result.logDir) {
			try {
				cluster.saveLogs(result.logDir);
			} catch {}
		}
		await cluster.stop();
		// Why, at once: a long run stopped early still says what went wrong in the rows it did.
		const why = result.pass ? "" : `: ${result.failures.join("; ")}`;
		log(
			`[${scenario.no} ${scenario.id}] ${result.pass ? "PASS" : "FAIL"} (${result.timeS.toFixed(1)} s)${why}`,
		);
	}
	return result;
}

/**
 * Why a measured row fails (empty: it passes): the job ended with an honest status (never
 * "completed" with a parcel missing; "completed_with_errors"/"failed" with reasons), every parcel
 * stored, none extra, none twice, ok Assessor requests within REQUEST_TOLERANCE of needed.
 */
export function judge(
	r: Pick<ScenarioResult, "status" | "reasons" | "missing" | "truth" | "extra" | "duplicates" | "requests">,
): string[] {
	const f: string[] = [];
	if (!TERMINAL.includes(r.status)) f.push(`the job did not end honestly: ${r.status}`);
	if (r.status === "completed" && r.missing > 0) {
		f.push(`"completed" with ${r.missing} parcels missing (a false completed)`);
	}
	if (["completed_with_errors", "failed"].includes(r.status) && r.reasons.length === 0) {
		f.push(`"${r.status}" without reasons`);
	}
	if (r.status === "cancelled") f.push("cancelled (no one cancelled it)");
	if (r.truth === 0) f.push("no ground truth (an empty world proves nothing)");
	if (r.missing > 0) f.push(`${r.missing} of ${r.truth} parcels not stored`);
	if (r.extra > 0) f.push(`${r.extra} properties not in the ground truth`);
	if (r.duplicates > 0) f.push(`${r.duplicates} duplicate properties`);
	const { ok, needed } = r.requests;
	if (!(needed > 0) || Math.abs(ok - needed) > needed * REQUEST_TOLERANCE) {
		f.push(
			`${ok} ok Assessor requests for ${needed} needed (${fmtPct(((ok - needed) / needed) * 100)}, limit ±${REQUEST_TOLERANCE * 100}%)`,
		);
	}
	return f;
}

export function fmtPct(p: number): string {
	return `${p >= 0 ? "+" : ""}${p.toFixed(1)}%`;
}

/** The table: one row a scenario, then why each failing row failed. */
export function formatTable(results: ScenarioResult[]): string {
	const head = [
		"#",
		"scenario",
		"job status",
		"stored/truth",
		"dup",
		"Assessor ok/needed",
		"over",
		"failed",
		"time",
		"result",
	];
	const rows = results.map((r) => [
		String(r.no),
		r.title,
		r.status,
		`${r.stored}/${r.truth}`,
		String(r.duplicates),
		`${r.requests.ok}/${r.requests.needed}`,
		fmtPct(r.requests.overPct),
		String(r.requests.failed),
		`${r.timeS.toFixed(1)} s`,
		r.pass ? "PASS" : "FAIL",
	]);
	const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
	const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
	const out = [line(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)];
	for (const r of results) {
		if (r.pass && r.reasons.length === 0) continue;
		out.push("", `${r.no} ${r.id}: ${r.pass ? "PASS" : "FAIL"}; fault: ${r.fault}`);
		for (const f of r.failures) out.push(`  - ${f}`);
		for (const x of r.reasons.slice(0, 8)) out.push(`  · ${x}`);
		if (r.logDir) out.push(`  logs: ${r.logDir}`);
	}
	const passed = results.filter((r) => r.pass).length;
	out.push("", `${passed}/${results.length} scenarios passed`);
	return out.join("\n");
}

/** Run scenarios one after another on one FerretDB; everything is stopped at the end, also on failure. */
export async function runScenarios(
	scenarios: Scenario[],
	opts: { size: ChaosSize; log?: (line: string) => void; logRoot?: string },
): Promise<ScenarioResult[]> {
	const ferret = await startRestartableFerretDb();
	const holder = { stop: () => ferret.destroy() };
	running.add(holder);
	const results: ScenarioResult[] = [];
	try {
		for (const s of scenarios) {
			if (aborted) break;
			results.push(await runScenario(s, { ...opts, ferret }));
		}
	} finally {
		running.delete(holder);
		await ferret.destroy();
	}
	return results;
}
