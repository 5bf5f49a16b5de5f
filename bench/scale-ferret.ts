/**
 * FerretDB 1.24 on PostgreSQL for `npm run bench:scale`, like test/harness/servers.ts startFerretDb()
 * but with the size of FerretDB's PostgreSQL connection pool set (`pool_max_conns` on its
 * --postgresql-url).
 *
 * Why: FerretDB 1.24's PostgreSQL handler takes one pooled connection per operation of a bulk write
 * and holds them until the bulk is done, so a bulkWrite of at least pool-size replaceOne operations
 * (the default pool is 50) never finishes, and every later request to FerretDB waits behind it
 * (reproduced with the plain mongodb driver: 49 replaceOne in one bulkWrite answer in ms, 50 hang;
 * with pool_max_conns=100, 60 answer and 120 hang). The store's guarded bulk replace
 * (MongoCollection.replaceManyIf) sends up to a detail batch (100) of them at once. The bench gives
 * FerretDB a larger pool and the store node a single MongoDB connection (MONGO_URI maxPoolSize=1), so
 * at most one bulk is in FerretDB at a time and it fits the pool.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../src/utils/net.ts";
import { waitFor } from "../src/utils/time.ts";
import { findBinary, portOpen, type RunningServer, startPostgres } from "../test/harness/servers.ts";

export interface PooledFerretDb {
	/** mongodb://… naming the `saguaro` database. */
	url: string;
	ferret: ChildProcess;
	postgres: RunningServer;
	stop(): Promise<void>;
}

export async function startPooledFerretDb(poolMaxConns: number): Promise<PooledFerretDb> {
	const postgres = await startPostgres();
	const port = await freePort();
	const dir = mkdtempSync(join(tmpdir(), "saguaro-ferretdb-"));
	const ferret = spawn(
		findBinary("ferretdb"),
		[
			"--handler=postgresql",
			`--postgresql-url=${postgres.url}?pool_max_conns=${poolMaxConns}`,
			`--listen-addr=127.0.0.1:${port}`,
			`--state-dir=${dir}`,
			"--telemetry=disable",
			"--debug-addr=-",
			"--log-level=error",
		],
		{ stdio: ["ignore", "pipe", "pipe"], cwd: dir },
	);
	let output = "";
	const keep = (d: Buffer) => {
		output = (output + d).slice(-4000);
	};
	ferret.stdout?.on("data", keep);
	ferret.stderr?.on("data", keep);
	const gone = new Promise<void>((r) => ferret.once("exit", () => r()));
	let stopped = false;
	const stop = async () => {
		if (stopped) return;
		stopped = true;
		if (ferret.exitCode === null && ferret.signalCode === null) {
			ferret.kill("SIGTERM");
			const t = setTimeout(() => ferret.kill("SIGKILL"), 5000);
			await gone;
			clearTimeout(t);
		}
		rmSync(dir, { recursive: true, force: true });
		await postgres.stop();
	};
	try {
		await waitFor(
			async () => {
				if (ferret.exitCode !== null) throw new Error(`ferretdb exited (${ferret.exitCode}): ${output}`);
				return portOpen(port);
			},
			`ferretdb on port ${port}`,
			30_000,
		);
	} catch (err) {
		await stop();
		throw err;
	}
	return { url: `mongodb://127.0.0.1:${port}/saguaro`, ferret, postgres, stop };
}
