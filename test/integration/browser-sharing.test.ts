/**
 * The browser pool's slots share their session's context on real Chromium: renders of one session
 * on several slots at once take one proxy lease (one context), renders without a session share one
 * context too, and a shared context is recycled after its pages while its other slots still render
 * in it, without failing a render, leaving a busy slot or keeping a lease.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { Server as ProxyChainServer } from "proxy-chain";
import { BrowserPool, type BrowserPoolOptions, type BrowserProxy } from "../../src/browser/pool.ts";

describe("browser pool session contexts", () => {
	let server: Server;
	let base: string;
	let upstream: ProxyChainServer;

	before(async () => {
		server = createServer((req, res) => {
			const n = new URL(req.url ?? "/", "http://x").searchParams.get("n") ?? "0";
			// A little latency, so renders of one session overlap on several slots.
			setTimeout(() => {
				res.writeHead(200, { "content-type": "text/html" });
				res.end(`<html><body><h1 id="n">${n}</h1></body></html>`);
			}, 50);
		});
		await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
		base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
		upstream = new ProxyChainServer({ port: 0, host: "127.0.0.1", verbose: false });
		await upstream.listen();
	});

	after(async () => {
		await upstream?.close(true);
		await new Promise((r) => server?.close(r));
	});

	const newPool = (overrides: Partial<BrowserPoolOptions>) =>
		new BrowserPool({
			executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
			browsers: 1,
			contextsPerBrowser: 4,
			recyclePages: 100,
			recycleMs: 3_600_000,
			maxBrowserBytes: 1024 * 1024 * 1024,
			pageTimeoutMs: 30_000,
			blockResources: true,
			maxHtmlBytes: 10_000,
			queueTimeoutMs: 60_000,
			proxies: null,
			solver: null,
			...overrides,
		});

	/** A proxy provider that leases the one local proxy under a new lease id each time, and counts. */
	const countingProxies = () => {
		const held = new Map<string, string>();
		let acquired = 0;
		return {
			held,
			get acquired() {
				return acquired;
			},
			provider: {
				async acquire(req: { session: string }): Promise<BrowserProxy> {
					acquired++;
					const leaseId = `lease-${acquired}`;
					held.set(leaseId, req.session);
					return { leaseId, server: `http://127.0.0.1:${upstream.port}` };
				},
				async release(proxy: BrowserProxy) {
					held.delete(proxy.leaseId);
				},
			},
		};
	};

	const renderAll = (pool: BrowserPool, count: number, session?: string) =>
		Promise.all(
			Array.from({ length: count }, (_, i) =>
				pool.render({
					url: `${base}/?n=${i}`,
					extract: { n: "#n" },
					noHtml: true,
					...(session ? { session } : {}),
				}),
			),
		);

	test("one session rendering on four slots at once holds one context and one lease", async () => {
		const proxies = countingProxies();
		const pool = newPool({ proxies: proxies.provider });
		pool.start();
		try {
			const results = await renderAll(pool, 12, "s1");
			assert.deepEqual(
				results.map((r) => r.fields?.n),
				Array.from({ length: 12 }, (_, i) => String(i)),
			);
			assert.equal(proxies.acquired, 1, "one lease for the session");
			// Another session gets its own context (and lease), beside the first.
			await renderAll(pool, 2, "s2");
			assert.equal(proxies.acquired, 2);
			assert.equal(pool.stats().busy, 0);
		} finally {
			await pool.close();
		}
		assert.equal(proxies.held.size, 0, "closing the pool gives every lease back");
	});

	test("a shared context is recycled after its pages while its slots render, failing nothing", async () => {
		const proxies = countingProxies();
		const pool = newPool({ proxies: proxies.provider, recyclePages: 5 });
		pool.start();
		try {
			const results = await renderAll(pool, 40, "s1");
			assert.equal(results.length, 40);
			const s = pool.stats();
			assert.deepEqual(s.failures, {});
			assert.equal(s.busy, 0);
			assert.ok(s.recycles.contexts >= 4, `contexts recycled: ${JSON.stringify(s.recycles)}`);
			assert.ok(proxies.acquired >= 5, `leases: ${proxies.acquired}`);
			// Only the current context's lease is still held.
			assert.ok(proxies.held.size <= 1, `leases held: ${proxies.held.size}`);
		} finally {
			await pool.close();
		}
		assert.equal(proxies.held.size, 0);
	});

	test("renders without a session share one context per browser", async () => {
		const pool = newPool({});
		pool.start();
		try {
			const results = await renderAll(pool, 8);
			assert.equal(results.length, 8);
			assert.equal(pool.stats().recycles.contexts, 0);
			assert.equal(pool.stats().busy, 0);
		} finally {
			await pool.close();
		}
	});
});
