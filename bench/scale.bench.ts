/**
 * County scale (issue 11): how fast Saguaro sweeps the sandbox's Assessor, embedded and as a cluster
 * of 1, 2 and 3 maricopa worker processes, and what a county sweep would cost at the default budgets.
 *
 *   npm run bench:scale                                   (the full run: 100,000-parcel GIS sweep)
 *   npm run bench:scale -- --parcels 20000 --scale-parcels 1200   (a quick run)
 *
 * Options (all optional):
 *   --parcels N          parcels of the first GIS sweep (MARICOPA_PROPERTY_TYPES=none), default 100000
 *   --zips N             ZIPs they are spread over, default 10
 *   --sweep-workers N    maricopa workers of the sweep cluster, default 3
 *   --scale-parcels N    parcels of the worker-count comparison (GIS pages + REST details of the
 *                        residential parcels), default 4800
 *   --scale-zips N       ZIPs of the comparison, default 12 (a multiple of 6 keeps 1/2/3 workers even)
 *   --workers 1,2,3      worker counts of the comparison
 *   --per-source N       ORCHESTRATOR_CONCURRENCY_PER_SOURCE (tasks per worker node), default 2
 *   --concurrency N      MARICOPA_CONCURRENCY (detail requests in flight per task), default 4
 *   --latency MIN-MAX    sandbox latency per request on GIS and REST, ms, default 100-200
 *   --daily-change R     share of parcels whose facts change in a day, for the projection, default 0.001
 *   --no-embedded        skip the embedded run
 *   --store java|ferret  the cluster's Mongo-protocol server (default java: mongo-java-server)
 *
 * Every run has a fresh store and fresh shared state, on the same sandbox (one world holding the
 * sweep's ZIPs and the comparison's ZIPs, served from a process of its own):
 *   - embedded: one process (this one), services store,maricopa,orchestrator, NeDB under a temp
 *     DATA_DIR, no NATS, no Redis;
 *   - cluster: real nats-server and redis-server, and a MongoDB wire-protocol server: by default
 *     mongo-java-server (in memory; lookups by _id and indexed fields cost the same at any size, as
 *     on MongoDB), or with `--store ferret` FerretDB 1.24 on PostgreSQL (it scans its table on every
 *     lookup, and gets one connection from the store node: it hangs on a bulk write as large as its
 *     pool, bench/scale-ferret.ts); one store node, one orchestrator node, N maricopa nodes
 *     (bin/saguaro.ts processes, SERVICES=maricopa). See the CPU table for what limits a run.
 * Budgets are lifted (100,000 requests a minute on both hosts), so the network latency, the
 * concurrency and this machine's CPU are what limit a run. Parcels/s is the job's own clock (first
 * task started to job finished). Printed: parcels/s, scale-out and embedded-vs-cluster ratios, store
 * round trips per parcel (the job's counts, and the store's own properties.stats), Redis bytes and
 * keys before/after, every parcel stored exactly once (per ZIP against the ground truth), CPU seconds
 * by process, and a projection of a county sweep at the default budgets from the plan's request counts.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import type moleculer from "moleculer";
import { processTree } from "../src/browser/process-memory.ts";
import { loadConfig } from "../src/config/index.ts";
import { MARICOPA_COUNTY_ZIPS } from "../src/domain/county-zips.ts";
import type { JobProgress } from "../src/jobs/progress.ts";
import type { Job } from "../src/jobs/types.ts";
import { startNode } from "../src/node/start-node.ts";
import { sleep, waitFor } from "../src/utils/time.ts";
import { clientBroker, type NodeProcess, spawnNode } from "../test/harness/cluster.ts";
import { startMongoJavaServer, startNats, startRedis } from "../test/harness/servers.ts";
import { startPooledFerretDb } from "./scale-ferret.ts";
import type { ScaleSandboxOptions, ScaleSandboxReady } from "./scale-sandbox.ts";

const ROOT = resolve(import.meta.dirname, "..");
const COUNTY_PARCELS = 1_800_000;
const DEFAULT_GIS_PER_MIN = 30;
const DEFAULT_REST_PER_MIN = 60;
const DEFAULT_DETAIL_MAX_AGE_DAYS = 30;
const GIS_PAGE = 1000;
const LIFTED = "100000";
/** FerretDB's PostgreSQL pool (see bench/scale-ferret.ts: a bulk write needs one per operation). */
const FERRET_POOL = 150;

/**
 * The cluster's Mongo-protocol server. mongo-java-server (the default) answers lookups by _id and by
 * indexed fields at a flat cost as the collection grows, as MongoDB does; FerretDB 1.24 scans its
 * table on every lookup (npm run bench:store), so on it the store, not the network, bounds a run.
 */
async function startStoreServer(): Promise<{ uri: string; pids: number[]; stop(): Promise<void> }> {
	if (STORE_SERVER === "java") {
		const server = await startMongoJavaServer();
		return { uri: server.url, pids: [server.process.pid!], stop: () => server.stop() };
	}
	const ferret = await startPooledFerretDb(FERRET_POOL);
	// One connection: FerretDB 1.24 hangs on a bulk write as large as its pool (see scale-ferret.ts).
	return {
		uri: `${ferret.url}?maxPoolSize=1`,
		pids: [ferret.ferret.pid!, ferret.postgres.process.pid!],
		stop: () => ferret.stop(),
	};
}

// ---------------------------------------------------------------------------------------------
// Options

const { values: argv } = parseArgs({
	options: {
		parcels: { type: "string", default: "100000" },
		zips: { type: "string", default: "10" },
		"sweep-workers": { type: "string", default: "3" },
		"scale-parcels": { type: "string", default: "4800" },
		"scale-zips": { type: "string", default: "12" },
		workers: { type: "string", default: "1,2,3" },
		"per-source": { type: "string", default: "2" },
		concurrency: { type: "string", default: "4" },
		latency: { type: "string", default: "100-200" },
		"daily-change": { type: "string", default: "0.001" },
		"no-embedded": { type: "boolean", default: false },
		store: { type: "string", default: "java" },
	},
	strict: true,
});

function int(name: string, value: string, min: number): number {
	const n = Number(value);
	if (!Number.isInteger(n) || n < min)
		throw new Error(`--${name} must be an integer >= ${min}, got ${value}`);
	return n;
}

if (!["java", "ferret"].includes(argv.store!))
	throw new Error(`--store must be java or ferret, got ${argv.store}`);
/** The cluster's Mongo-protocol server: mongo-java-server (index-backed lookups, like MongoDB) or FerretDB. */
const STORE_SERVER = argv.store as "java" | "ferret";
const STORE_LABEL = STORE_SERVER === "java" ? "mongo-java-server" : "FerretDB + PostgreSQL";
const SWEEP_PARCELS = int("parcels", argv.parcels!, 1);
const SWEEP_ZIP_COUNT = int("zips", argv.zips!, 1);
const SWEEP_WORKERS = int("sweep-workers", argv["sweep-workers"]!, 1);
const SCALE_PARCELS = int("scale-parcels", argv["scale-parcels"]!, 1);
const SCALE_ZIP_COUNT = int("scale-zips", argv["scale-zips"]!, 1);
const WORKERS = argv.workers!.split(",").map((w) => int("workers", w.trim(), 1));
const PER_SOURCE = int("per-source", argv["per-source"]!, 1);
const CONCURRENCY = int("concurrency", argv.concurrency!, 1);
const [LAT_MIN, LAT_MAX] = argv.latency!.split("-").map((v) => int("latency", v, 0)) as [number, number];
const DAILY_CHANGE = Number(argv["daily-change"]);
if (!(DAILY_CHANGE >= 0 && DAILY_CHANGE <= 1)) throw new Error("--daily-change must be in 0..1");
if (SWEEP_ZIP_COUNT + SCALE_ZIP_COUNT > MARICOPA_COUNTY_ZIPS.length)
	throw new Error(`at most ${MARICOPA_COUNTY_ZIPS.length} ZIPs in all`);

const SWEEP_ZIPS = MARICOPA_COUNTY_ZIPS.slice(0, SWEEP_ZIP_COUNT);
const SCALE_ZIPS = MARICOPA_COUNTY_ZIPS.slice(SWEEP_ZIP_COUNT, SWEEP_ZIP_COUNT + SCALE_ZIP_COUNT);
const SWEEP_PER_ZIP = Math.ceil(SWEEP_PARCELS / SWEEP_ZIP_COUNT);
const SCALE_PER_ZIP = Math.ceil(SCALE_PARCELS / SCALE_ZIP_COUNT);

// ---------------------------------------------------------------------------------------------
// Clean-up of everything started, also on failure or Ctrl-C

const cleanups: (() => Promise<unknown>)[] = [];
function onCleanup(fn: () => Promise<unknown>): () => Promise<void> {
	cleanups.push(fn);
	return async () => {
		const i = cleanups.indexOf(fn);
		if (i >= 0) cleanups.splice(i, 1);
		await fn().catch(() => {});
	};
}
let cleaning: Promise<void> | null = null;
/** Stops everything still registered, newest first; concurrent callers share one pass. */
function cleanAll(): Promise<void> {
	cleaning ??= (async () => {
		while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
	})().finally(() => {
		cleaning = null;
	});
	return cleaning;
}
let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
	process.on(signal, () => {
		if (interrupted) return;
		interrupted = true;
		console.error(`\n${signal}: stopping everything the bench started`);
		void cleanAll().finally(() => process.exit(130));
	});
}

// ---------------------------------------------------------------------------------------------
// Measuring: CPU of process trees, Redis, sandbox counters

const CLK_TCK = 100;
/** CPU seconds (user + system, children reaped included) of a process and its descendants. */
function cpuSeconds(root: number | undefined): number {
	if (!root) return 0;
	let ticks = 0;
	for (const pid of processTree(root)) {
		try {
			const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
			const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
			// fields after the comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
			ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
		} catch {
			// gone
		}
	}
	return ticks / CLK_TCK;
}

interface RedisSnapshot {
	usedMemory: number;
	keys: number;
	/** MEMORY USAGE summed over every key. */
	keyBytes: number;
	/** Keys by prefix (first two `:` segments). */
	byPrefix: Record<string, number>;
}

async function redisSnapshot(url: string): Promise<RedisSnapshot> {
	const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
	await redis.connect();
	try {
		const info = await redis.info("memory");
		const usedMemory = Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0);
		let cursor = "0";
		const keys: string[] = [];
		do {
			const [next, batch] = await redis.scan(cursor, "COUNT", 1000);
			cursor = next;
			keys.push(...batch);
		} while (cursor !== "0");
		let keyBytes = 0;
		const byPrefix: Record<string, number> = {};
		for (let i = 0; i < keys.length; i += 500) {
			const pipe = redis.pipeline();
			for (const k of keys.slice(i, i + 500)) pipe.call("MEMORY", "USAGE", k, "SAMPLES", "0");
			for (const [, v] of (await pipe.exec()) ?? []) keyBytes += Number(v ?? 0);
		}
		for (const k of keys) {
			const prefix = k.split(":").slice(0, 2).join(":");
			byPrefix[prefix] = (byPrefix[prefix] ?? 0) + 1;
		}
		return { usedMemory, keys: keys.length, keyBytes, byPrefix };
	} finally {
		redis.disconnect();
	}
}

interface SimCounters {
	gis: number;
	rest: number;
}
async function sandboxCounters(controlUrl: string): Promise<SimCounters> {
	const res = await fetch(`${controlUrl}/stats`);
	const stats = (await res.json()) as Record<string, { total: number }>;
	return { gis: stats.gis?.total ?? 0, rest: stats.maricopa?.total ?? 0 };
}

// ---------------------------------------------------------------------------------------------
// The sandbox, in a process of its own

interface SandboxProcess {
	ready: ScaleSandboxReady;
	child: ChildProcess;
	stop(): Promise<void>;
}

async function startSandboxProcess(options: ScaleSandboxOptions): Promise<SandboxProcess> {
	const child = spawn(process.execPath, [resolve(ROOT, "bench/scale-sandbox.ts"), JSON.stringify(options)], {
		cwd: ROOT,
		stdio: ["ignore", "pipe", "pipe", "ipc"],
	});
	const exited = new Promise<void>((r) => child.once("exit", () => r()));
	const stop = async () => {
		if (child.exitCode !== null || child.signalCode !== null) return;
		child.kill("SIGTERM");
		const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
		await exited;
		clearTimeout(t);
	};
	const unregister = onCleanup(stop);
	let out = "";
	let err = "";
	child.stderr?.on("data", (d: Buffer) => {
		err = (err + d).slice(-4000);
	});
	try {
		const ready = await new Promise<ScaleSandboxReady>((res, rej) => {
			child.stdout?.on("data", (d: Buffer) => {
				out += d;
				const line = out.split("\n").find((l) => l.startsWith("READY "));
				if (line) res(JSON.parse(line.slice(6)) as ScaleSandboxReady);
			});
			child.once("exit", (code) => rej(new Error(`sandbox exited (${code}): ${err}`)));
		});
		return { ready, child, stop: unregister };
	} catch (e) {
		await unregister();
		throw e;
	}
}

// ---------------------------------------------------------------------------------------------
// Runs

type Mode = "details" | "gis";

interface RunResult {
	label: string;
	kind: "embedded" | "cluster";
	mode: Mode;
	workers: number;
	zips: string[];
	truth: number;
	status: string;
	parcels: number;
	seconds: number;
	parcelsPerS: number;
	requests: SimCounters;
	jobRequests: number;
	failures: number;
	gaps: number;
	storeTripsJob: number;
	storeTripsStats: number;
	stored: number;
	withApn: number;
	zipsMatching: number;
	redis: { before: RedisSnapshot; after: RedisSnapshot } | null;
	cpu: Record<string, number>;
	tasks: number;
}

function maricopaEnv(sb: ScaleSandboxReady, mode: Mode): Record<string, string> {
	return {
		MARICOPA_BASE_URL: sb.env.MARICOPA_BASE_URL!,
		MARICOPA_TOKEN: sb.env.MARICOPA_TOKEN!,
		MARICOPA_GIS_URL: sb.env.MARICOPA_GIS_URL!,
		MARICOPA_RATE_PER_MIN: LIFTED,
		MARICOPA_GIS_RATE_PER_MIN: LIFTED,
		MARICOPA_CONCURRENCY: String(CONCURRENCY),
		MARICOPA_PROPERTY_TYPES: mode === "gis" ? "none" : "residential",
		MARICOPA_BREAKER_MIN_REQUESTS: "1000",
	};
}

function orchestratorEnv(): Record<string, string> {
	return {
		ORCHESTRATOR_CONCURRENCY_PER_SOURCE: `maricopa=${PER_SOURCE}`,
		ORCHESTRATOR_TICK_MS: "200",
		ORCHESTRATOR_BACKOFF_BASE_MS: "500",
	};
}

interface StatusView {
	job: Job;
	progress: JobProgress;
}

/** A job that finishes no task for this long is stuck: the run fails (records count when a task ends). */
const STALL_MS = 600_000;
const TERMINAL = new Set(["completed", "completed_with_errors", "failed", "cancelled"]);

/** Starts the job, follows it to the end (a progress line every 15 s), answers the final view. */
async function runJob(broker: moleculer.ServiceBroker, label: string, zips: string[]): Promise<StatusView> {
	const started = (await broker.call("orchestrator.collect", {
		zips,
		sources: ["maricopa"],
		origin: "bench:scale",
	})) as StatusView;
	const id = started.job.id;
	let lastPrint = Date.now();
	let lastMark = "";
	let lastMove = Date.now();
	for (;;) {
		await sleep(500);
		if (interrupted) throw new Error("interrupted");
		const view = (await broker.call("orchestrator.status", { id })) as StatusView;
		if (TERMINAL.has(view.job.status)) return view;
		const mark = `${view.progress.items.done}/${view.progress.tasks.done}`;
		if (mark !== lastMark) {
			lastMark = mark;
			lastMove = Date.now();
		} else if (Date.now() - lastMove > STALL_MS) {
			const detail = (await broker.call("orchestrator.status", { id, tasks: true })) as {
				tasks: { id: string; state: string; errors: { message: string }[] }[];
			};
			const errors = detail.tasks
				.filter((t) => t.errors.length > 0)
				.slice(0, 5)
				.map((t) => `${t.id} (${t.state}): ${t.errors.at(-1)?.message}`);
			throw new Error(
				`${label}: no progress for ${STALL_MS / 1000} s; ${errors.join("; ") || "no task errors"}`,
			);
		}
		if (Date.now() - lastPrint >= 15_000) {
			lastPrint = Date.now();
			const p = view.progress;
			console.log(
				`  [${label}] ${p.items.done.toLocaleString("en-US")}/${p.items.expected?.toLocaleString("en-US") ?? "?"} parcels, ` +
					`${p.tasks.done}/${p.tasks.total} tasks, ${p.itemsPerS}/s, eta ${p.etaS ?? "?"}s`,
			);
		}
	}
}

/** The job's own clock: created (the leader plans it) to finished (its last task settled). */
function jobSeconds(view: StatusView, t0: number): number {
	return ((view.job.finishedAt ?? Date.now()) - (view.job.createdAt ?? t0)) / 1000;
}

async function storeCheck(
	broker: moleculer.ServiceBroker,
	zips: string[],
	byZip: Record<string, number>,
): Promise<{ stored: number; withApn: number; zipsMatching: number; trips: number }> {
	const stats = (await broker.call("properties.stats")) as {
		properties: number;
		withApn: number;
		roundTrips: { total: number };
	};
	let zipsMatching = 0;
	for (const zip of zips) {
		const n = (await broker.call("properties.count", { query: { zip } })) as number;
		if (n === byZip[zip]) zipsMatching++;
		else console.log(`  ZIP ${zip}: ${n} properties stored, ${byZip[zip]} in the ground truth`);
	}
	return { stored: stats.properties, withApn: stats.withApn, zipsMatching, trips: stats.roundTrips.total };
}

function summarize(
	base: Omit<
		RunResult,
		| "status"
		| "parcels"
		| "seconds"
		| "parcelsPerS"
		| "jobRequests"
		| "failures"
		| "gaps"
		| "storeTripsJob"
		| "tasks"
	>,
	view: StatusView,
	seconds: number,
): RunResult {
	const c = view.progress.counts;
	return {
		...base,
		status: view.job.status,
		parcels: c.items,
		seconds,
		parcelsPerS: c.items / seconds,
		jobRequests: c.requests,
		failures: c.failures,
		gaps: c.gaps,
		storeTripsJob: c.storeRoundTrips,
		tasks: view.progress.tasks.total,
	};
}

async function embeddedRun(sb: SandboxProcess, zips: string[], mode: Mode): Promise<RunResult> {
	const label = `embedded ${mode}`;
	console.log(`\n== ${label}: ${zips.length} ZIPs, one process, NeDB`);
	const dataDir = mkdtempSync(join(tmpdir(), "saguaro-bench-scale-"));
	const removeDir = onCleanup(async () => rmSync(dataDir, { recursive: true, force: true }));
	const env = {
		NODE_ID: "embedded",
		SERVICES: "store,maricopa,orchestrator",
		DATA_DIR: dataDir,
		REPL: "off",
		LOG_LEVEL: "warn",
		METRICS_PORT: "0",
		HEALTH_PORT: "0",
		API_PORT: "0",
		...maricopaEnv(sb.ready, mode),
		...orchestratorEnv(),
	};
	const node = await startNode(loadConfig(env));
	const stopNode = onCleanup(() => node.stop());
	try {
		await node.broker.waitForServices(["orchestrator", "properties", "raw", "maricopa"], 30_000);
		const simBefore = await sandboxCounters(sb.ready.env.SANDBOX_CONTROL_URL!);
		const cpu0 = { self: process.cpuUsage(), sandbox: cpuSeconds(sb.child.pid) };
		const t0 = Date.now();
		const view = await runJob(node.broker, label, zips);
		const simAfter = await sandboxCounters(sb.ready.env.SANDBOX_CONTROL_URL!);
		const self = process.cpuUsage(cpu0.self);
		const cpu = {
			"embedded node": (self.user + self.system) / 1e6,
			sandbox: cpuSeconds(sb.child.pid) - cpu0.sandbox,
		};
		const check = await storeCheck(node.broker, zips, sb.ready.byZip);
		return summarize(
			{
				label,
				kind: "embedded",
				mode,
				workers: 1,
				zips,
				truth: zips.reduce((s, z) => s + (sb.ready.byZip[z] ?? 0), 0),
				requests: { gis: simAfter.gis - simBefore.gis, rest: simAfter.rest - simBefore.rest },
				storeTripsStats: check.trips,
				stored: check.stored,
				withApn: check.withApn,
				zipsMatching: check.zipsMatching,
				redis: null,
				cpu,
			},
			view,
			jobSeconds(view, t0),
		);
	} finally {
		await stopNode();
		await removeDir();
	}
}

async function clusterRun(
	sb: SandboxProcess,
	zips: string[],
	mode: Mode,
	workers: number,
): Promise<RunResult> {
	const label = `cluster ${mode} ${workers}w`;
	console.log(
		`\n== ${label}: ${zips.length} ZIPs, NATS + Redis + ${STORE_LABEL}, store + orchestrator + ${workers} maricopa node(s)`,
	);
	const local: (() => Promise<void>)[] = [];
	try {
		const tracked = async <T extends { stop(): Promise<void> }>(start: Promise<T>): Promise<T> => {
			const server = await start;
			local.push(onCleanup(() => server.stop()));
			return server;
		};
		const [nats, redis, mongo] = await Promise.all([
			tracked(startNats()),
			tracked(startRedis()),
			tracked(startStoreServer()),
		]);
		const base = {
			TRANSPORTER: nats.url,
			REDIS_URL: redis.url,
			API_PORT: "0",
			LOG_LEVEL: "warn",
			HEARTBEAT_INTERVAL_S: "2",
			HEARTBEAT_TIMEOUT_S: "30",
		};
		const nodes: NodeProcess[] = [];
		const spawnTracked = (nodeId: string, env: Record<string, string>) => {
			const n = spawnNode({ nodeId, env: { ...base, ...env, LOG_LEVEL: "info" } });
			nodes.push(n);
			local.push(onCleanup(() => n.stop()));
			return n;
		};
		const dataDir = mkdtempSync(join(tmpdir(), "saguaro-bench-scale-"));
		local.push(onCleanup(async () => rmSync(dataDir, { recursive: true, force: true })));
		const store = spawnTracked("store-1", {
			SERVICES: "store",
			MONGO_URI: mongo.uri,
			DATA_DIR: dataDir,
		});
		const orch = spawnTracked("orch-1", {
			SERVICES: "orchestrator",
			...orchestratorEnv(),
			MARICOPA_RATE_PER_MIN: LIFTED,
			MARICOPA_GIS_RATE_PER_MIN: LIFTED,
		});
		const mcs = Array.from({ length: workers }, (_, i) =>
			spawnTracked(`mc-${i + 1}`, { SERVICES: "maricopa", ...maricopaEnv(sb.ready, mode) }),
		);
		await Promise.all(nodes.map((n) => n.ready()));
		const client = clientBroker(nats.url, "bench-scale-client", { requestTimeout: 120_000 });
		await client.start();
		local.push(onCleanup(() => client.stop()));
		await client.waitForServices(["orchestrator", "properties", "raw", "maricopa"], 60_000);
		await waitFor(
			() =>
				(
					client.registry.getActionEndpoints("maricopa.collectZip") as unknown as
						| { endpoints?: unknown[] }
						| undefined
				)?.endpoints?.length === workers,
			`${workers} maricopa endpoints`,
			60_000,
		);
		await waitFor(
			async () => ((await client.call("orchestrator.leader")) as { leader: boolean }).leader,
			"an orchestrator leader",
			60_000,
			200,
		);
		// Let every node's registry settle (the orchestrator dispatches to the endpoints it sees).
		await sleep(2000);

		const redisBefore = await redisSnapshot(redis.url);
		const simBefore = await sandboxCounters(sb.ready.env.SANDBOX_CONTROL_URL!);
		const procs = (): Record<string, number> => ({
			sandbox: cpuSeconds(sb.child.pid),
			"store node": cpuSeconds(store.process.pid),
			[STORE_LABEL]: mongo.pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0),
			"maricopa nodes": mcs.reduce((s, n) => s + cpuSeconds(n.process.pid), 0),
			orchestrator: cpuSeconds(orch.process.pid),
			"NATS + Redis": cpuSeconds(nats.process.pid) + cpuSeconds(redis.process.pid),
		});
		const cpu0 = procs();
		const t0 = Date.now();
		const view = await runJob(client, label, zips);
		const cpu1 = procs();
		const simAfter = await sandboxCounters(sb.ready.env.SANDBOX_CONTROL_URL!);
		const redisAfter = await redisSnapshot(redis.url);
		const check = await storeCheck(client, zips, sb.ready.byZip);
		const cpu: Record<string, number> = {};
		for (const k of Object.keys(cpu0)) cpu[k] = cpu1[k]! - cpu0[k]!;
		return summarize(
			{
				label,
				kind: "cluster",
				mode,
				workers,
				zips,
				truth: zips.reduce((s, z) => s + (sb.ready.byZip[z] ?? 0), 0),
				requests: { gis: simAfter.gis - simBefore.gis, rest: simAfter.rest - simBefore.rest },
				storeTripsStats: check.trips,
				stored: check.stored,
				withApn: check.withApn,
				zipsMatching: check.zipsMatching,
				redis: { before: redisBefore, after: redisAfter },
				cpu,
			},
			view,
			jobSeconds(view, t0),
		);
	} finally {
		for (const stop of local.reverse()) await stop();
	}
}

// ---------------------------------------------------------------------------------------------
// Printing

const f0 = (n: number) => Math.round(n).toLocaleString("en-US");
const f1 = (n: number) => n.toFixed(1);
const f2 = (n: number) => n.toFixed(2);
const f3 = (n: number) => n.toFixed(3);

function duration(minutes: number): string {
	if (minutes < 60) return `${f1(minutes)} min`;
	const hours = minutes / 60;
	if (hours < 48) return `${f1(hours)} h`;
	return `${f1(hours / 24)} days`;
}

function printRuns(runs: RunResult[]): void {
	console.table(
		runs.map((r) => ({
			run: r.label,
			ZIPs: r.zips.length,
			parcels: f0(r.parcels),
			s: f1(r.seconds),
			"parcels/s": f1(r.parcelsPerS),
			"GIS req": r.requests.gis,
			"REST req": r.requests.rest,
			tasks: r.tasks,
			"trips/parcel (job)": f3(r.storeTripsJob / Math.max(1, r.parcels)),
			"trips/parcel (store)": f3(r.storeTripsStats / Math.max(1, r.parcels)),
			"stored/truth": `${f0(r.stored)}/${f0(r.truth)}`,
			"ZIPs exact": `${r.zipsMatching}/${r.zips.length}`,
			status: r.status,
		})),
	);
}

function printRedis(runs: RunResult[]): void {
	const rows = runs.filter((r) => r.redis);
	if (rows.length === 0) return;
	console.log(
		"\nRedis (fresh per run; before = nodes up, after = job done; the ledger keeps the job and its tasks)",
	);
	console.table(
		rows.map((r) => {
			const { before, after } = r.redis!;
			return {
				run: r.label,
				parcels: f0(r.parcels),
				tasks: r.tasks,
				"keys before": before.keys,
				"keys after": after.keys,
				"MEMORY USAGE before": f0(before.keyBytes),
				"MEMORY USAGE after": f0(after.keyBytes),
				"key bytes/parcel": f2((after.keyBytes - before.keyBytes) / Math.max(1, r.parcels)),
				"used_memory/parcel": f2((after.usedMemory - before.usedMemory) / Math.max(1, r.parcels)),
			};
		}),
	);
	const last = rows.at(-1)!;
	console.log(`keys by prefix after ${last.label}: ${JSON.stringify(last.redis!.after.byPrefix)}`);
}

function printCpu(runs: RunResult[]): void {
	console.log("\nCPU seconds by process over each job (2 cores = 2 CPU-s per second of wall time at most)");
	console.table(
		runs.map((r) => {
			const row: Record<string, string> = { run: r.label, wall: f1(r.seconds) };
			let total = 0;
			for (const [k, v] of Object.entries(r.cpu)) {
				row[k] = f1(v);
				total += v;
			}
			row["sum / wall"] = f2(total / r.seconds);
			return row;
		}),
	);
}

function printProjection(sb: ScaleSandboxReady, runs: RunResult[]): void {
	const zipsN = MARICOPA_COUNTY_ZIPS.length;
	const perZip = COUNTY_PARCELS / zipsN;
	// The plan: per ZIP one count request and ceil(n / 1000) pages (plus one layer check per node).
	const gisRequests = zipsN * (1 + Math.ceil(perZip / GIS_PAGE));
	let total = 0;
	let residential = 0;
	for (const types of Object.values(sb.typesByZip)) {
		for (const [t, n] of Object.entries(types)) {
			total += n;
			if (t === "RESIDENTIAL") residential += n;
		}
	}
	const worldShare = residential / total;
	const details = runs.filter((r) => r.mode === "details" && r.parcels > 0);
	const measuredShare =
		details.length > 0
			? details.reduce((s, r) => s + r.requests.rest, 0) / details.reduce((s, r) => s + r.parcels, 0)
			: Number.NaN;
	const share = Number.isFinite(measuredShare) ? measuredShare : worldShare;
	const restRequests = COUNTY_PARCELS * share;
	const gisMin = gisRequests / DEFAULT_GIS_PER_MIN;
	const restMin = restRequests / DEFAULT_REST_PER_MIN;
	const dailyChanged = COUNTY_PARCELS * DAILY_CHANGE * share;
	const dailyAged = (COUNTY_PARCELS * share) / DEFAULT_DETAIL_MAX_AGE_DAYS;
	const sweep = runs.find((r) => r.mode === "gis" && r.kind === "cluster");
	console.log(
		`\nProjected county sweep at the default budgets (GIS ${DEFAULT_GIS_PER_MIN}/min, REST ${DEFAULT_REST_PER_MIN}/min; the two hosts run side by side)`,
	);
	console.log(
		`  ${f0(COUNTY_PARCELS)} parcels over ${zipsN} ZIPs (~${f0(perZip)} a ZIP); residential share ${f3(worldShare)} in the sandbox world, ` +
			`${Number.isFinite(measuredShare) ? f3(measuredShare) : "n/a"} measured (REST requests / parcels of the detail runs); using ${f3(share)}`,
	);
	if (sweep) {
		const planned = sweep.zips.reduce((s, z) => s + 1 + Math.ceil((sb.byZip[z] ?? 0) / GIS_PAGE), 0);
		console.log(
			`  plan check on the ${f0(sweep.parcels)}-parcel sweep: ${planned} GIS requests planned (count + pages), ` +
				`${sweep.requests.gis} measured (+1 layer check per worker node)`,
		);
	}
	console.table([
		{
			run: "first sweep: base facts (GIS)",
			requests: f0(gisRequests),
			"at default budget": duration(gisMin),
		},
		{
			run: "first sweep: REST details (residential)",
			requests: f0(restRequests),
			"at default budget": duration(restMin),
		},
		{
			run: "first sweep: total (hosts in parallel)",
			requests: f0(gisRequests + restRequests),
			"at default budget": duration(Math.max(gisMin, restMin)),
		},
		{
			run: `daily: GIS pass + details of changed parcels (${(DAILY_CHANGE * 100).toFixed(2)}%/day)`,
			requests: f0(gisRequests + dailyChanged),
			"at default budget": duration(Math.max(gisMin, dailyChanged / DEFAULT_REST_PER_MIN)),
		},
		{
			run: `daily: + details aged past MARICOPA_DETAIL_MAX_AGE_H=720 (1/${DEFAULT_DETAIL_MAX_AGE_DAYS} a day)`,
			requests: f0(gisRequests + dailyChanged + dailyAged),
			"at default budget": duration(Math.max(gisMin, (dailyChanged + dailyAged) / DEFAULT_REST_PER_MIN)),
		},
	]);
	console.log(
		`  assumption: ${(DAILY_CHANGE * 100).toFixed(2)}% of parcels change their bulk facts a day (${f0(COUNTY_PARCELS * DAILY_CHANGE)} parcels; ` +
			`Maricopa records on the order of 100,000 sales a year, ~300 a day, so this is generous). ` +
			`REST ${DEFAULT_REST_PER_MIN}/min is at most ${f0(DEFAULT_REST_PER_MIN * 1440)} details a day.`,
	);
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
	const command = `npm run bench:scale -- ${process.argv.slice(2).join(" ")}`.trim().replace(/ --$/, "");
	console.log(`# ${command}`);
	console.log(
		`# ${new Date().toISOString()}, load average ${loadavg()
			.map((l) => l.toFixed(2))
			.join(" ")} (other work on this machine slows the runs)`,
	);
	console.log(
		`# sweep: ${f0(SWEEP_PER_ZIP * SWEEP_ZIP_COUNT)} parcels over ${SWEEP_ZIP_COUNT} ZIPs, GIS only, ${SWEEP_WORKERS} worker(s); ` +
			`comparison: ${f0(SCALE_PER_ZIP * SCALE_ZIP_COUNT)} parcels over ${SCALE_ZIP_COUNT} ZIPs with REST details, workers ${WORKERS.join(",")}` +
			`${argv["no-embedded"] ? "" : " and embedded"}; latency ${LAT_MIN}-${LAT_MAX} ms per request; ` +
			`ORCHESTRATOR_CONCURRENCY_PER_SOURCE=${PER_SOURCE}, MARICOPA_CONCURRENCY=${CONCURRENCY}`,
	);
	const parcelsPerZip: ScaleSandboxOptions["parcelsPerZip"] = { default: SCALE_PER_ZIP };
	for (const z of SWEEP_ZIPS) parcelsPerZip[z] = SWEEP_PER_ZIP;
	const sb = await startSandboxProcess({
		seed: 20260,
		zips: [...SWEEP_ZIPS, ...SCALE_ZIPS],
		parcelsPerZip,
		latency: { minMs: LAT_MIN, maxMs: LAT_MAX },
	});
	console.log(
		`# sandbox (pid ${sb.child.pid}) up in ${sb.ready.generatedMs} ms: ${f0(Object.values(sb.ready.byZip).reduce((s, n) => s + n, 0))} parcels`,
	);

	const runs: RunResult[] = [];
	try {
		if (!argv["no-embedded"]) runs.push(await embeddedRun(sb, SCALE_ZIPS, "details"));
		for (const w of WORKERS) runs.push(await clusterRun(sb, SCALE_ZIPS, "details", w));
		runs.push(await clusterRun(sb, SWEEP_ZIPS, "gis", SWEEP_WORKERS));
	} finally {
		await sb.stop();
		await cleanAll();
	}

	console.log(`\n# ${command}`);
	console.log(
		`Worker-count comparison: ${f0(SCALE_PER_ZIP * SCALE_ZIP_COUNT)} parcels (${SCALE_ZIP_COUNT} ZIPs) with REST details of the residential ones — ` +
			`fewer parcels than the sweep so the whole bench stays within ~15 minutes. Sweep: a first GIS-only sweep of ` +
			`${f0(SWEEP_PER_ZIP * SWEEP_ZIP_COUNT)} parcels (MARICOPA_PROPERTY_TYPES=none).`,
	);
	printRuns(runs);

	const byWorkers = (w: number) =>
		runs.find((r) => r.kind === "cluster" && r.mode === "details" && r.workers === w);
	const one = byWorkers(1);
	const embedded = runs.find((r) => r.kind === "embedded");
	const ratios: Record<string, string>[] = [];
	for (const w of WORKERS.filter((w) => w > 1)) {
		const r = byWorkers(w);
		if (one && r)
			ratios.push({
				ratio: `${w} workers vs 1`,
				value: f2(r.parcelsPerS / one.parcelsPerS),
				target: w === 2 ? ">= 1.7" : "",
			});
	}
	if (embedded) {
		for (const w of WORKERS) {
			const r = byWorkers(w);
			if (r)
				ratios.push({
					ratio: `cluster ${w}w vs embedded`,
					value: f2(r.parcelsPerS / embedded.parcelsPerS),
					target: w === 1 ? ">= 0.5" : "",
				});
		}
	}
	const sweep = runs.find((r) => r.mode === "gis");
	if (sweep) {
		ratios.push({
			ratio: "store round trips per parcel, first GIS sweep (job / store)",
			value: `${f3(sweep.storeTripsJob / Math.max(1, sweep.parcels))} / ${f3(sweep.storeTripsStats / Math.max(1, sweep.parcels))}`,
			target: "<= 0.05",
		});
		ratios.push({
			ratio: `${f0(sweep.truth)}-parcel sweep`,
			value: `${sweep.status}, ${f0(sweep.stored)} stored, ${sweep.zipsMatching}/${sweep.zips.length} ZIPs exact, ${f1(sweep.seconds)} s`,
			target: "completes",
		});
	}
	console.log("");
	console.table(ratios);
	printRedis(runs);
	printCpu(runs);
	printProjection(sb.ready, runs);

	const ok = runs.every(
		(r) => r.status === "completed" && r.stored === r.truth && r.zipsMatching === r.zips.length,
	);
	if (!ok) {
		console.log("\nNOT every run completed with every parcel stored exactly once (see above).");
		process.exitCode = 1;
	}
}

try {
	await main();
} catch (err) {
	console.error(err);
	await cleanAll();
	process.exitCode = 1;
}
