/**
 * The REPL as a person meets it (issue 13, items 8 and 9): `npm start`'s process on a terminal (a
 * pseudo-terminal from util-linux `script`), driven by typing. `env` shows no secret; log lines are
 * short, not JSON; a failing command prints one line, not a stack; `job <id>`'s bar stops on Ctrl-C
 * and when another command is typed, and never draws over what comes next.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";

const ROOT = resolve(import.meta.dirname, "../..");
const NODE = resolve(ROOT, "node_modules/.bin/node");

const SECRETS = {
	API_TOKENS: "abc,repl-env-token-77f1",
	MARICOPA_TOKEN: "repl-env-maricopa-8e2a",
	LLM_API_KEY: "repl-env-llm-4b9c",
	CAPTCHA_KEY: "repl-env-captcha-d310",
	PROXIES: "http://user:repl-env-proxypw-19ae@10.0.0.1:8000",
};
const SECRET_VALUES = ["repl-env-token-77f1", ...Object.values(SECRETS).slice(1), "repl-env-proxypw-19ae"];

/** A Saguaro node with its REPL on a pseudo-terminal; `out` is everything it printed. */
class ReplProcess {
	readonly child: ChildProcess;
	out = "";
	constructor(env: Record<string, string>) {
		const cmd = `${NODE} ${resolve(ROOT, "bin/saguaro.ts")}`;
		this.child = spawn("script", ["-qfec", cmd, "/dev/null"], {
			cwd: ROOT,
			env: { PATH: process.env.PATH ?? "", TERM: "dumb", ...env },
			stdio: ["pipe", "pipe", "pipe"],
		});
		this.child.stdout!.on("data", (b: Buffer) => {
			this.out += b.toString("utf8");
		});
		this.child.stderr!.on("data", (b: Buffer) => {
			this.out += b.toString("utf8");
		});
	}
	type(text: string) {
		this.child.stdin!.write(text);
	}
	/** Wait until the output after `from` matches `re`; answers the index just past the match. */
	async waitFor(re: RegExp, from = 0, timeoutMs = 60_000): Promise<number> {
		const end = Date.now() + timeoutMs;
		while (Date.now() < end) {
			const m = re.exec(this.out.slice(from));
			if (m) return from + m.index + m[0].length;
			await new Promise((r) => setTimeout(r, 100));
		}
		throw new Error(`no ${re} in the REPL's output after ${from}:\n${this.out.slice(from).slice(-3000)}`);
	}
	async stop() {
		if (this.child.exitCode !== null) return;
		const exited = new Promise((r) => this.child.once("exit", r));
		this.child.kill("SIGTERM");
		const t = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
		await exited;
		clearTimeout(t);
	}
}

describe("REPL on a terminal", () => {
	let repl: ReplProcess;
	let dir: string;

	before(async () => {
		dir = mkdtempSync(join(tmpdir(), "saguaro-repl-"));
		repl = new ReplProcess({
			HOME: dir,
			DATA_DIR: join(dir, "data"),
			REPL: "on",
			NODE_ID: "repl-test",
			SERVICES: "store,orchestrator,maricopa,llm,mls",
			METRICS_PORT: "0",
			HEALTH_PORT: "0",
			LOG_LEVEL: "info",
			// Nothing answers here: the job's task fails and waits a minute before its retry.
			MARICOPA_GIS_URL: "http://127.0.0.1:9/arcgis/query",
			ORCHESTRATOR_BACKOFF_BASE_MS: "60000",
			...SECRETS,
		});
		await repl.waitFor(/mol \$ /);
	});

	after(async () => {
		await repl?.stop();
		if (dir) rmSync(dir, { recursive: true, force: true });
	});

	test("log lines are short lines, not JSON, on a terminal", async () => {
		await repl.waitFor(/Saguaro node 'repl-test' started/);
		assert.doesNotMatch(repl.out, /\{"level":/, "JSON log lines on the terminal");
	});

	test("env redacts every secret", async () => {
		const from = repl.out.length;
		repl.type("env\r");
		const end = await repl.waitFor(/SERVICES=store[^\r\n]*\r?\n/, from);
		const printed = repl.out.slice(from, end);
		for (const name of Object.keys(SECRETS)) assert.match(printed, new RegExp(`${name}=\\[redacted\\]`));
		for (const secret of SECRET_VALUES) assert.ok(!printed.includes(secret), `env printed ${secret}`);
	});

	test("failing commands print one line, not a stack", async () => {
		for (const [command, expected] of [
			["mls 8503", /Error: The 'zip' field must be 5 digits/],
			["enrich 999-99-999", /Error: no property 999-99-999/],
		] as const) {
			const from = repl.out.length;
			repl.type(`${command}\r`);
			const end = await repl.waitFor(expected, from);
			await repl.waitFor(/mol \$ /, end);
			const printed = repl.out.slice(from);
			assert.doesNotMatch(printed, /\bat .*\.(ts|js):\d+/, `${command} printed a stack:\n${printed}`);
		}
	});

	test("job <id>: the bar stops on Ctrl-C and when another command is typed", async () => {
		let from = repl.out.length;
		repl.type("collect 85031 --sources maricopa\r");
		await repl.waitFor(/Follow it with: job (\S+)/, from);
		const id = /Follow it with: job (\S+)/.exec(repl.out.slice(from))![1];

		from = repl.out.length;
		repl.type(`job ${id}\r`);
		await repl.waitFor(/\] \d+% .*tasks/, from);
		repl.type("\u0003");
		await repl.waitFor(new RegExp(`stopped following job ${id}`), from);

		from = repl.out.length;
		repl.type(`job ${id}\r`);
		await repl.waitFor(/\] \d+% .*tasks/, from);
		repl.type("store\r");
		const stopped = await repl.waitFor(new RegExp(`stopped following job ${id}`), from);
		const answered = await repl.waitFor(/properties: \d+/, stopped);
		// Nothing redraws the bar once the next command has answered.
		await new Promise((r) => setTimeout(r, 2000));
		assert.doesNotMatch(repl.out.slice(answered), /\] \d+% .*tasks/, "the bar was drawn again");
	});
});
