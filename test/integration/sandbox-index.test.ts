/**
 * The whole sandbox: startSandbox wires every simulator over one world and hands out the
 * environment that points Saguaro at it; the control server serves ground truth and counters;
 * 10,000 parcels are served in full (timings logged, not asserted); `npm run sandbox` (main.ts)
 * prints NAME=value lines and stops cleanly on SIGTERM.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
	defaultSandboxConfig,
	resolveSandboxConfig,
	type Sandbox,
	startSandbox,
} from "../../sandbox/index.ts";

const MAIN = fileURLToPath(new URL("../../sandbox/main.ts", import.meta.url));
let sb: Sandbox;

describe("sandbox: startSandbox and npm run sandbox", () => {
	before(async () => {
		const t0 = performance.now();
		sb = await startSandbox();
		console.log(
			`# startSandbox (10,000 parcels, every simulator) in ${(performance.now() - t0).toFixed(0)} ms`,
		);
	});
	after(async () => {
		await sb.stop();
	});

	test("config: defaults, sections merged over them", () => {
		const c = resolveSandboxConfig({ maricopa: { pageSize: 10 }, seed: 9 });
		assert.equal(c.maricopa.pageSize, 10);
		assert.equal(
			c.maricopa.token,
			defaultSandboxConfig().maricopa.token,
			"other keys of the section keep defaults",
		);
		assert.equal(c.seed, 9);
		assert.equal(c.gis.maxRecordCount, 1000);
		assert.equal(sb.world.parcels.length, 10_000);
	});

	test("env: every base URL, token and key, each pointing at a live loopback server", async () => {
		const env = sb.env;
		for (const name of [
			"MARICOPA_BASE_URL",
			"MARICOPA_TOKEN",
			"MARICOPA_GIS_URL",
			"LLM_BASE_URL",
			"LLM_API_KEY",
		]) {
			assert.ok(env[name], `${name} is set`);
		}
		for (const [name, value] of Object.entries(env)) {
			if (name.endsWith("_URL")) assert.match(value, /^http:\/\/127\.0\.0\.1:\d+/, name);
		}
		const search = await fetch(`${env.MARICOPA_BASE_URL}/search/property/?q=85031&page=1`, {
			headers: { AUTHORIZATION: env.MARICOPA_TOKEN! },
		});
		assert.equal((await search.json()).TOTAL, 2000);
		const gis = await fetch(`${env.MARICOPA_GIS_URL}?f=json&where=1%3D1&returnCountOnly=true`);
		assert.deepEqual(await gis.json(), { count: 10_000 });
		const chat = await fetch(`${env.LLM_BASE_URL}/chat/completions`, {
			method: "POST",
			headers: { authorization: `Bearer ${env.LLM_API_KEY}`, "content-type": "application/json" },
			body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "Enrich: {}" }] }),
		});
		assert.equal(chat.status, 200);
		await chat.arrayBuffer();
	});

	test("control server: ground truth, counters of every simulator, env", async () => {
		const truth = await (await fetch(`${sb.urls.control}/truth`)).json();
		assert.equal(truth.counts.parcels, 10_000);
		assert.deepEqual(truth.listingApn, sb.world.truth.listingApn);
		const full = await (await fetch(`${sb.urls.control}/truth?properties=1`)).json();
		assert.equal(full.properties.length, 10_000);
		const stats = await (await fetch(`${sb.urls.control}/stats`)).json();
		for (const name of ["maricopa", "gis", "llm"]) assert.equal(typeof stats[name].total, "number", name);
		assert.ok(stats.maricopa.total >= 1);
		assert.deepEqual(await (await fetch(`${sb.urls.control}/env`)).json(), sb.env);
		assert.equal((await fetch(`${sb.urls.control}/nope`)).status, 404);
	});

	test("serves all 10,000 parcels through the GIS layer and a ZIP through the API search", async () => {
		let t0 = performance.now();
		const apns: string[] = [];
		for (let offset = 0; ; offset += 1000) {
			const url = `${sb.env.MARICOPA_GIS_URL}?f=json&where=1%3D1&outFields=*&returnGeometry=false&orderByFields=APN&resultOffset=${offset}&resultRecordCount=1000`;
			const page = (await (await fetch(url)).json()) as {
				features: { attributes: { APN: string } }[];
				exceededTransferLimit?: boolean;
			};
			for (const f of page.features) apns.push(f.attributes.APN);
			if (!page.exceededTransferLimit) break;
		}
		console.log(`# GIS: 10,000 parcels in 10 pages of 1,000 in ${(performance.now() - t0).toFixed(0)} ms`);
		assert.deepEqual(
			apns,
			sb.world.parcels.map((p) => p.apn),
		);

		t0 = performance.now();
		const zipApns: string[] = [];
		for (let page = 1; page <= 80; page++) {
			const res = await fetch(`${sb.env.MARICOPA_BASE_URL}/search/property/?q=85379&page=${page}`, {
				headers: { AUTHORIZATION: sb.env.MARICOPA_TOKEN! },
			});
			const body = (await res.json()) as { Results: { APN: string }[] };
			zipApns.push(...body.Results.map((r) => r.APN));
		}
		console.log(
			`# API: ZIP 85379 (2,000 parcels) in 80 search pages in ${(performance.now() - t0).toFixed(0)} ms`,
		);
		assert.deepEqual(
			zipApns,
			sb.world.byZip.get("85379")!.map((p) => p.apn),
		);
	});

	test("stop() is idempotent and a second sandbox gets its own ports", async () => {
		const other = await startSandbox({ world: { zips: ["85008"], parcelsPerZip: 20 } });
		assert.notEqual(other.urls.maricopa, sb.urls.maricopa);
		assert.equal(other.world.parcels.length, 20);
		await other.stop();
		await other.stop();
		await assert.rejects(fetch(`${other.urls.maricopa}/`));
	});

	test("npm run sandbox: prints NAME=value lines, serves, stops on SIGTERM", async () => {
		const child = spawn(process.execPath, [MAIN], {
			env: { ...process.env, SANDBOX_PARCELS_PER_ZIP: "50", SANDBOX_ZIPS: "85031,85301" },
			stdio: ["ignore", "pipe", "pipe"],
		});
		try {
			const env: Record<string, string> = {};
			const lines = createInterface({ input: child.stdout! });
			for await (const line of lines) {
				const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
				assert.ok(m, `stdout line is NAME=value: ${line}`);
				env[m[1]!] = m[2]!;
				if (m[1] === "SANDBOX_CONTROL_URL") break;
			}
			for (const name of [
				"MARICOPA_BASE_URL",
				"MARICOPA_TOKEN",
				"MARICOPA_GIS_URL",
				"LLM_BASE_URL",
				"LLM_API_KEY",
				"SANDBOX_CONTROL_URL",
			]) {
				assert.ok(env[name], name);
			}
			const truth = await (await fetch(`${env.SANDBOX_CONTROL_URL}/truth`)).json();
			assert.equal(truth.counts.parcels, 100);
			assert.deepEqual(truth.zips, ["85031", "85301"]);
			const res = await fetch(`${env.MARICOPA_BASE_URL}/search/property/?q=85301&page=1`, {
				headers: { AUTHORIZATION: env.MARICOPA_TOKEN! },
			});
			assert.equal((await res.json()).TOTAL, 50);
		} finally {
			const exited = once(child, "exit");
			child.kill("SIGTERM");
			const [code] = await exited;
			assert.equal(code, 0, "clean exit on SIGTERM");
		}
	});

	test("npm run sandbox refuses bad settings with a clear message", async () => {
		const child = spawn(process.execPath, [MAIN], {
			env: { ...process.env, SANDBOX_PARCELS_PER_ZIP: "lots" },
			stdio: ["ignore", "pipe", "pipe"],
		});
		let stderr = "";
		child.stderr!.on("data", (d: Buffer) => {
			stderr += d.toString();
		});
		const [code] = await once(child, "exit");
		assert.equal(code, 1);
		assert.match(stderr, /SANDBOX_PARCELS_PER_ZIP must be an integer/);
	});
});
