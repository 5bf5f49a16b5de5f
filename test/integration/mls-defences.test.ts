/**
 * The mls service against an MLS site that defends itself hard: a few requests per exit IP, then
 * 429, then the "verify you are human" interstitial, then 403 for a cooldown. Every listing of the
 * ZIP must still be collected, through proxy rotation (proxy-pool bans the refused proxies for the
 * site) and captcha solving through proxy-pool's 2captcha client, never past the solving budget.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Sandbox, startSandbox } from "../../sandbox/index.ts";
import { loadConfig } from "../../src/config/index.ts";
import type { CollectResult } from "../../src/mls/scraper.ts";
import { type RunningNode, startNode } from "../../src/node/start-node.ts";
import { freePort } from "../../src/utils/net.ts";
import { type RunningServer, startFerretDb } from "../harness/servers.ts";

const ZIP = "85031";
const CAPTCHA_BUDGET = 2;
const CAPTCHA_PRICE = 0.002;
/** The cluster's daily USD cap is looser than the collect's: the collect's own budget is what binds. */
const USD_BUDGET = CAPTCHA_PRICE * (CAPTCHA_BUDGET + 4);

type ProxyRow = { id: string; bans: { domain: string }[] };

describe("mls service through captcha walls and per-IP bans", () => {
	let sandbox: Sandbox;
	let node: RunningNode;
	let dataDir: string;
	let ferret: RunningServer;

	before(async () => {
		sandbox = await startSandbox({
			seed: 23,
			world: { zips: [ZIP], parcelsPerZip: 300, listingShare: 0.15, relistShare: 0 },
			mls: {
				pageSize: 8,
				jsRenderedShare: 0.15,
				// A handful of requests per exit IP and window, one 429 before the interstitial, two
				// interstitials before the IP is denied: every proxy meets every defence within seconds.
				defences: {
					rateLimit: { limit: 3, windowMs: 4000 },
					challengeAfter: 1,
					denyAfter: 2,
					strikeWindowMs: 10_000,
					cooldownMs: 3000,
					direct: "deny",
				},
			},
			proxies: { count: 6, listed: 6, behaviours: [] },
			captcha: { solveDelayMs: 100, unsolvableRate: 0, price: CAPTCHA_PRICE, balance: 1 },
		});
		ferret = await startFerretDb();
		dataDir = await mkdtemp(join(tmpdir(), "saguaro-mls-defences-"));
		const config = loadConfig({
			...sandbox.env,
			NODE_ID: "mls-defences-test",
			SERVICES: "store,proxy-pool,browser-pool,mls",
			DATA_DIR: dataDir,
			MONGO_URI: ferret.url,
			LOG_LEVEL: "warn",
			METRICS_PORT: "0",
			HEALTH_PORT: "0",
			API_PORT: "0",
			REPL: "off",
			PROXY_GATEWAY_PORT: String(await freePort()),
			PROXY_GATEWAY_HOST: "127.0.0.1",
			// Refused proxies sit out briefly, so the six of them come back round within the test.
			PROXY_BAN_COOLDOWN_S: "2",
			CAPTCHA_PRICE_USD: String(CAPTCHA_PRICE),
			CAPTCHA_BUDGET_USD_PER_DAY: String(USD_BUDGET),
			CAPTCHA_POLL_INTERVAL_MS: "100",
			MLS_CAPTCHA_BUDGET: String(CAPTCHA_BUDGET),
			MLS_RATE_PER_MIN: "6000",
			MLS_MAX_ATTEMPTS: "30",
			MLS_BREAKER_FAILURES: "10000",
			MLS_CONCURRENCY: "4",
			BROWSER_COUNT: "1",
			BROWSER_CONTEXTS: "2",
			REQUEST_TIMEOUT_MS: "180000",
		});
		node = await startNode(config);
	});

	after(async () => {
		await node?.stop();
		await sandbox?.stop();
		await ferret?.stop();
		if (dataDir) await rm(dataDir, { recursive: true, force: true });
	});

	test("every listing is collected through 429s, captcha walls and 403s, within the solving budget", async () => {
		const expected = sandbox.mls.listingIds(ZIP);
		assert.ok(expected.length >= 10, "the ZIP has listings");
		const balanceBefore = sandbox.captcha.getBalance();

		// Bans last two seconds: watch proxy-pool while the collect runs to see which proxies the site
		// refused and proxy-pool set aside.
		const banned = new Set<string>();
		let watching = true;
		const watch = (async () => {
			while (watching) {
				const rows = await node.broker.call<ProxyRow[], object>("proxy-pool.list", {
					domain: "127.0.0.1",
				});
				for (const r of rows) if (r.bans.length > 0) banned.add(r.id);
				await new Promise((r) => setTimeout(r, 100));
			}
		})();
		let result: CollectResult;
		try {
			result = await node.broker.call<CollectResult, object>(
				"mls.collectZip",
				{ zip: ZIP },
				{ timeout: 170_000 },
			);
		} finally {
			watching = false;
			await watch;
		}

		assert.equal(result.failures, 0, JSON.stringify(result.failed));
		assert.equal(result.listings, expected.length);
		for (const id of expected) {
			const raw = await node.broker.call<{ payload: Record<string, unknown> } | null, object>("raw.record", {
				source: "mls",
				sourceId: id,
			});
			assert.ok(raw, `raw record of ${id}`);
			assert.equal(raw.payload.price, sandbox.world.listingById.get(id)?.price);
		}

		// The site defended itself with every weapon it has, and was passed.
		const defences = sandbox.mls.defenceStats();
		assert.ok(defences.rateLimited > 0, `429s: ${JSON.stringify(defences)}`);
		assert.ok(defences.challenged > 0, `interstitials: ${JSON.stringify(defences)}`);
		assert.ok(defences.denied > 0, `403s: ${JSON.stringify(defences)}`);
		assert.ok(defences.verifyOk > 0, `captcha tokens accepted: ${JSON.stringify(defences)}`);

		// Solving happened, never past the budgets: per collect (MLS_CAPTCHA_BUDGET, walls met over HTTP
		// and in the browser alike) and per day for the cluster (CAPTCHA_BUDGET_USD_PER_DAY).
		const solver = sandbox.captcha.stats();
		assert.ok(result.captchasSolved > 0, "the collect solved captcha walls");
		assert.ok(result.captchasSolved <= CAPTCHA_BUDGET, `solved ${result.captchasSolved}`);
		assert.ok(solver.solves > 0, JSON.stringify(solver));
		assert.ok(solver.submissions <= CAPTCHA_BUDGET, `submitted ${solver.submissions} of ${CAPTCHA_BUDGET}`);
		const spent = balanceBefore - sandbox.captcha.getBalance();
		assert.ok(spent <= USD_BUDGET + 1e-9, `spent $${spent} of $${USD_BUDGET}`);

		// Refused proxies were banned for the site and the work moved to others.
		assert.ok(banned.size >= 2, `proxies banned for the site: ${[...banned].join(", ")}`);
		const stats = await node.broker.call<{ captcha: unknown }, object>("proxy-pool.stats", {});
		assert.ok(stats.captcha, "proxy-pool reports its captcha spend");
		// Walls met in the browser were inside the same budget: solved while it lasted, then left alone.
		const browser = await node.broker.call<{ captchas: Record<string, number> }, object>(
			"browser-pool.stats",
			{},
		);
		const { solved, unsolved, skipped } = browser.captchas;
		assert.ok(
			solved + unsolved + skipped > 0,
			`walls met in the browser: ${JSON.stringify(browser.captchas)}`,
		);
		assert.ok(solved + unsolved <= CAPTCHA_BUDGET, `browser solves: ${JSON.stringify(browser.captchas)}`);
		// Nothing reached the site without a proxy.
		const direct = sandbox.mls.clientState("127.0.0.1");
		assert.equal(direct.state, "ok");
	});
});
