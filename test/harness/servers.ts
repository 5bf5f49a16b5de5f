/**
 * Real infrastructure servers for tests and benches: nats-server, redis-server, PostgreSQL,
 * FerretDB (MongoDB wire protocol, on PostgreSQL by default) and mongo-java-server (MongoDB wire
 * protocol, in memory), each on a free loopback port, stopped and removed by `stop()`.
 * `scripts/setup.sh` installs the binaries; a missing one fails loudly here rather than skipping
 * tests. SAGUARO_TEST_MONGO=java makes `startFerretDb()` (without an explicit backend) start
 * mongo-java-server instead, to run the Mongo tests against it.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort } from "../../src/utils/net.ts";
import { sleep } from "../../src/utils/time.ts";

export interface RunningServer {
	url: string;
	port: number;
	process: ChildProcess;
	stop(): Promise<void>;
}

const ROOT = resolve(import.meta.dirname, "../..");

/** Find a binary on PATH or in the project's .tools/bin (where setup.sh builds FerretDB). */
export function findBinary(name: string): string {
	const candidates = [
		join(ROOT, ".tools/bin", name),
		...(process.env.PATH ?? "").split(":").map((d) => join(d, name)),
		join("/usr/sbin", name),
		join("/usr/bin", name),
	];
	const found = candidates.find((c) => existsSync(c));
	if (!found) throw new Error(`${name} not found: run 'npm run setup' (scripts/setup.sh) first`);
	return found;
}

/** Whether something accepts connections on a loopback port. */
export function portOpen(port: number): Promise<boolean> {
	return new Promise((res) => {
		const sock = connect(port, "127.0.0.1");
		sock.once("connect", () => {
			sock.destroy();
			res(true);
		});
		sock.once("error", () => res(false));
	});
}

export interface ProcessOptions {
	/** Name in messages and of the temp dir. */
	name: string;
	/** Executable path. */
	binary: string;
	args: (port: number, dir: string) => string[];
	url: (port: number) => string;
	/** Ready when this answers true (default: the port accepts TCP connections). */
	ready?: (port: number, dir: string) => Promise<boolean>;
	/** Runs in the fresh temp dir before the server starts (e.g. initdb). */
	prepare?: (dir: string) => void;
	/** Signal that shuts the server down cleanly (default SIGTERM). */
	stopSignal?: NodeJS.Signals;
	/** Run the server as this user (uid/gid); the temp dir is given to it. */
	user?: { uid: number; gid: number };
}

export async function startProcess(opts: ProcessOptions): Promise<RunningServer> {
	const port = await freePort();
	const dir = mkdtempSync(join(tmpdir(), `saguaro-${opts.name}-`));
	if (opts.user) chownSync(dir, opts.user.uid, opts.user.gid);
	try {
		opts.prepare?.(dir);
	} catch (err) {
		rmSync(dir, { recursive: true, force: true });
		throw err;
	}
	const child = spawn(opts.binary, opts.args(port, dir), {
		stdio: ["ignore", "pipe", "pipe"],
		cwd: dir,
		...(opts.user ?? {}),
	});
	let output = "";
	const keep = (d: Buffer) => {
		output = (output + d).slice(-4000);
	};
	child.stdout?.on("data", keep);
	child.stderr?.on("data", keep);
	let exited = false;
	const gone = new Promise<void>((r) =>
		child.once("exit", () => {
			exited = true;
			r();
		}),
	);
	child.once("error", (err) => {
		output += `\n${err.message}`;
		exited = true;
	});
	const ready = opts.ready ?? ((p: number) => portOpen(p));
	const stop = async () => {
		if (!exited && child.exitCode === null) {
			child.kill(opts.stopSignal ?? "SIGTERM");
			const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
			await gone;
			clearTimeout(timer);
		}
		rmSync(dir, { recursive: true, force: true });
	};
	// Poll until ready; give up at once if the server exits (its output says why), or after 30 s.
	const deadline = Date.now() + 30_000;
	let failure: string | null = null;
	for (;;) {
		if (exited) failure = `exited (code ${child.exitCode}, signal ${child.signalCode})`;
		else if (await ready(port, dir).catch(() => false)) break;
		else if (Date.now() > deadline) failure = `not ready on port ${port} after 30 s`;
		if (failure) {
			await stop();
			throw new Error(`${opts.name} did not start: ${failure}\n--- ${opts.name} output ---\n${output}`);
		}
		await sleep(50);
	}
	return { url: opts.url(port), port, process: child, stop };
}

export function startNats(): Promise<RunningServer> {
	return startProcess({
		name: "nats-server",
		binary: findBinary("nats-server"),
		args: (port) => ["-a", "127.0.0.1", "-p", String(port)],
		url: (port) => `nats://127.0.0.1:${port}`,
	});
}

export function startRedis(): Promise<RunningServer> {
	return startProcess({
		name: "redis-server",
		binary: findBinary("redis-server"),
		args: (port, dir) => [
			"--port",
			String(port),
			"--bind",
			"127.0.0.1",
			"--save",
			"",
			"--appendonly",
			"no",
			"--dir",
			dir,
		],
		url: (port) => `redis://127.0.0.1:${port}`,
	});
}

/** Debian's PostgreSQL binaries: /usr/lib/postgresql/<version>/bin, the newest version present. */
export function postgresBinDir(): string {
	const base = "/usr/lib/postgresql";
	const versions = existsSync(base)
		? readdirSync(base)
				.filter((v) => existsSync(join(base, v, "bin/postgres")) && existsSync(join(base, v, "bin/initdb")))
				.sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a))
		: [];
	if (versions.length === 0) {
		throw new Error(`PostgreSQL not found under ${base}: run 'npm run setup' (scripts/setup.sh) first`);
	}
	return join(base, versions[0]!, "bin");
}

/** PostgreSQL refuses to run as root: then initdb and postgres run as the `postgres` system user. */
function postgresUser(): { uid: number; gid: number } | undefined {
	if (process.getuid?.() !== 0) return undefined;
	try {
		const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
		const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
		return { uid, gid };
	} catch {
		throw new Error(
			"running as root and there is no 'postgres' user to run PostgreSQL as: run 'npm run setup'",
		);
	}
}

/** Accepting connections (not merely listening: a starting server refuses them), per pg_isready. */
function pgIsReady(bin: string, port: number): Promise<boolean> {
	return new Promise((res) => {
		execFile(
			join(bin, "pg_isready"),
			["-q", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", "postgres", "-t", "2"],
			(err) => res(!err),
		);
	});
}

/**
 * A throwaway PostgreSQL cluster: initdb into a temp dir, listening on 127.0.0.1 (and a unix socket
 * in that dir) on a free port, trust auth, superuser `postgres`, fsync off. `url` names the
 * `postgres` database. Stopped (fast shutdown) and removed by `stop()`.
 */
export function startPostgres(): Promise<RunningServer> {
	const bin = postgresBinDir();
	const user = postgresUser();
	return startProcess({
		name: "postgres",
		binary: join(bin, "postgres"),
		user,
		prepare: (dir) => {
			try {
				execFileSync(
					join(bin, "initdb"),
					[
						"-D",
						join(dir, "data"),
						"-U",
						"postgres",
						"--auth=trust",
						"--encoding=UTF8",
						"--locale=C",
						"--no-sync",
						"--no-instructions",
					],
					{ cwd: dir, stdio: ["ignore", "pipe", "pipe"], ...(user ?? {}) },
				);
			} catch (err) {
				const e = err as { stdout?: Buffer; stderr?: Buffer; message: string };
				throw new Error(`initdb failed: ${e.message}\n${e.stdout ?? ""}${e.stderr ?? ""}`);
			}
		},
		args: (port, dir) => [
			"-D",
			join(dir, "data"),
			"-p",
			String(port),
			"-c",
			"listen_addresses=127.0.0.1",
			"-c",
			`unix_socket_directories=${dir}`,
			"-c",
			"fsync=off",
			"-c",
			"synchronous_commit=off",
			"-c",
			"full_page_writes=off",
			// FerretDB's documents (JSON plus a type schema) are TOAST-compressed from ~1 KB; lz4 reads
			// them about twice as fast as the default pglz, and FerretDB 1.24 reads every row of a
			// collection for most queries (see startFerretDb).
			"-c",
			"default_toast_compression=lz4",
			"-c",
			"max_connections=200",
		],
		url: (port) => `postgres://postgres@127.0.0.1:${port}/postgres`,
		ready: (port) => pgIsReady(bin, port),
		// SIGTERM is a "smart" shutdown that waits for clients to leave; SIGINT disconnects them.
		stopSignal: "SIGINT",
	});
}

export interface FerretDbOptions {
	/**
	 * Storage backend. `postgresql` (default): FerretDB on its own throwaway PostgreSQL (started and
	 * stopped with it). `sqlite`: FerretDB's SQLite backend in the temp dir, no second server.
	 * Neither uses the collections' indexes for lookups in FerretDB 1.24: on PostgreSQL an equality
	 * filter is pushed down as `_jsonb->'field' @> value`, which a btree index cannot serve, so
	 * PostgreSQL scans the table; on SQLite the documents are decoded and filtered in FerretDB. The
	 * PostgreSQL scan is much cheaper (findOne by key at 10,000 property documents: ~20 ms vs
	 * ~900 ms, `npm run bench:store`), which is why it is the default.
	 */
	backend?: "postgresql" | "sqlite";
}

export interface FerretDbServer extends RunningServer {
	/** `java`: not FerretDB but mongo-java-server, chosen by SAGUARO_TEST_MONGO=java. */
	backend: "postgresql" | "sqlite" | "java";
	/** The PostgreSQL server FerretDB stores into (postgresql backend only). */
	postgres?: RunningServer;
}

/** FerretDB's PostgreSQL pool (`pool_max_conns`; startPostgres allows 200 connections). */
const FERRET_PG_POOL = 180;

/**
 * FerretDB 1.24 on a free loopback port; `url` names the `saguaro` database. With
 * SAGUARO_TEST_MONGO=java and no explicit `backend`, mongo-java-server instead (startMongoJavaServer).
 */
export async function startFerretDb(options: FerretDbOptions = {}): Promise<FerretDbServer> {
	if (options.backend === undefined && process.env.SAGUARO_TEST_MONGO === "java") {
		return { ...(await startMongoJavaServer()), backend: "java" };
	}
	const backend = options.backend ?? "postgresql";
	const postgres = backend === "postgresql" ? await startPostgres() : undefined;
	let ferret: RunningServer;
	try {
		ferret = await startProcess({
			name: "ferretdb",
			binary: findBinary("ferretdb"),
			args: (port, dir) => [
				...(postgres
					? ["--handler=postgresql", `--postgresql-url=${postgres.url}?pool_max_conns=${FERRET_PG_POOL}`]
					: ["--handler=sqlite", `--sqlite-url=file:${dir}/`]),
				`--listen-addr=127.0.0.1:${port}`,
				`--state-dir=${dir}`,
				"--telemetry=disable",
				"--debug-addr=-",
				"--log-level=error",
			],
			// Two connections per client: FerretDB 1.24 takes a PostgreSQL connection per operation of a
			// bulk write and hangs when a bulk finds the pool empty, so bulks in flight must fit it
			// (2 clients x 2 connections x STORE_BULK_MAX_OPS 40 < FERRET_PG_POOL).
			url: (port) => `mongodb://127.0.0.1:${port}/saguaro${postgres ? "?maxPoolSize=2" : ""}`,
		});
	} catch (err) {
		await postgres?.stop();
		throw err;
	}
	return {
		...ferret,
		backend,
		postgres,
		async stop() {
			try {
				await ferret.stop();
			} finally {
				await postgres?.stop();
			}
		},
	};
}

/** Where scripts/setup.sh builds the mongo-java-server launcher (scripts/mongo-java-server). */
const MONGO_JAVA_SERVER_DIR = join(ROOT, ".tools/mongo-java-server");

/**
 * mongo-java-server 1.47 (de.bwaldvogel, Maven Central) with its in-memory backend, reporting
 * MongoDB 5.0, on a free loopback port: one JVM, no storage server, nothing on disk; `url` names the
 * `saguaro` database. Its collections keep hash indexes (unique ones included), used by equality and
 * `$in` lookups on the indexed field.
 */
export function startMongoJavaServer(): Promise<RunningServer> {
	const classes = join(MONGO_JAVA_SERVER_DIR, "classes");
	if (!existsSync(join(classes, "saguaro/tools/Main.class"))) {
		throw new Error(
			`mongo-java-server launcher not built in ${MONGO_JAVA_SERVER_DIR}: run 'npm run setup' (scripts/setup.sh) first`,
		);
	}
	return startProcess({
		name: "mongo-java-server",
		binary: findBinary("java"),
		args: (port) => [
			"-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
			"-cp",
			`${classes}:${join(MONGO_JAVA_SERVER_DIR, "lib")}/*`,
			"saguaro.tools.Main",
			String(port),
		],
		url: (port) => `mongodb://127.0.0.1:${port}/saguaro`,
	});
}
