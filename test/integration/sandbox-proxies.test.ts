/**
 * Contract tests of the sandbox proxy farm and its provider (contracts/proxies.md), over real HTTP on
 * loopback through the real proxies with undici's ProxyAgent, in both proxy modes: CONNECT tunnels
 * (undici's default) and absolute-form forwarding (what Chromium does for http:// URLs).
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { ProxyAgent, request } from "undici";
import { generateWorld } from "../../sandbox/generator.ts";
import { type MlsSite, startMlsSite } from "../../sandbox/mls-site.ts";
import { type ProxyFarm, startProxyFarm } from "../../sandbox/proxy-farm.ts";

const HEALTHY = 0;
const DEAD = 1;
const SLOW = 2;
const FLAKY = 3;

let farm: ProxyFarm;
let echo: Server;
let echoUrl: string;
let site: MlsSite;

type Outcome = { status: number; body: string } | { error: string };

/** One request through `proxyUrl`; failures become `{ error: "CODE: message" }` instead of throwing. */
async function via(proxyUrl: string, url: string, tunnel: boolean, headers: Record<string, string> = {}) {
	const agent = new ProxyAgent({ uri: proxyUrl, proxyTunnel: tunnel });
	try {
		const res = await request(url, { dispatcher: agent, headers });
		return { status: res.statusCode, body: await res.body.text() };
	} catch (err) {
		const e = err as { code?: string; cause?: { code?: string }; message: string };
		// undici reports a 407 as an error (its message carries the status), not as a response.
		return { error: `${e.code ?? e.cause?.code ?? "ERROR"}: ${e.message}` };
	} finally {
		await agent.close().catch(() => {});
	}
}

function ok(o: Outcome): { status: number; body: string } {
	assert.ok("status" in o, `expected an answer, got ${JSON.stringify(o)}`);
	return o;
}

function failure(o: Outcome): string {
	assert.ok("error" in o, `expected a failure, got ${JSON.stringify(o)}`);
	return o.error;
}

before(async () => {
	farm = await startProxyFarm({
		count: 6,
		listed: 4,
		behaviours: ["healthy", "dead", "slow", "flaky"],
		slowMs: 200,
		flakyRate: 0.5,
		seed: 11,
	});
	echo = createServer((req, res) => {
		res.setHeader("content-type", "application/json");
		res.end(JSON.stringify({ exitIp: req.headers["x-sandbox-exit-ip"] ?? null, path: req.url }));
	});
	await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
	echoUrl = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
	site = await startMlsSite({
		world: generateWorld({ zips: ["85031"], parcelsPerZip: 200 }),
		defences: { direct: "deny", rateLimit: null },
	});
});

after(async () => {
	await farm.close();
	await site.close();
	await new Promise<void>((r) => {
		echo.close(() => r());
		echo.closeAllConnections();
	});
});

for (const tunnel of [true, false]) {
	const mode = tunnel ? "CONNECT tunnel" : "absolute-form forwarding";
	describe(`proxies (${mode})`, () => {
		test("a healthy proxy forwards and stamps its exit IP, replacing a client-sent one", async () => {
			const p = farm.proxy(HEALTHY);
			const res = ok(
				await via(p.url, `${echoUrl}/hello?x=1`, tunnel, { "x-sandbox-exit-ip": "198.51.100.7" }),
			);
			assert.equal(res.status, 200);
			assert.deepEqual(JSON.parse(res.body), { exitIp: "203.0.113.1", path: "/hello?x=1" });
		});

		test("wrong credentials are rejected with 407", async () => {
			const p = farm.proxy(HEALTHY);
			const before = p.counts.authFailures;
			const wrong = `http://${p.username}:not-the-password@${p.host}:${p.port}`;
			assert.match(failure(await via(wrong, echoUrl, tunnel)), /407/);
			const other = farm.proxy(SLOW);
			// Credentials are per proxy: another proxy's pair does not open this one.
			const swapped = `http://${other.username}:${other.password}@${p.host}:${p.port}`;
			assert.match(failure(await via(swapped, echoUrl, tunnel)), /407/);
			assert.equal(farm.proxy(HEALTHY).counts.authFailures, before + 2);
		});

		test("a dead proxy refuses connections", async () => {
			assert.match(failure(await via(farm.proxy(DEAD).url, echoUrl, tunnel)), /^ECONNREFUSED/);
		});

		test("a slow proxy still answers", async () => {
			const res = ok(await via(farm.proxy(SLOW).url, echoUrl, tunnel));
			assert.equal(res.status, 200);
			assert.equal(JSON.parse(res.body).exitIp, "203.0.113.3");
		});

		test("a flaky proxy fails some requests (502 or reset) and serves others", async () => {
			const p = farm.proxy(FLAKY);
			const agent = new ProxyAgent({ uri: p.url, proxyTunnel: tunnel });
			const outcomes: string[] = [];
			try {
				for (let i = 0; i < 40; i++) {
					try {
						const res = await request(echoUrl, { dispatcher: agent });
						await res.body.text();
						outcomes.push(String(res.statusCode));
					} catch {
						outcomes.push("error");
					}
				}
			} finally {
				await agent.close();
			}
			assert.ok(outcomes.includes("200"), outcomes.join(","));
			assert.ok(
				outcomes.some((o) => o !== "200"),
				outcomes.join(","),
			);
			assert.ok(
				outcomes.every((o) => ["200", "502", "error"].includes(o)),
				outcomes.join(","),
			);
		});
	});
}

describe("run-time knobs", () => {
	test("failMode picks 502 or connection reset", async () => {
		const p = farm.proxy(FLAKY);
		await farm.set(FLAKY, { failRate: 1, failMode: "502" });
		assert.equal(ok(await via(p.url, echoUrl, false)).status, 502);
		assert.equal(ok(await via(p.url, echoUrl, true)).status, 502);
		await farm.set(FLAKY, { failMode: "reset" });
		const before = farm.proxy(FLAKY).counts.resets;
		assert.ok("error" in (await via(p.url, echoUrl, false)));
		assert.ok("error" in (await via(p.url, echoUrl, true)));
		assert.ok(farm.proxy(FLAKY).counts.resets >= before + 2);
		await farm.set(FLAKY, { failRate: 0.5, failMode: "mixed" });
	});

	test("a proxy can die and come back on the same port", async () => {
		const p = farm.proxy(HEALTHY);
		await farm.set(HEALTHY, { behaviour: "dead" });
		assert.match(failure(await via(p.url, echoUrl, true)), /^ECONNREFUSED/);
		await farm.set(HEALTHY, { behaviour: "healthy" });
		assert.equal(farm.proxy(HEALTHY).port, p.port);
		assert.equal(ok(await via(p.url, echoUrl, true)).status, 200);
	});

	test("unknown behaviours and out-of-range knobs are refused", async () => {
		await assert.rejects(farm.set(HEALTHY, { failRate: 2 }), RangeError);
		await assert.rejects(farm.set(HEALTHY, { behaviour: "sleepy" as never }), RangeError);
		assert.throws(() => farm.proxy(99), RangeError);
	});

	test("knobs are also reachable over HTTP (control routes on the provider)", async () => {
		const post = async (route: string, body: unknown) => {
			const res = await fetch(`${farm.providerUrl}/__sandbox/${route}`, {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify(body),
			});
			return { status: res.status, body: (await res.json()) as Record<string, unknown> };
		};
		const p = farm.proxy(SLOW);
		assert.equal((await post("farm/set", { index: SLOW, behaviour: "dead" })).status, 200);
		assert.match(failure(await via(p.url, echoUrl, false)), /^ECONNREFUSED/);
		assert.equal((await post("farm/set", { index: SLOW, behaviour: "slow" })).status, 200);
		assert.equal(ok(await via(p.url, echoUrl, false)).status, 200);
		assert.equal((await post("farm/set", { index: SLOW, failRate: 7 })).status, 400);
		const state = (await (await fetch(`${farm.providerUrl}/__sandbox/farm`)).json()) as {
			proxies: { behaviour: string }[];
		};
		assert.equal(state.proxies[SLOW]!.behaviour, "slow");
	});

	test("requests are counted per proxy", async () => {
		const before = farm.proxy(SLOW).counts;
		await via(farm.proxy(SLOW).url, echoUrl, false);
		await via(farm.proxy(SLOW).url, echoUrl, true);
		const now = farm.proxy(SLOW).counts;
		assert.equal(now.requests, before.requests + 2);
		assert.equal(now.forwarded, before.forwarded + 2);
		assert.equal(now.connects, before.connects + 1);
	});
});

describe("the MLS site sees the exit IP", () => {
	test("requests through a proxy are attributed to its exit IP; direct ones are denied", async () => {
		const path = site.detailPath(site.listingIds("85031")[0]!);
		const res = ok(await via(farm.proxy(SLOW).url, `${site.url}${path}`, true));
		assert.equal(res.status, 200);
		assert.ok(site.server.counters.clients().includes("203.0.113.3"));
		const direct = await fetch(`${site.url}${path}`);
		assert.equal(direct.status, 403);
		assert.match(await direct.text(), /Access denied/);
	});
});

describe("provider list", () => {
	type Page = {
		count: number;
		next: string | null;
		previous: string | null;
		results: {
			proxy_address: string;
			port: number;
			username: string;
			password: string;
			valid: boolean;
			country_code: string;
		}[];
	};
	const list = async (url: string, key: string | null = farm.providerKey) => {
		const res = await fetch(url, { headers: key === null ? {} : { authorization: `Token ${key}` } });
		return { status: res.status, body: (await res.json()) as Page & { detail?: string } };
	};

	test("WebShare-shaped, paged, with next/previous links", async () => {
		const first = await list(`${farm.listUrl}?page=1&page_size=3`);
		assert.equal(first.status, 200);
		assert.equal(first.body.count, 4);
		assert.equal(first.body.previous, null);
		assert.equal(first.body.results.length, 3);
		for (const r of first.body.results) {
			assert.equal(r.proxy_address, "127.0.0.1");
			assert.equal(typeof r.port, "number");
			assert.equal(r.valid, true);
			assert.equal(r.country_code, "US");
		}
		assert.ok(first.body.next);
		const second = await list(first.body.next);
		assert.equal(second.body.results.length, 1);
		assert.equal(second.body.next, null);
		assert.ok(second.body.previous);
		const urls = [...first.body.results, ...second.body.results].map(
			(r) => `http://${r.username}:${r.password}@${r.proxy_address}:${r.port}`,
		);
		assert.deepEqual(urls, farm.urls());
	});

	test("401 on a bad or missing key, 404 past the last page", async () => {
		const bad = await list(farm.listUrl, "wrong-key");
		assert.equal(bad.status, 401);
		assert.equal(bad.body.detail, "Invalid token.");
		assert.equal((await list(farm.listUrl, null)).status, 401);
		assert.equal((await list(`${farm.listUrl}?page=9&page_size=100`)).status, 404);
	});

	test("plain-text list: one proxy URL a line", async () => {
		const res = await fetch(farm.textListUrl);
		assert.equal(res.status, 200);
		assert.deepEqual((await res.text()).trim().split("\n"), farm.urls());
		const bad = await fetch(farm.textListUrl.replace(farm.providerKey, "wrong-key"));
		assert.equal(bad.status, 401);
		await bad.arrayBuffer();
	});

	test("rotation replaces listed proxies and revokes the old credentials", async () => {
		const beforeUrls = farm.urls();
		const out = farm.proxies().find((p) => p.listed)!;
		farm.rotate(2);
		const afterUrls = farm.urls();
		assert.equal(afterUrls.length, 4);
		assert.notDeepEqual(afterUrls, beforeUrls);
		// Standby proxies 4 and 5 joined the list.
		assert.ok(farm.proxy(4).listed && farm.proxy(5).listed);
		assert.equal(farm.proxy(out.index).listed, false);
		assert.match(failure(await via(out.url, echoUrl, false)), /407/);
		const text = await (await fetch(farm.textListUrl)).text();
		assert.deepEqual(text.trim().split("\n"), afterUrls);
		const joined = ok(await via(farm.proxy(4).url, echoUrl, true));
		assert.equal(JSON.parse(joined.body).exitIp, "203.0.113.5");
	});
});
