/**
 * Pool + health checks + gateway against the sandbox proxy farm (real proxies on loopback):
 * dead, slow and flaky proxies are found and avoided, a proxy banned by one site serves others,
 * the gateway fails over within a request, and its sockets do not leak.
 */
import assert from "node:assert/strict";
import { readdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ProxyAgent, request } from "undici";
import { type ProxyFarm, startProxyFarm } from "../../sandbox/proxy-farm.ts";
import { checkAll } from "../../src/proxy/checker.ts";
import { ProxyGateway } from "../../src/proxy/gateway.ts";
import { ProxyPool } from "../../src/proxy/pool.ts";
import { parseProxyUrl } from "../../src/proxy/proxy-url.ts";
import { fetchProviderList, loadProxyFile, watchProxyFile } from "../../src/proxy/sources.ts";
import { MemorySharedState } from "../../src/shared-state/index.ts";
import { waitFor } from "../../src/utils/time.ts";
import { type ExitIpSite, startExitIpSite } from "../harness/exit-ip-site.ts";

const EXIT = (index: number) => `203.0.113.${index + 1}`;

/** Absolute-form GET through a proxy, the way curl and Chromium send http:// requests. */
function absoluteGet(
	proxyPort: number,
	url: string,
	username?: string,
): Promise<{ status: number; body: string }> {
	return new Promise((resolve, reject) => {
		const target = new URL(url);
		const headers: Record<string, string> = { host: target.host };
		if (username) headers["proxy-authorization"] = `Basic ${Buffer.from(`${username}:`).toString("base64")}`;
		const req = httpRequest(
			{ host: "127.0.0.1", port: proxyPort, path: url, headers, agent: false },
			(res) => {
				let body = "";
				res.setEncoding("utf8");
				res.on("data", (c) => {
					body += c;
				});
				res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
			},
		);
		req.on("error", reject);
		req.end();
	});
}

describe("proxy pool against the sandbox proxy farm", () => {
	let farm: ProxyFarm;
	let site: ExitIpSite;
	let state: MemorySharedState;
	let pool: ProxyPool;
	let gateway: ProxyGateway;
	let dir: string;

	before(async () => {
		// 0 healthy, 1 dead, 2 slow, 3 flaky (always fails), 4 healthy
		farm = await startProxyFarm({
			count: 5,
			behaviours: ["healthy", "dead", "slow", "flaky", "healthy"],
			slowMs: 3000,
			flakyRate: 1,
			seed: 11,
		});
		site = await startExitIpSite();
		state = new MemorySharedState();
		pool = new ProxyPool(state, { strategy: "weighted", maxConcurrency: 0 });
		dir = await mkdtemp(join(tmpdir(), "saguaro-proxy-"));
	});

	after(async () => {
		await gateway?.close();
		await farm.close();
		await site.close();
		await state.close();
		await rm(dir, { recursive: true, force: true });
	});

	test("sources: the provider API and a watched file list the farm", async () => {
		const listed = await fetchProviderList(farm.listUrl, farm.providerKey);
		assert.equal(listed.length, 5);
		await assert.rejects(fetchProviderList(farm.listUrl, "wrong-key-123"), /HTTP 401/);

		const file = join(dir, "proxies.txt");
		writeFileSync(file, `${farm.urls().slice(0, 2).join("\n")}\n`);
		let reloads = 0;
		const watcher = watchProxyFile(file, () => reloads++, 20);
		try {
			assert.equal((await loadProxyFile(file)).proxies.length, 2);
			writeFileSync(file, `# all of them\n${farm.urls().join("\n")}\n`);
			await waitFor(() => reloads > 0, "the file watcher to fire", 5000);
			assert.equal((await loadProxyFile(file)).proxies.length, 5);
		} finally {
			watcher.close();
		}
		pool.setSource("provider", listed);
	});

	test("active checks find the dead, slow and flaky proxies", async () => {
		const results = await checkAll(pool.proxies(), `${site.url}/check`, { timeoutMs: 1500, concurrency: 5 });
		const byIndex = (i: number) => results.find((r) => r.proxyId === parseProxyUrl(farm.proxy(i).url).id)!;
		assert.equal(byIndex(0).ok, true);
		assert.equal(byIndex(4).ok, true);
		assert.equal(byIndex(1).ok, false, "dead: connection refused");
		assert.equal(byIndex(2).ok, false, "slow: over the time limit");
		assert.match(byIndex(2).error ?? "", /timeout/);
		assert.equal(byIndex(3).ok, false, "flaky");
		// Three rounds mark the failing ones dead.
		for (let round = 0; round < 3; round++) {
			for (const r of await checkAll(pool.proxies(), `${site.url}/check`, {
				timeoutMs: 1500,
				concurrency: 5,
			})) {
				await pool.recordHealth(r.proxyId, {
					ok: r.ok,
					latencyMs: r.latencyMs,
					...(r.error ? { error: r.error } : {}),
				});
			}
		}
		const status = await pool.status();
		const stateOf = (i: number) => status.find((s) => s.id === parseProxyUrl(farm.proxy(i).url).id)!.state;
		assert.deepEqual([0, 1, 2, 3, 4].map(stateOf), ["healthy", "dead", "dead", "dead", "healthy"]);
		assert.ok(!JSON.stringify(status).includes(farm.proxy(0).password), "no password in the status");
		for (let i = 0; i < 10; i++) {
			const l = await pool.acquire({ domain: "127.0.0.1" });
			assert.ok([EXIT(0), EXIT(4)].includes(farm.proxies().find((p) => p.port === l.proxy.port)!.exitIp));
			await pool.release(l.leaseId, { ok: true, status: 200 });
		}
	});

	test("the gateway fails over within a request (absolute-form and CONNECT)", async () => {
		// A fresh pool that knows nothing yet: the first attempts hit dead/flaky proxies.
		const fresh = new MemorySharedState();
		const freshPool = new ProxyPool(fresh, { strategy: "round-robin", maxConcurrency: 0 });
		freshPool.setSource(
			"env",
			[1, 3, 0].map((i) => parseProxyUrl(farm.proxy(i).url)),
		);
		const gw = new ProxyGateway({ pool: freshPool, port: 0, maxAttempts: 3 });
		const port = await gw.listen();
		try {
			for (let i = 0; i < 6; i++) {
				const r = await absoluteGet(port, `${site.url}/abs/${i}`);
				assert.equal(r.status, 200, r.body);
				assert.equal(JSON.parse(r.body).ip, EXIT(0));
			}
			const agent = new ProxyAgent({ uri: `http://127.0.0.1:${port}` });
			try {
				for (let i = 0; i < 6; i++) {
					const r = await request(`${site.url}/tunnel/${i}`, { dispatcher: agent });
					assert.equal(r.statusCode, 200);
					assert.equal(((await r.body.json()) as { ip: string }).ip, EXIT(0));
				}
			} finally {
				await agent.close();
			}
			assert.ok(gw.stats().failovers > 0, "some requests needed another proxy");
			assert.equal(gw.stats().failures, 0);
		} finally {
			await gw.close();
			await fresh.close();
		}
	});

	test("a proxy banned by one site is retried around there and still serves other sites", async () => {
		gateway = new ProxyGateway({ pool, port: 0, maxAttempts: 3 });
		const port = await gateway.listen();
		site.banned.add(EXIT(0));
		const other = await startExitIpSite();
		try {
			// The rotation weighs proxies by their record so far, so the banned one may not come first:
			// ask until it has been tried (its 403 recorded as a ban); every answer is still a 200
			// through another proxy.
			let bans: unknown[] = [];
			for (let i = 0; i < 40 && bans.length === 0; i++) {
				const r = await absoluteGet(port, `${site.url}/banned/${i}`);
				assert.equal(r.status, 200);
				assert.equal(JSON.parse(r.body).ip, EXIT(4));
				bans = (await pool.status("127.0.0.1")).flatMap((s) => s.bans);
			}
			assert.ok(bans.length >= 1, "the 403 recorded a ban for the site");
			// The other site sits on the same loopback host, so ask the pool directly for another domain.
			const seen = new Set<string>();
			for (let i = 0; i < 20; i++) {
				const l = await pool.acquire({ domain: "other.test" });
				seen.add(l.proxy.id);
				await pool.release(l.leaseId, { ok: true, status: 200 });
			}
			assert.ok(seen.has(parseProxyUrl(farm.proxy(0).url).id), "the banned proxy serves another site");
		} finally {
			site.banned.clear();
			await other.close();
			for (const s of await pool.status()) for (const b of s.bans) await pool.unban(s.id, b.domain);
		}
	});

	test("sticky sessions ride in the proxy username", async () => {
		const ips = new Set<string>();
		for (let i = 0; i < 5; i++) {
			const r = await absoluteGet(gateway.port, `${site.url}/sticky/${i}`, "job-42");
			ips.add(JSON.parse(r.body).ip);
		}
		assert.equal(ips.size, 1);
	});

	test("absolute-form answers come through whole: HEAD, a request body, a large answer; a client that leaves frees its lease", async () => {
		const via = (method: string, url: string, body?: Buffer) =>
			new Promise<{ status: number; headers: Record<string, unknown>; bytes: Buffer }>((resolve, reject) => {
				const target = new URL(url);
				const req = httpRequest(
					{
						host: "127.0.0.1",
						port: gateway.port,
						method,
						path: url,
						headers: { host: target.host },
						agent: false,
					},
					(res) => {
						const chunks: Buffer[] = [];
						res.on("data", (c: Buffer) => chunks.push(c));
						res.on("end", () =>
							resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes: Buffer.concat(chunks) }),
						);
					},
				);
				req.on("error", reject);
				req.end(body);
			});
		const head = await via("HEAD", `${site.url}/head`);
		assert.equal(head.status, 200);
		assert.equal(head.bytes.length, 0);
		assert.ok(Number(head.headers["content-length"]) > 0, "HEAD keeps the GET's content-length");
		const posted = await via("POST", `${site.url}/post`, Buffer.alloc(100_000, 0x62));
		assert.equal(posted.status, 200);
		assert.deepEqual(
			{
				method: JSON.parse(posted.bytes.toString()).method,
				bytes: JSON.parse(posted.bytes.toString()).bytes,
			},
			{ method: "POST", bytes: 100_000 },
		);
		const big = await via("GET", `${site.url}/big/8000000`);
		assert.equal(big.status, 200);
		assert.equal(big.bytes.length, 8_000_000);
		assert.ok(big.bytes.every((b) => b === 0x61));

		// A client that reads the head of a large answer and leaves: the upstream answer is cut (not
		// left paused on its connection) and the lease is given back (nothing stays in flight).
		const cutBefore = site.cut.count;
		await new Promise<void>((resolve, reject) => {
			const req = httpRequest(
				{
					host: "127.0.0.1",
					port: gateway.port,
					path: `${site.url}/big/50000000`,
					headers: { host: site.host },
					agent: false,
				},
				(res) => {
					res.once("data", () => {
						req.destroy();
						resolve();
					});
				},
			);
			req.on("error", () => undefined);
			req.once("close", resolve);
			req.end();
			setTimeout(() => reject(new Error("no answer")), 10_000).unref();
		});
		await waitFor(
			async () => (await pool.status()).every((p) => p.inFlight === 0),
			"leases of the left answer to come back",
			10_000,
		);
		await waitFor(() => site.cut.count > cutBefore, "the left answer to be cut upstream", 10_000);
	});

	test("no socket or file descriptor growth over a few hundred requests", async () => {
		const fds = () => readdirSync("/proc/self/fd").length;
		const agent = new ProxyAgent({ uri: `http://127.0.0.1:${gateway.port}` });
		const run = async (n: number) => {
			for (let i = 0; i < n; i += 10) {
				await Promise.all(
					Array.from({ length: 10 }, async (_, j) => {
						if ((i + j) % 2 === 0) {
							await absoluteGet(gateway.port, `${site.url}/leak/${i + j}`);
						} else {
							const r = await request(`${site.url}/leak/${i + j}`, { dispatcher: agent });
							await r.body.dump();
						}
					}),
				);
			}
		};
		await run(40); // warm up pools (keep-alive agents)
		const before = fds();
		await run(300);
		await agent.close();
		await waitFor(() => gateway.stats().openSockets <= 20, "gateway sockets to settle", 10_000);
		const afterFds = fds();
		assert.ok(afterFds <= before + 20, `fds before ${before}, after ${afterFds}`);
		assert.ok(gateway.stats().openSockets <= 20, `open sockets ${gateway.stats().openSockets}`);
	});
});
