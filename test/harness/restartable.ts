/**
 * Restartable infrastructure servers for chaos runs (bench/chaos, test/cluster/chaos-quick.test.ts):
 * unlike `test/harness/servers.ts`, whose servers are started once and removed by `stop()`, these
 * can be stopped (cleanly or by a signal) and started again on the SAME port and the SAME data
 * directory, so clients reconnect to what an operator's restart gives them:
 *
 *   const redis = await startRestartableRedis({ appendonly: true });
 *   await redis.stop();            // SIGTERM (Redis writes its AOF), port and dir kept
 *   await redis.start();           // same port, same dir: the AOF is replayed
 *   await redis.destroy();         // stopped and the dir removed
 *
 * Also toxiproxy-server (Shopify/toxiproxy v2, built by scripts/build-toxiproxy.sh into .tools/bin)
 * with a small client for proxies and toxics (partitions, latency).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort } from "../../src/utils/net.ts";
import { sleep } from "../../src/utils/time.ts";
import { findBinary, portOpen, type RunningServer, startPostgres } from "./servers.ts";

const ROOT = resolve(import.meta.dirname, "../..");

/** Processes and dirs started here and not yet stopped/removed (for killEverythingSync). */
const liveProcesses = new Set<ChildProcess>();
const liveDirs = new Set<string>();

/** Track a child process (e.g. a node or a PostgreSQL) for killEverythingSync, until it exits. */
export function trackProcess(child: ChildProcess): void {
	if (child.exitCode !== null || child.signalCode !== null) return;
	liveProcesses.add(child);
	child.once("exit", () => liveProcesses.delete(child));
}

/** Track a dir for killEverythingSync to remove, until `untrackDir`. */
export function trackDir(dir: string): void {
	liveDirs.add(dir);
}

export function untrackDir(dir: string): void {
	liveDirs.delete(dir);
}

/**
 * Last resort for an interrupted run (a `process.on("exit")` hook: synchronous): SIGKILL every
 * tracked process still running and remove the tracked dirs.
 */
export function killEverythingSync(): void {
	for (const child of liveProcesses) {
		try {
			child.kill("SIGKILL");
		} catch {}
	}
	liveProcesses.clear();
	for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
	liveDirs.clear();
}

export interface RestartableServer {
	name: string;
	url: string;
	port: number;
	/** The data/working directory, kept across restarts. */
	dir: string;
	/** True while the process runs. */
	readonly running: boolean;
	/** The current process (null while stopped). */
	readonly process: ChildProcess | null;
	/** Start again on the same port and dir (no-op while running); resolves once ready. */
	start(): Promise<void>;
	/**
	 * Stop the process, keeping port and dir: `signal` (default: the server's clean-shutdown signal),
	 * SIGKILL after 5 s. Resolves once it has exited.
	 */
	stop(signal?: NodeJS.Signals): Promise<void>;
	/** Stop, wait `downMs`, start again. */
	restart(downMs: number, signal?: NodeJS.Signals): Promise<void>;
	/** Stop for good and remove the dir (idempotent). */
	destroy(): Promise<void>;
	/** The last few KB the process printed (all runs). */
	output(): string;
}

export interface RestartableOptions {
	name: string;
	binary: string;
	args: (port: number, dir: string) => string[];
	url: (port: number) => string;
	/** Ready when this answers true (default: the port accepts TCP connections). */
	ready?: (port: number, dir: string) => Promise<boolean>;
	/** Clean-shutdown signal (default SIGTERM). */
	stopSignal?: NodeJS.Signals;
	/** An existing dir to use (kept by destroy() when given); default a fresh temp dir. */
	dir?: string;
	/** Port to listen on; default a free port. */
	port?: number;
}

/** How long a server must stay up after its port answers, to be sure the port is its own. */
const STILL_UP_MS = 300;

/**
 * A server process that can be stopped and started again on the same port and dir. Without a given
 * port it takes a free one, and another if the first was taken before the server could bind it.
 */
export async function startRestartable(opts: RestartableOptions): Promise<RestartableServer> {
	for (let tries = 1; ; tries++) {
		try {
			return await startRestartableOnce(opts);
		} catch (err) {
			if (opts.port !== undefined || tries >= 3 || !/port \d+ taken/.test(String(err))) throw err;
		}
	}
}

async function startRestartableOnce(opts: RestartableOptions): Promise<RestartableServer> {
	const port = opts.port ?? (await freePort());
	const ownDir = opts.dir === undefined;
	const dir = opts.dir ?? mkdtempSync(join(tmpdir(), `saguaro-${opts.name}-`));
	if (ownDir) trackDir(dir);
	let child: ChildProcess | null = null;
	let gone: Promise<void> = Promise.resolve();
	let exited = true;
	let output = "";
	let destroyed = false;
	const keep = (d: Buffer) => {
		output = (output + d).slice(-8000);
	};
	const ready = opts.ready ?? ((p: number) => portOpen(p));

	const stop = async (signal?: NodeJS.Signals) => {
		const c = child;
		if (!c || exited) return;
		c.kill(signal ?? opts.stopSignal ?? "SIGTERM");
		const timer = setTimeout(() => c.kill("SIGKILL"), 5000);
		await gone;
		clearTimeout(timer);
	};

	const start = async () => {
		if (destroyed) throw new Error(`${opts.name} was destroyed`);
		if (child && !exited) return;
		// The port of the previous run may linger a moment (TIME_WAIT is fine; a listener is not).
		for (let i = 0; i < 100 && (await portOpen(port)); i++) await sleep(50);
		const c = spawn(opts.binary, opts.args(port, dir), { stdio: ["ignore", "pipe", "pipe"], cwd: dir });
		child = c;
		exited = false;
		trackProcess(c);
		c.stdout?.on("data", keep);
		c.stderr?.on("data", keep);
		gone = new Promise<void>((r) =>
			c.once("exit", () => {
				exited = true;
				r();
			}),
		);
		c.once("error", (err) => {
			output += `\n${err.message}`;
			exited = true;
		});
		const deadline = Date.now() + 30_000;
		for (;;) {
			let failure: string | null = null;
			if (exited) failure = `exited (code ${c.exitCode}, signal ${c.signalCode})`;
			else if (await ready(port, dir).catch(() => false)) {
				// Another process may have taken the port between freePort() and the spawn: then "ready"
				// answered for it, and ours exits at once ("address already in use").
				await sleep(STILL_UP_MS);
				if (!exited) return;
				failure = `exited right after its port answered (code ${c.exitCode}): port ${port} taken by another process?`;
			} else if (Date.now() > deadline) failure = `not ready on port ${port} after 30 s`;
			if (failure) {
				await stop("SIGKILL");
				throw new Error(`${opts.name} did not start: ${failure}\n--- ${opts.name} output ---\n${output}`);
			}
			await sleep(50);
		}
	};

	const server: RestartableServer = {
		name: opts.name,
		url: opts.url(port),
		port,
		dir,
		get running() {
			return child !== null && !exited;
		},
		get process() {
			return exited ? null : child;
		},
		start,
		stop,
		async restart(downMs, signal) {
			await stop(signal);
			await sleep(downMs);
			await start();
		},
		async destroy() {
			if (destroyed) return;
			await stop();
			destroyed = true;
			if (ownDir) {
				rmSync(dir, { recursive: true, force: true });
				untrackDir(dir);
			}
		},
		output: () => output,
	};
	try {
		await start();
	} catch (err) {
		if (ownDir) rmSync(dir, { recursive: true, force: true });
		throw err;
	}
	return server;
}

export interface RestartableRedisOptions {
	/** `appendonly yes` (fsync every second): a restart replays the AOF. Default false: nothing kept. */
	appendonly?: boolean;
	/** Data dir (default a fresh temp dir). */
	dir?: string;
}

/** redis-server on loopback; without `appendonly` a restart starts empty (no RDB snapshots either). */
export function startRestartableRedis(options: RestartableRedisOptions = {}): Promise<RestartableServer> {
	const aof = options.appendonly === true;
	return startRestartable({
		name: aof ? "redis-aof" : "redis",
		binary: findBinary("redis-server"),
		dir: options.dir,
		args: (port, dir) => [
			"--port",
			String(port),
			"--bind",
			"127.0.0.1",
			"--save",
			"",
			"--appendonly",
			aof ? "yes" : "no",
			"--appendfsync",
			"everysec",
			"--dir",
			dir,
		],
		url: (port) => `redis://127.0.0.1:${port}`,
	});
}

/** nats-server on loopback (core NATS, no JetStream: a restart keeps nothing but the port). */
export function startRestartableNats(): Promise<RestartableServer> {
	return startRestartable({
		name: "nats",
		binary: findBinary("nats-server"),
		args: (port) => ["-a", "127.0.0.1", "-p", String(port)],
		url: (port) => `nats://127.0.0.1:${port}`,
	});
}

export interface RestartableFerretDb extends RestartableServer {
	/** The PostgreSQL server FerretDB stores into: it keeps running while FerretDB is stopped. */
	postgres: RunningServer;
	/**
	 * `mongodb://127.0.0.1:<port>/<db>?maxPoolSize=1`: a database of its own (e.g. one per chaos
	 * scenario), one connection per client (see `poolMaxConns`).
	 */
	urlFor(db: string): string;
}

export interface RestartableFerretDbOptions {
	/**
	 * FerretDB's PostgreSQL connection pool (`pool_max_conns`), default 150 (PostgreSQL allows 200).
	 * FerretDB 1.24 holds one pooled connection per operation of a bulk write until the bulk is done,
	 * so a bulk of pool-size operations never finishes and every later request waits behind it (see
	 * bench/scale-ferret.ts). Give the store node `maxPoolSize=1` in its MONGO_URI (`urlFor`) so one
	 * bulk at a time reaches FerretDB and fits the pool.
	 */
	poolMaxConns?: number;
}

/**
 * FerretDB 1.24 on its own PostgreSQL: `stop()`/`start()` stop and start FerretDB only (the store
 * "server" clients connect to), on the same port; the data stays in PostgreSQL. `destroy()` stops both.
 */
export async function startRestartableFerretDb(
	options: RestartableFerretDbOptions = {},
): Promise<RestartableFerretDb> {
	const pool = options.poolMaxConns ?? 150;
	const postgres = await startPostgres();
	trackProcess(postgres.process);
	// Its dir (the url's port is enough to find it in `ps`) is left to the OS when killed.
	let ferret: RestartableServer;
	try {
		ferret = await startRestartable({
			name: "ferretdb",
			binary: findBinary("ferretdb"),
			args: (port, dir) => [
				"--handler=postgresql",
				`--postgresql-url=${postgres.url}?pool_max_conns=${pool}`,
				`--listen-addr=127.0.0.1:${port}`,
				`--state-dir=${dir}`,
				"--telemetry=disable",
				"--debug-addr=-",
				"--log-level=error",
			],
			url: (port) => `mongodb://127.0.0.1:${port}/saguaro`,
		});
	} catch (err) {
		await postgres.stop();
		throw err;
	}
	const destroyFerret = ferret.destroy;
	return Object.assign(ferret, {
		postgres,
		urlFor: (db: string) => `mongodb://127.0.0.1:${ferret.port}/${db}?maxPoolSize=1`,
		async destroy() {
			try {
				await destroyFerret();
			} finally {
				await postgres.stop();
			}
		},
	});
}

// ---- toxiproxy ----

/** Where scripts/build-toxiproxy.sh puts toxiproxy-server. */
export const TOXIPROXY_BINARY = join(ROOT, ".tools/bin/toxiproxy-server");

/** Build toxiproxy-server (scripts/build-toxiproxy.sh, Go module proxy) unless it is there already. */
export function ensureToxiproxyBuilt(): string {
	if (!existsSync(TOXIPROXY_BINARY)) {
		execFileSync("bash", [join(ROOT, "scripts/build-toxiproxy.sh")], { stdio: "inherit" });
	}
	return TOXIPROXY_BINARY;
}

/** How long a partition holds data at most (an hour: longer than any test or chaos row). */
const PARTITION_HOLD_MS = 3_600_000;

export interface ToxicProxy {
	name: string;
	/** Port the proxy listens on (point clients here). */
	port: number;
	upstreamPort: number;
	/**
	 * Cut the link both ways for good measure: data is held (not delivered, connections not closed)
	 * until `heal()`, as a network partition does to TCP.
	 */
	partition(): Promise<void>;
	/** Add latency both ways (ms, with jitter). */
	latency(ms: number, jitterMs?: number): Promise<void>;
	/** Remove every toxic. */
	heal(): Promise<void>;
}

export interface Toxiproxy extends RestartableServer {
	apiUrl: string;
	/** A proxy listening on a free loopback port, forwarding to 127.0.0.1:upstreamPort. */
	proxy(name: string, upstreamPort: number): Promise<ToxicProxy>;
}

/** toxiproxy-server on a free loopback port (built first when missing). */
export async function startToxiproxy(): Promise<Toxiproxy> {
	const binary = ensureToxiproxyBuilt();
	const server = await startRestartable({
		name: "toxiproxy",
		binary,
		args: (port) => ["-host", "127.0.0.1", "-port", String(port)],
		url: (port) => `http://127.0.0.1:${port}`,
		ready: async (port) => (await fetch(`http://127.0.0.1:${port}/version`)).ok,
	});
	const api = async (method: string, path: string, body?: unknown) => {
		const res = await fetch(`${server.url}${path}`, {
			method,
			headers: body === undefined ? {} : { "content-type": "application/json" },
			body: body === undefined ? undefined : JSON.stringify(body),
		});
		const text = await res.text();
		if (!res.ok) throw new Error(`toxiproxy ${method} ${path}: ${res.status} ${text}`);
		return text ? (JSON.parse(text) as unknown) : null;
	};
	return Object.assign(server, {
		apiUrl: server.url,
		async proxy(name: string, upstreamPort: number): Promise<ToxicProxy> {
			const port = await freePort();
			await api("POST", "/proxies", {
				name,
				listen: `127.0.0.1:${port}`,
				upstream: `127.0.0.1:${upstreamPort}`,
				enabled: true,
			});
			const toxics = new Set<string>();
			const add = async (toxic: string, type: string, stream: string, attributes: object) => {
				await api("POST", `/proxies/${name}/toxics`, { name: toxic, type, stream, toxicity: 1, attributes });
				toxics.add(toxic);
			};
			return {
				name,
				port,
				upstreamPort,
				async partition() {
					// A latency toxic longer than any test holds every byte, in order, and delivers it when
					// it is removed (toxiproxy flushes a removed toxic's buffer): TCP across a partition.
					// Not the "timeout" toxic: it drops the bytes while the connection stays open, which
					// no network does to a TCP stream (a Redis client's replies then answer the wrong
					// commands).
					await add("cut-up", "latency", "upstream", { latency: PARTITION_HOLD_MS, jitter: 0 });
					await add("cut-down", "latency", "downstream", { latency: PARTITION_HOLD_MS, jitter: 0 });
				},
				async latency(ms, jitterMs = 0) {
					await add("slow-up", "latency", "upstream", { latency: ms, jitter: jitterMs });
					await add("slow-down", "latency", "downstream", { latency: ms, jitter: jitterMs });
				},
				async heal() {
					for (const t of [...toxics]) {
						await api("DELETE", `/proxies/${name}/toxics/${t}`);
						toxics.delete(t);
					}
				},
			};
		},
	});
}
