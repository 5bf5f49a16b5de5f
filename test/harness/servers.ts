/**
 * Real infrastructure servers for tests: nats-server, redis-server and FerretDB (MongoDB wire
 * protocol on SQLite), each on a free loopback port, stopped by `stop()`. `scripts/setup.sh` installs
 * the binaries; a missing one fails loudly here rather than skipping tests.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort } from "../../src/utils/net.ts";
import { waitFor } from "../../src/utils/time.ts";

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

function portOpen(port: number): Promise<boolean> {
	return new Promise((res) => {
		const sock = connect(port, "127.0.0.1");
		sock.once("connect", () => {
			sock.destroy();
			res(true);
		});
		sock.once("error", () => res(false));
	});
}

async function startProcess(
	name: string,
	args: (port: number, dir: string) => string[],
	url: (port: number) => string,
): Promise<RunningServer> {
	const port = await freePort();
	const dir = mkdtempSync(join(tmpdir(), `saguaro-${name}-`));
	const child = spawn(findBinary(name), args(port, dir), { stdio: ["ignore", "pipe", "pipe"], cwd: dir });
	let output = "";
	child.stdout?.on("data", (d) => {
		output = (output + d).slice(-4000);
	});
	child.stderr?.on("data", (d) => {
		output = (output + d).slice(-4000);
	});
	let exited = false;
	child.once("exit", () => {
		exited = true;
	});
	try {
		await waitFor(
			async () => {
				if (exited) throw new Error(`${name} exited: ${output}`);
				return portOpen(port);
			},
			`${name} on port ${port}`,
			30_000,
		);
	} catch (err) {
		child.kill("SIGKILL");
		throw err;
	}
	return {
		url: url(port),
		port,
		process: child,
		async stop() {
			if (!exited) {
				const gone = new Promise((r) => child.once("exit", r));
				child.kill("SIGTERM");
				const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
				await gone;
				clearTimeout(timer);
			}
			rmSync(dir, { recursive: true, force: true });
		},
	};
}

export function startNats(): Promise<RunningServer> {
	return startProcess(
		"nats-server",
		(port) => ["-a", "127.0.0.1", "-p", String(port)],
		(port) => `nats://127.0.0.1:${port}`,
	);
}

export function startRedis(): Promise<RunningServer> {
	return startProcess(
		"redis-server",
		(port, dir) => [
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
		(port) => `redis://127.0.0.1:${port}`,
	);
}

export function startFerretDb(): Promise<RunningServer> {
	return startProcess(
		"ferretdb",
		(port, dir) => [
			"--handler=sqlite",
			`--sqlite-url=file:${dir}/`,
			`--listen-addr=127.0.0.1:${port}`,
			"--telemetry=disable",
			"--debug-addr=-",
			"--log-level=error",
		],
		(port) => `mongodb://127.0.0.1:${port}/saguaro`,
	);
}
