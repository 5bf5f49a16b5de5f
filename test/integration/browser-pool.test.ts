/**
 * The browser pool on real Chromium: a page that wedges its renderer is reclaimed by the watchdog
 * and its slot serves again; a long run of cheap pages recycles contexts and browsers, keeps memory
 * under the ceiling and leaves no busy slot behind; a context the browser refuses gives its proxy
 * lease back.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { Server as ProxyChainServer } from "proxy-chain";
import { BrowserPool, type BrowserPoolOptions, RenderError } from "../../src/browser/pool.ts";

const newPool = (pageTimeoutMs: number, overrides: Partial<BrowserPoolOptions> = {}) =>
	new BrowserPool({
		executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
		browsers: 2,
		contextsPerBrowser: 2,
		recyclePages: 10,
		recycleMs: 3_600_000,
		maxBrowserBytes: 1024 * 1024 * 1024,
		pageTimeoutMs,
		blockResources: true,
		maxHtmlBytes: 1000,
		queueTimeoutMs: 60_000,
		proxies: null,
		solver: null,
		watchdogIntervalMs: 500,
		...overrides,
	});

describe("browser pool on real Chromium", () => {
	let server: Server;
	let base: string;
	let pool: BrowserPool;
	let longRunPool: BrowserPool | undefined;

	before(async () => {
		server = createServer((req, res) => {
			res.writeHead(200, { "content-type": "text/html" });
			if (req.url?.startsWith("/spin")) {
				// Load completes, then the renderer's main thread never comes back.
				res.end(
					"<html><body><h1>spin</h1><script>setTimeout(() => { for (;;) {} }, 0)</script></body></html>",
				);
				return;
			}
			const n = new URL(req.url ?? "/", "http://x").searchParams.get("n") ?? "0";
			res.end(`<html><body><h1 id="n">${n}</h1><img src="/img.png"><p>${"x".repeat(2000)}</p></body></html>`);
		});
		await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
		base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
		pool = newPool(2000);
		pool.start();
	});

	after(async () => {
		await pool?.close();
		await longRunPool?.close();
		await new Promise((r) => server?.close(r));
	});

	test("a hung page is reclaimed by the watchdog and the pool keeps serving", async () => {
		await assert.rejects(pool.render({ url: `${base}/spin`, session: "hung" }), (err: unknown) => {
			assert.ok(err instanceof RenderError);
			assert.ok(["watchdog", "timeout"].includes(err.kind), err.kind);
			return true;
		});
		const ok = await pool.render({ url: `${base}/?n=1`, extract: { n: "#n" } });
		assert.equal(ok.fields?.n, "1");
		assert.ok(ok.truncated, "HTML is capped");
		assert.ok((ok.html ?? "").length <= 1000);
		// The reclaimed slot is freed once its page, context or browser is gone.
		for (let i = 0; i < 100 && pool.stats().busy > 0; i++) await new Promise((r) => setTimeout(r, 200));
		assert.equal(pool.stats().busy, 0);
	});

	test("a context the browser refuses gives its proxy lease back, unused, and the slot serves again", async () => {
		const upstream = new ProxyChainServer({ port: 0, host: "127.0.0.1", verbose: false });
		await upstream.listen();
		const released: { leaseId: string; ok: boolean; unused?: boolean }[] = [];
		let leases = 0;
		const proxied = newPool(5000, {
			browsers: 1,
			contextsPerBrowser: 1,
			proxies: {
				async acquire() {
					leases++;
					// Chromium rejects the first proxy when the context is created ("Invalid URL").
					const server = leases === 1 ? "bogus scheme://proxy:1" : `http://127.0.0.1:${upstream.port}`;
					return { leaseId: `lease-${leases}`, server };
				},
				async release(proxy, outcome) {
					released.push({ leaseId: proxy.leaseId, ok: outcome.ok, unused: outcome.unused });
				},
			},
		});
		proxied.start();
		try {
			await assert.rejects(proxied.render({ url: `${base}/?n=7`, session: "s1" }), (err: unknown) => {
				assert.ok(err instanceof RenderError);
				assert.equal(err.kind, "crash");
				return true;
			});
			assert.deepEqual(released, [{ leaseId: "lease-1", ok: true, unused: true }]);
			const ok = await proxied.render({ url: `${base}/?n=7`, session: "s1", extract: { n: "#n" } });
			assert.equal(ok.fields?.n, "7");
			assert.equal(proxied.stats().busy, 0);
		} finally {
			await proxied.close();
			await upstream.close(true);
		}
		// Closing the pool gives back the lease its live context held.
		assert.deepEqual(
			released.map((r) => r.leaseId),
			["lease-1", "lease-2"],
		);
	});

	test("a long run recycles, never aborts a render, stays under its memory ceiling and leaves no busy slot", async () => {
		// The hung-page pool is done; this one has navigation timeouts a loaded 2-core machine never
		// reaches, so any failure here is the pool's own (a context or browser closed under a render).
		await pool.close();
		const lr = newPool(30_000);
		longRunPool = lr;
		lr.start();
		// 120 pages over 2 browsers x 2 contexts, 10 pages a context: each browser is replaced
		// about every 20 pages, so the run crosses several recycles of both kinds.
		const total = 120;
		let next = 0;
		let peak = 0;
		let ok = 0;
		const failures: string[] = [];
		const worker = async (w: number) => {
			for (let i = next++; i < total; i = next++) {
				try {
					const r = await lr.render({
						url: `${base}/?n=${i}`,
						session: `w${w}`,
						extract: { n: "#n" },
						noHtml: true,
					});
					assert.equal(r.fields?.n, String(i));
					ok++;
				} catch (err) {
					failures.push((err as Error).message);
				}
				if (i % 20 === 0) peak = Math.max(peak, lr.measureMemory());
			}
		};
		await Promise.all([worker(0), worker(1), worker(2), worker(3)]);
		assert.deepEqual(failures, []);
		assert.equal(ok, total);
		const s = lr.stats();
		assert.deepEqual(s.failures, {});
		assert.equal(s.busy, 0);
		assert.equal(s.queued, 0);
		assert.ok(s.recycles.browsers >= 2, `browsers recycled: ${JSON.stringify(s.recycles)}`);
		assert.ok(s.recycles.contexts >= 4, `contexts recycled: ${JSON.stringify(s.recycles)}`);
		assert.ok(peak < 1024 * 1024 * 1024, `peak ${peak}`);
	});
});
