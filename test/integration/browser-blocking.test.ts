/**
 * The browser pool's resource blocking on real Chromium: images, fonts and media are never fetched
 * (in the page and in a cross-site frame), while the document, its scripts and styles load; the
 * same through a proxy that wants credentials (Playwright intercepts requests for proxy auth too).
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { Server as ProxyChainServer } from "proxy-chain";
import { BrowserPool, type BrowserPoolOptions } from "../../src/browser/pool.ts";

const newPool = (overrides: Partial<BrowserPoolOptions> = {}) =>
	new BrowserPool({
		executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
		browsers: 1,
		contextsPerBrowser: 2,
		recyclePages: 100,
		recycleMs: 3_600_000,
		maxBrowserBytes: 1024 * 1024 * 1024,
		pageTimeoutMs: 30_000,
		blockResources: true,
		maxHtmlBytes: 100_000,
		queueTimeoutMs: 60_000,
		proxies: null,
		solver: null,
		...overrides,
	});

describe("browser pool resource blocking", () => {
	let server: Server;
	let port: number;
	const hits = new Map<string, number>();

	before(async () => {
		server = createServer((req, res) => {
			const path = new URL(req.url ?? "/", "http://x").pathname;
			hits.set(path, (hits.get(path) ?? 0) + 1);
			if (path === "/page") {
				res.writeHead(200, { "content-type": "text/html" });
				res.end(`<html><head><link rel="stylesheet" href="/style.css"><style>
@font-face { font-family: F; src: url(/font.woff2); } body { font-family: F; }</style></head>
<body><h1 id="t">page</h1><img src="/img.png"><video src="/clip.mp4" autoplay muted></video>
<iframe src="http://localhost:${port}/frame"></iframe><script src="/app.js"></script></body></html>`);
			} else if (path === "/frame") {
				res.writeHead(200, { "content-type": "text/html" });
				res.end(`<html><body><img src="/frame-img.png"></body></html>`);
			} else if (path === "/app.js") {
				res.writeHead(200, { "content-type": "text/javascript" });
				res.end(`document.getElementById("t").textContent = "scripted";`);
			} else if (path === "/style.css") {
				res.writeHead(200, { "content-type": "text/css" });
				res.end("h1 { color: red; }");
			} else {
				res.writeHead(200, { "content-type": "application/octet-stream" });
				res.end(Buffer.alloc(100));
			}
		});
		await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
		port = (server.address() as AddressInfo).port;
	});

	after(async () => {
		await new Promise((r) => server?.close(r));
	});

	const assertBlocked = () => {
		for (const path of ["/img.png", "/font.woff2", "/clip.mp4", "/frame-img.png"])
			assert.equal(hits.get(path), undefined, `${path} was fetched`);
		for (const path of ["/page", "/app.js", "/style.css", "/frame"])
			assert.ok((hits.get(path) ?? 0) > 0, `${path} was not fetched`);
	};

	test("images, fonts and media are not fetched; documents, scripts, styles and frames are", async () => {
		hits.clear();
		const pool = newPool();
		pool.start();
		try {
			for (let i = 0; i < 3; i++) {
				const r = await pool.render({ url: `http://127.0.0.1:${port}/page`, extract: { t: "#t" } });
				assert.equal(r.status, 200);
				assert.equal(r.fields?.t, "scripted");
			}
			assertBlocked();
			assert.equal(pool.stats().busy, 0);
		} finally {
			await pool.close();
		}
	});

	test("the same through a proxy that asks for credentials", async () => {
		hits.clear();
		let authed = 0;
		const upstream = new ProxyChainServer({
			port: 0,
			host: "127.0.0.1",
			verbose: false,
			prepareRequestFunction: ({ username }) => {
				if (username !== "lease.abc") return { requestAuthentication: true };
				authed++;
				return {};
			},
		});
		await upstream.listen();
		const pool = newPool({
			proxies: {
				async acquire() {
					return { leaseId: "l1", server: `http://127.0.0.1:${upstream.port}`, username: "lease.abc" };
				},
				async release() {},
			},
		});
		pool.start();
		try {
			const r = await pool.render({
				url: `http://127.0.0.1:${port}/page`,
				session: "s1",
				extract: { t: "#t" },
			});
			assert.equal(r.status, 200);
			assert.equal(r.fields?.t, "scripted");
			assert.ok(authed > 0, "the page went through the proxy");
			assertBlocked();
		} finally {
			await pool.close();
			await upstream.close(true);
		}
	});
});
