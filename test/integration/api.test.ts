/**
 * The REST API over real HTTP on an embedded node (store, orchestrator, scheduler, maricopa and
 * proxy-pool against the sandbox): bearer tokens, a job started and followed over HTTP, the stored
 * properties read back, bad input answered 422, the per-client rate limit, no proxy password in any
 * answer, and the dashboard page served without auth.
 */
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { type Sandbox, startSandbox } from "../../sandbox/index.ts";
import { CHROMIUM_ARGS } from "../../src/browser/pool.ts";
import { loadConfig } from "../../src/config/index.ts";
import { type RunningNode, startNode } from "../../src/node/start-node.ts";
import { sleep, waitFor } from "../../src/utils/time.ts";

const ZIP = "85031";
const TOKEN = "api-test-token-1f9c";
const OTHER_TOKEN = "api-test-token-77ab";
const RATE_PER_MIN = 300;

describe("REST API", () => {
	let sandbox: Sandbox;
	let node: RunningNode;
	let base: string;

	const request = async (
		method: string,
		path: string,
		opts: { token?: string | null; body?: unknown } = {},
	) => {
		const token = opts.token === undefined ? TOKEN : opts.token;
		const res = await fetch(`${base}${path}`, {
			method,
			headers: {
				...(token ? { authorization: `Bearer ${token}` } : {}),
				...(opts.body !== undefined ? { "content-type": "application/json" } : {}),
			},
			...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
		});
		const text = await res.text();
		let json: unknown = null;
		try {
			json = JSON.parse(text);
		} catch {
			json = null;
		}
		return {
			status: res.status,
			headers: res.headers,
			text,
			json: json as Record<string, unknown> & unknown[],
		};
	};

	before(async () => {
		sandbox = await startSandbox({ seed: 31, world: { zips: [ZIP], parcelsPerZip: 40 } });
		const config = loadConfig({
			...sandbox.env,
			NODE_ID: "api-test",
			SERVICES: "api,store,orchestrator,scheduler,maricopa,proxy-pool",
			LOG_LEVEL: "warn",
			METRICS_PORT: "0",
			HEALTH_PORT: "0",
			API_PORT: "0",
			API_TOKENS: `${TOKEN},${OTHER_TOKEN}`,
			API_RATE_PER_MIN: String(RATE_PER_MIN),
			REPL: "off",
			MARICOPA_RATE_PER_MIN: "6000",
			MARICOPA_GIS_RATE_PER_MIN: "6000",
			SCHEDULES: JSON.stringify([
				{ name: "nightly", cron: "0 6 * * *", action: "orchestrator.collect", zips: [ZIP] },
			]),
		});
		node = await startNode(config);
		const api = node.broker.getLocalService("api") as unknown as { server: { address(): AddressInfo } };
		base = `http://127.0.0.1:${api.server.address().port}`;
	});

	after(async () => {
		await node?.stop();
		await sandbox?.stop();
	});

	test("a token is required, and the right one opens the API", async () => {
		assert.equal((await request("GET", "/api/health", { token: null })).status, 401);
		assert.equal((await request("GET", "/api/health", { token: "wrong-token" })).status, 401);
		const ok = await request("GET", "/api/health");
		assert.equal(ok.status, 200);
		assert.equal(ok.json.status, "ok");
		assert.equal(ok.json.node, "api-test");
		// Unmapped paths are not a door onto arbitrary actions.
		assert.equal((await request("GET", "/api/raw/list")).status, 404);
	});

	test("a job started over HTTP completes, and its properties are read back", async () => {
		const started = await request("POST", "/api/jobs", { body: { zips: [ZIP], sources: ["maricopa"] } });
		assert.equal(started.status, 200, started.text);
		const job = started.json.job as { id: string; origin: string };
		assert.equal(job.origin, "api");
		const done = await waitFor(
			async () => {
				const s = await request("GET", `/api/jobs/${encodeURIComponent(job.id)}`);
				const status = (s.json.job as { status: string }).status;
				return ["running", "cancelling"].includes(status) ? null : s.json;
			},
			"the job to finish",
			60_000,
			200,
		);
		assert.equal((done.job as { status: string }).status, "completed");
		const listed = await request("GET", "/api/jobs");
		assert.ok((listed.json as unknown as { jobId: string }[]).some((p) => p.jobId === job.id));

		const truth = (sandbox.world.byZip.get(ZIP) ?? []).map((p) => p.apn).sort();
		const page = await request("GET", `/api/properties?zip=${ZIP}&page=1&pageSize=10`);
		assert.equal(page.status, 200, page.text);
		assert.equal(page.json.total, truth.length);
		assert.equal((page.json.rows as unknown[]).length, 10);
		const apn = truth[0]!;
		const parcel = await request("GET", `/api/parcels/${apn}`);
		assert.equal(parcel.json.apn, apn);
		const byKey = await request("GET", `/api/properties/${parcel.json.key}`);
		assert.equal(byKey.json.apn, apn);
		const history = await request("GET", `/api/properties/${parcel.json.key}/history`);
		assert.equal(history.status, 200);
		assert.ok(Array.isArray(history.json.history));
		const stats = await request("GET", "/api/properties/stats");
		assert.equal(stats.json.properties, truth.length);

		const schedules = await request("GET", "/api/schedules");
		assert.deepEqual(
			(schedules.json as unknown as { name: string }[]).map((s) => s.name),
			["nightly"],
		);
		const hosts = await request("GET", "/api/hosts/maricopa");
		assert.equal(hosts.status, 200);
		assert.ok((hosts.json as unknown as { breaker: string }[]).every((h) => h.breaker === "closed"));
	});

	test("bad input is answered 422 with what is wrong; unknown things 404", async () => {
		const badJob = await request("POST", "/api/jobs", { body: { zips: "85031" } });
		assert.equal(badJob.status, 422, badJob.text);
		assert.match(badJob.text, /zips/);
		const badZip = await request("GET", "/api/properties?zip=abc");
		assert.equal(badZip.status, 422);
		assert.match(badZip.text, /zip/);
		const noJob = await request("GET", "/api/jobs/no-such-job");
		assert.equal(noJob.status, 404, noJob.text);
		assert.match(noJob.text, /no job 'no-such-job'/);
		const noSchedule = await request("POST", "/api/schedules/nope/trigger");
		assert.equal(noSchedule.status, 404, noSchedule.text);
	});

	test("proxy answers carry no password", async () => {
		const passwords = sandbox.proxies.urls().map((u) => decodeURIComponent(new URL(u).password));
		assert.ok(passwords.length > 0 && passwords.every((p) => p.length > 0));
		for (const path of ["/api/proxies", "/api/proxies/stats"]) {
			const res = await request("GET", path);
			assert.equal(res.status, 200, res.text);
			for (const pw of passwords) assert.ok(!res.text.includes(pw), `${path} leaks a proxy password`);
		}
		assert.ok((await request("GET", "/api/proxies")).json.length > 0);
	});

	test("each client has its own rate limit, counted per token", async () => {
		// The limit counts per clock minute: start well inside one.
		const msLeft = 60_000 - (Date.now() % 60_000);
		if (msLeft < 15_000) await sleep(msLeft + 100);
		let limited = 0;
		for (let i = 0; i < RATE_PER_MIN + 5; i++) {
			const res = await request("GET", "/api/health", { token: OTHER_TOKEN });
			if (res.status === 429) limited++;
		}
		assert.ok(limited >= 5, `429s past the limit: ${limited}`);
		// The first client is not limited by the second one's use.
		assert.equal((await request("GET", "/api/health")).status, 200);
	});

	test("the dashboard page is served without a token and embeds no data", async () => {
		const res = await request("GET", "/", { token: null });
		assert.equal(res.status, 200);
		assert.match(res.headers.get("content-type") ?? "", /text\/html/);
		assert.match(res.headers.get("content-security-policy") ?? "", /default-src 'none'/);
		assert.match(res.text, /<title>Saguaro<\/title>/);
		assert.ok(!res.text.includes(TOKEN));
	});

	test("the dashboard in Chromium shows the cluster once given the token", async () => {
		const browser = await chromium.launch({
			executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
			args: CHROMIUM_ARGS,
		});
		try {
			const page = await browser.newPage();
			const errors: string[] = [];
			page.on("pageerror", (err) => errors.push(err.message));
			await page.goto(`${base}/`);
			// Without the token every panel says why it is empty.
			await page.waitForFunction(() => document.querySelector("#jobs .err") !== null);
			await page.fill("#token", TOKEN);
			await page.dispatchEvent("#token", "change");
			await page.waitForFunction(
				(node) => document.getElementById("status")?.textContent?.includes(node) === true,
				"api-test",
			);
			await page.waitForFunction(() => (document.querySelectorAll("#jobs tr").length ?? 0) > 1);
			const jobs = (await page.locator("#jobs").textContent()) ?? "";
			assert.match(jobs, /completed/);
			assert.match((await page.locator("#schedules").textContent()) ?? "", /nightly/);
			assert.match((await page.locator("#nodes").textContent()) ?? "", /api-test/);
			assert.match((await page.locator("#properties").textContent()) ?? "", /properties/);
			assert.deepEqual(errors, []);
		} finally {
			await browser.close();
		}
	});
});
