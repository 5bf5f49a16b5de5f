/**
 * The dashboard in real Chromium against an embedded node running every service over the sandbox:
 * a job (Assessor + MLS + enrichment) runs, then each panel is checked against the answers of the
 * actions behind it, the throughput charts are drawn with data, the page has no horizontal overflow
 * at 1280 px and 390 px, no page error and no CSP violation; screenshots go to a temporary folder.
 * The analytics routes answer over HTTP as well.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Browser, chromium, type Page } from "playwright-core";
import { type Sandbox, startSandbox } from "../../sandbox/index.ts";
import { CHROMIUM_ARGS } from "../../src/browser/pool.ts";
import { loadConfig } from "../../src/config/index.ts";
import type { JobStatusView } from "../../src/jobs/orchestrator.ts";
import { type RunningNode, startNode } from "../../src/node/start-node.ts";
import { freePort } from "../../src/utils/net.ts";
import { waitFor } from "../../src/utils/time.ts";

const ZIP = "85031";
const TOKEN = "dashboard-test-token-5d1e";
const NODE_ID = "dash-test";

type Json = Record<string, unknown>;

describe("dashboard", () => {
	let sandbox: Sandbox;
	let node: RunningNode;
	let browser: Browser;
	let base: string;
	let dataDir: string;
	let jobId: string;
	const shots = mkdtempSync(join(tmpdir(), "saguaro-dashboard-"));

	const get = async <T = Json>(path: string): Promise<T> => {
		const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
		assert.equal(res.status, 200, `${path}: ${res.status}`);
		return (await res.json()) as T;
	};
	const call = <T = Json>(action: string, params: object = {}) => node.broker.call<T, object>(action, params);

	before(async () => {
		sandbox = await startSandbox({ seed: 41, world: { zips: [ZIP], parcelsPerZip: 40 } });
		dataDir = mkdtempSync(join(tmpdir(), "saguaro-dashboard-data-"));
		const config = loadConfig({
			...sandbox.env,
			NODE_ID,
			DATA_DIR: dataDir,
			LOG_LEVEL: "warn",
			METRICS_PORT: "0",
			HEALTH_PORT: "0",
			API_PORT: "0",
			API_TOKENS: TOKEN,
			REPL: "off",
			BROWSER_COUNT: "1",
			BROWSER_CONTEXTS: "2",
			MARICOPA_RATE_PER_MIN: "1200",
			MARICOPA_GIS_RATE_PER_MIN: "600",
			MLS_RATE_PER_MIN: "600",
			LLM_RATE_PER_MIN: "3000",
			ORCHESTRATOR_TICK_MS: "200",
			PROXY_GATEWAY_PORT: String(await freePort()),
			PATH: process.env.PATH ?? "",
		});
		node = await startNode(config);
		const api = node.broker.getLocalService("api") as unknown as { server: { address(): AddressInfo } };
		base = `http://127.0.0.1:${api.server.address().port}`;
		const started = await call<JobStatusView>("orchestrator.collect", {
			zips: [ZIP],
			sources: ["maricopa", "mls"],
			enrich: true,
			origin: "test",
		});
		jobId = started.job.id;
		await waitFor(
			async () => {
				const s = await call<JobStatusView>("orchestrator.status", { id: jobId });
				return ["running", "cancelling"].includes(s.job.status) ? null : s;
			},
			"the sandbox job to finish",
			120_000,
			250,
		);
		browser = await chromium.launch({
			executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
			args: CHROMIUM_ARGS,
		});
	});

	after(async () => {
		await browser?.close();
		await node?.stop();
		await sandbox?.stop();
		if (dataDir) rmSync(dataDir, { recursive: true, force: true });
		console.log(`dashboard screenshots: ${shots}`);
	});

	test("the analytics and system routes answer over HTTP", async () => {
		type Throughput = { t: number[]; sources: Record<string, { recordsPerS: number[] }>; hosts: Json };
		// The api samples the job list every 5 s (and hears progress events while a job runs): a job
		// shorter than that is counted at the next sample after it ended.
		let tp = await get<Throughput>("/api/analytics/throughput");
		tp = await waitFor(
			async () => {
				tp = await get<Throughput>("/api/analytics/throughput");
				return tp.sources.maricopa?.recordsPerS.some((v) => v > 0) ? tp : null;
			},
			"maricopa's records in the throughput series",
			15_000,
			250,
		).catch(() => assert.fail(`no maricopa records in the throughput series: ${JSON.stringify(tp)}`));
		assert.ok(tp.t.length > 0);
		assert.ok(Object.keys(tp.hosts).includes("maricopa-api"));
		const dq = await get<{
			properties: number;
			bySource: Record<string, Json>;
			bothSources: { count: number };
		}>("/api/analytics/data-quality");
		assert.equal(dq.properties, (sandbox.world.byZip.get(ZIP) ?? []).length);
		assert.ok(dq.bySource.maricopa && dq.bySource.mls);
		assert.ok(dq.bothSources.count > 0);
		const q = await get<{ all: { bySource: Record<string, { done: number }> } }>("/api/system/queues");
		const job = await call<JobStatusView>("orchestrator.status", { id: jobId });
		for (const [source, s] of Object.entries(job.progress.bySource)) {
			assert.ok(q.all.bySource[source]!.done >= s.tasks.done, source);
		}
		const nodes = await get<{ id: string; services: string[]; uptimeS: number }[]>("/api/system/nodes");
		assert.equal(nodes[0]!.id, NODE_ID);
		assert.ok(nodes[0]!.services.includes("orchestrator") && nodes[0]!.uptimeS >= 0);
		// Static assets of the page need no token; unknown names are 404.
		assert.equal((await fetch(`${base}/assets/uplot.js`)).status, 200);
		assert.equal((await fetch(`${base}/assets/nope.js`)).status, 404);
	});

	const open = async (width: number, height: number): Promise<{ page: Page; errors: string[] }> => {
		const page = await browser.newPage({ viewport: { width, height } });
		const errors: string[] = [];
		page.on("pageerror", (err) => errors.push(`pageerror: ${err.message}`));
		// CSP violations and script errors are console errors; failed loads are checked by response.
		page.on("console", (msg) => {
			if (msg.type() === "error" && !msg.text().startsWith("Failed to load resource"))
				errors.push(`console: ${msg.text()}`);
		});
		page.on("response", (res) => {
			if (res.status() >= 400 && !res.url().endsWith("/favicon.ico"))
				errors.push(`${res.status()} ${res.url()}`);
		});
		// The token as a user typed it before (kept in localStorage).
		await page.addInitScript((token) => localStorage.setItem("saguaro-token", token), TOKEN);
		await page.goto(`${base}/`);
		await page.waitForFunction(() => document.getElementById("status")?.textContent?.startsWith("node "));
		// Every panel filled, the charts drawn.
		await page.waitForFunction(() =>
			["jobs", "queues", "sites", "proxies", "browsers", "llm", "schedules", "nodes", "completeness"].every(
				(id) => (document.getElementById(id)?.querySelectorAll("tr").length ?? 0) > 1,
			),
		);
		await page.waitForFunction(
			() => Number(document.getElementById("chart-records")?.dataset.points ?? 0) > 0,
		);
		return { page, errors };
	};

	const noOverflow = async (page: Page) => {
		const { scroll, client, wide } = await page.evaluate(() => {
			const wideOnes = Array.from(document.querySelectorAll("body *"))
				.filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
				.slice(0, 5)
				.map((e) => `${e.tagName}#${e.id}.${e.className}`);
			return {
				scroll: document.documentElement.scrollWidth,
				client: document.documentElement.clientWidth,
				wide: wideOnes,
			};
		});
		assert.ok(scroll <= client, `horizontal overflow: ${scroll} > ${client}: ${wide.join(", ")}`);
		// Nor inside a panel: nothing spills out of its card (clipped buttons, wide tables).
		const spilling = await page.evaluate(() =>
			Array.from(document.querySelectorAll("main > section"))
				.filter((s) => s.scrollWidth > s.clientWidth + 1)
				.map((s) => `${s.id}: ${s.scrollWidth} > ${s.clientWidth}`),
		);
		assert.deepEqual(spilling, [], "panels whose content is wider than the panel");
	};

	test("each panel shows what the actions answer, at 1280 px", async () => {
		const { page, errors } = await open(1280, 900);
		try {
			const text = async (id: string) => (await page.locator(`#${id}`).textContent()) ?? "";
			const num = (n: number) => n.toLocaleString("en-US");

			// Jobs: the job, its status and its record count; the page's numbers are the orchestrator's.
			const list = await call<JobStatusView["progress"][]>("orchestrator.list", { limit: 15 });
			const jobs = await text("jobs");
			for (const p of list) {
				assert.ok(jobs.includes(p.jobId), p.jobId);
				assert.ok(jobs.includes(`${num(p.items.done)} records`), jobs);
				assert.ok(jobs.includes(p.status));
			}
			// Queues: done tasks per source as the orchestrator counts them (none running now).
			const queues = await text("queues");
			assert.match(queues, /\(0 running\)/);
			const q = await call<{ all: { bySource: Record<string, { done: number }> } }>("api.queues");
			const queueRows = await page.locator("#queues tr").allTextContents();
			for (const [source, c] of Object.entries(q.all.bySource)) {
				assert.ok(
					queueRows.some((r) => r.startsWith(source) && r.includes(num(c.done))),
					source,
				);
			}

			// Throughput: both charts drawn (canvas with ink), one series per source the api saw.
			const tp = await call<{ sources: Record<string, unknown> }>("api.throughput");
			for (const id of ["chart-records", "chart-requests"]) {
				const drawn = await page.evaluate((chartId) => {
					const box = document.getElementById(chartId)!;
					const canvas = box.querySelector("canvas");
					if (!canvas) return { series: "", ink: 0 };
					const ctx = canvas.getContext("2d")!;
					const img = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
					let ink = 0;
					for (let i = 3; i < img.length; i += 4) if (img[i]! > 0) ink++;
					return { series: box.dataset.series ?? "", ink, points: Number(box.dataset.points) };
				}, id);
				assert.equal(drawn.series, Object.keys(tp.sources).sort().join(","), id);
				assert.ok(drawn.ink > 100, `${id} has nothing drawn`);
			}

			// Sites: every host of every collector, with its budget per minute and breaker state.
			const sites = await text("sites");
			for (const service of ["maricopa", "mls", "llm"]) {
				for (const h of await call<
					{ host: string; breaker: string; budget: { points: number; durationMs: number } }[]
				>(`${service}.status`)) {
					assert.ok(sites.includes(h.host), h.host);
					assert.ok(
						sites.includes(`/ ${num((h.budget.points * 60_000) / h.budget.durationMs)} requests per min`),
						sites,
					);
				}
			}
			assert.match(sites, /closed/);

			// Proxies: one row per proxy, totals by state as the pool counts them; no user names shown.
			const proxies =
				await call<{ id: string; username?: string; health: { latencyMs: number | null } }[]>(
					"proxy-pool.list",
				);
			const stats = await call<{ total: number; byState: Record<string, number> }>("proxy-pool.stats");
			assert.equal(await page.locator("#proxies tr").count(), proxies.length + 1);
			const proxyText = await text("p-proxies");
			for (const p of proxies) {
				assert.ok(proxyText.includes(p.id), p.id);
				if (p.username) assert.ok(!proxyText.includes(p.username), "a proxy user name is shown");
			}
			assert.ok(proxyText.includes(`${num(stats.total)} proxies`));
			for (const [state, n] of Object.entries(stats.byState))
				assert.ok(proxyText.includes(`${n} ${state}`), state);
			// Sortable: by latency, ascending then descending.
			await page.click("#proxies th:nth-child(3)");
			const firstAsc = await page
				.locator("#proxies tr:nth-child(2) td:first-child div")
				.first()
				.textContent();
			const fastest = [...proxies].sort(
				(a, b) => (a.health.latencyMs ?? Infinity) - (b.health.latencyMs ?? Infinity),
			)[0]!;
			assert.equal(firstAsc, fastest.id);
			await page.click("#proxies th:nth-child(3)");
			assert.equal(await page.locator("#proxies th:nth-child(3)").getAttribute("data-dir"), "-1");

			// Browsers: this node's slots and pages.
			const pool = await call<{ slots: number; pages: number }>("browser-pool.stats");
			const browsers = await text("browsers");
			assert.ok(browsers.includes(NODE_ID));
			assert.ok(
				browsers.includes("free") && browsers.includes(`${num(pool.slots)} free`) === pool.slots > 0,
				browsers,
			);

			// LLM: today's requests and spend against the budget.
			const usage = await call<{ requests: number; budget: { usdPerDay: number } }>("llm.usage");
			const llm = await text("llm");
			assert.ok(llm.includes(`${num(usage.requests)} (`), llm);
			assert.ok(
				llm.includes(`of $${usage.budget.usdPerDay.toFixed(usage.budget.usdPerDay < 10 ? 4 : 2)}`),
				llm,
			);

			// Schedules: every schedule, times as local times (no ISO strings).
			const schedules = await text("schedules");
			for (const s of await call<{ name: string }[]>("scheduler.list")) assert.ok(schedules.includes(s.name));

			// Nodes: this node with its services and uptime.
			const nodes = await text("nodes");
			assert.ok(nodes.includes(NODE_ID));
			for (const s of ["orchestrator", "maricopa", "mls", "llm", "browser-pool"])
				assert.ok(nodes.includes(s), s);

			// Data quality: the share with both sources as the route computes it.
			const dq = await call<{ bothSources: { share: number } }>("api.dataQuality");
			assert.ok(
				(await text("p-quality")).includes(`${(100 * dq.bothSources.share).toFixed(1)}% described by both`),
			);

			// Nothing raw: no epoch numbers, ISO times or JSON anywhere on the page.
			const body = (await page.locator("main").textContent()) ?? "";
			assert.doesNotMatch(body, /\b1\d{12}\b/, "an epoch number is shown");
			assert.doesNotMatch(body, /\d{4}-\d\d-\d\dT\d\d:/, "an ISO time is shown");
			assert.doesNotMatch(body, /[{[]"/, "JSON is shown");

			await noOverflow(page);
			await page.screenshot({ path: join(shots, "dashboard-1280.png"), fullPage: true });
			assert.deepEqual(errors, []);
		} finally {
			await page.close();
		}
	});

	test("no horizontal overflow on a phone (390 px), no page error", async () => {
		const { page, errors } = await open(390, 844);
		try {
			await noOverflow(page);
			await page.screenshot({ path: join(shots, "dashboard-390.png"), fullPage: true });
			assert.deepEqual(errors, []);
		} finally {
			await page.close();
		}
	});
});
