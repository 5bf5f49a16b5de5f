/**
 * A port another process holds (issue 13, item 10): `npm start` (bin/saguaro.ts) ends with one line
 * naming the setting and exit code 2, as for any bad setting, not a stack trace and exit 1.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";

const ROOT = resolve(import.meta.dirname, "../..");

function run(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
	return new Promise((done) => {
		const child = spawn(resolve(ROOT, "node_modules/.bin/node"), [resolve(ROOT, "bin/saguaro.ts")], {
			cwd: ROOT,
			env: { PATH: process.env.PATH ?? "", ...env },
			stdio: ["ignore", "pipe", "pipe"],
		});
		let out = "";
		child.stdout.on("data", (b: Buffer) => (out += b.toString()));
		child.stderr.on("data", (b: Buffer) => (out += b.toString()));
		const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
		child.on("exit", (code) => {
			clearTimeout(timer);
			done({ code, out });
		});
	});
}

describe("a port in use", () => {
	let holder: Server;
	let port: number;
	let dir: string;

	before(async () => {
		dir = mkdtempSync(join(tmpdir(), "saguaro-port-"));
		holder = createServer();
		await new Promise<void>((r) => holder.listen(0, "0.0.0.0", r));
		port = (holder.address() as { port: number }).port;
	});

	after(async () => {
		await new Promise((r) => holder?.close(r));
		if (dir) rmSync(dir, { recursive: true, force: true });
	});

	for (const setting of ["API_PORT", "METRICS_PORT", "HEALTH_PORT"]) {
		test(`${setting}: one line naming it, exit code 2`, async () => {
			const { code, out } = await run({
				NODE_ID: "port-test",
				SERVICES: "api",
				REPL: "off",
				DATA_DIR: dir,
				API_PORT: "0",
				METRICS_PORT: "0",
				HEALTH_PORT: "0",
				[setting]: String(port),
			});
			assert.equal(code, 2, out);
			const lines = out.trim().split("\n");
			assert.equal(lines.length, 1, `one line, got:\n${out}`);
			assert.match(lines[0]!, new RegExp(`^saguaro: port ${port} \\(${setting}\\) is already in use`));
		});
	}
});
