import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
	applyOutcome,
	applySuccesses,
	type HealthRecord,
	healthState,
	healthWeight,
	isUsable,
} from "../../src/proxy/health.ts";
import { NoProxyAvailableError, ProxyPool } from "../../src/proxy/pool.ts";
import { parseProxyUrl, toPublic } from "../../src/proxy/proxy-url.ts";
import { type Candidate, orderCandidates } from "../../src/proxy/rotation.ts";
import { ProviderError, parseProviderProxy, parseProxyList } from "../../src/proxy/sources.ts";
import { MemorySharedState } from "../../src/shared-state/index.ts";
import { redact } from "../../src/utils/redact.ts";
import { sleep } from "../../src/utils/time.ts";

describe("proxy URLs", () => {
	test("parses the common shapes and never exposes the password", () => {
		const a = parseProxyUrl("http://user1:s3cret-pass@10.0.0.1:8080");
		assert.equal(a.host, "10.0.0.1");
		assert.equal(a.port, 8080);
		assert.equal(a.username, "user1");
		assert.equal(a.password, "s3cret-pass");
		const b = parseProxyUrl("10.0.0.1:8080:user1:s3cret-pass");
		assert.equal(b.id, a.id, "the provider export shape is the same proxy");
		assert.equal(parseProxyUrl("10.0.0.2:3128").username, "");
		const shown = JSON.stringify(toPublic(a));
		assert.ok(!shown.includes("s3cret-pass"));
		assert.ok(!a.id.includes("s3cret"));
		assert.equal(redact(`failed via ${a.url}`).includes("s3cret-pass"), false);
		assert.equal(
			redact("the password s3cret-pass leaked").includes("s3cret-pass"),
			false,
			"registered as a secret",
		);
	});

	test("rejects what is not an http(s) proxy, without echoing credentials", () => {
		assert.throws(() => parseProxyUrl("socks5://u:p@h:1"), /unsupported proxy scheme/);
		assert.throws(() => parseProxyUrl("http://h:1/path"), /path/);
		assert.throws(() => parseProxyUrl(""), /empty/);
		try {
			parseProxyUrl("http://u:hunter2hunter2@bad host:1");
			assert.fail("should throw");
		} catch (err) {
			assert.ok(!(err as Error).message.includes("hunter2hunter2"));
		}
	});

	test("a list parses with comments, duplicates collapse, bad lines are reported", () => {
		const list = parseProxyList(
			"# farm\nhttp://a:pw1234567@1.1.1.1:80\nhttp://a:pw1234567@1.1.1.1:80, 2.2.2.2:3128\nftp://x\n",
			"file",
		);
		assert.equal(list.proxies.length, 2);
		assert.deepEqual(
			list.errors.map((e) => e.line),
			[4],
		);
	});

	test("provider entries: invalid ones dropped, malformed ones refused", () => {
		const p = parseProviderProxy({
			proxy_address: "1.2.3.4",
			port: 8168,
			username: "u",
			password: "pw-provider-1",
			valid: true,
			country_code: "US",
		});
		assert.equal(p?.countryCode, "US");
		assert.equal(parseProviderProxy({ proxy_address: "1.2.3.4", port: 1, valid: false }), null);
		assert.throws(() => parseProviderProxy({ proxy_address: "1.2.3.4", port: "x" }), ProviderError);
	});
});

describe("rotation", () => {
	const cands: Candidate[] = ["a", "b", "c"].map((id, i) => ({ id, weight: 1, inFlight: 2 - i, uses: i }));

	test("round-robin walks the list with the cursor", () => {
		assert.deepEqual(
			[0, 1, 2, 3].map((c) => orderCandidates(cands, "round-robin", c)[0]!.id),
			["a", "b", "c", "a"],
		);
	});

	test("least-used prefers fewest leases in flight", () => {
		assert.equal(orderCandidates(cands, "least-used", 0)[0]!.id, "c");
	});

	test("weighted favours heavy candidates in proportion", () => {
		const weighted: Candidate[] = [
			{ id: "fast", weight: 9, inFlight: 0, uses: 0 },
			{ id: "slow", weight: 1, inFlight: 0, uses: 0 },
		];
		let seed = 7;
		const random = () => {
			seed = (seed * 16807) % 2147483647;
			return seed / 2147483647;
		};
		let fast = 0;
		for (let i = 0; i < 2000; i++)
			if (orderCandidates(weighted, "weighted", 0, random)[0]!.id === "fast") fast++;
		assert.ok(fast > 1600 && fast < 1990, `fast first ${fast}/2000`);
	});

	test("random returns every candidate once", () => {
		assert.deepEqual(
			orderCandidates(cands, "random", 0)
				.map((c) => c.id)
				.sort(),
			["a", "b", "c"],
		);
	});
});

describe("health", () => {
	test("consecutive failures make a proxy dead; a success revives it", () => {
		let rec = applyOutcome(undefined, { ok: true, latencyMs: 100 }, 1);
		assert.equal(healthState(rec), "healthy");
		for (let i = 0; i < 3; i++) rec = applyOutcome(rec, { ok: false, error: "ECONNREFUSED" }, 2);
		assert.equal(healthState(rec), "dead");
		assert.equal(isUsable(rec, 3), false);
		assert.equal(isUsable(rec, 2 + 60_000), true, "one trial after the retry delay");
		rec = applyOutcome(rec, { ok: true, latencyMs: 100 }, 4);
		assert.notEqual(healthState(rec), "dead");
	});

	test("several successes folded at once make the record one by one would", () => {
		const start = applyOutcome(applyOutcome(undefined, { ok: true, latencyMs: 80 }, 1), { ok: false }, 2);
		const latencies = [120, undefined, 40, 300];
		let oneByOne = start;
		for (const latencyMs of latencies)
			oneByOne = applyOutcome(oneByOne, latencyMs === undefined ? { ok: true } : { ok: true, latencyMs }, 9);
		assert.deepEqual(applySuccesses(start, latencies, 9), oneByOne);
		assert.deepEqual(
			applySuccesses(undefined, [50], 3),
			applyOutcome(undefined, { ok: true, latencyMs: 50 }, 3),
		);
	});

	test("slow and flaky proxies weigh less", () => {
		const fast = applyOutcome(undefined, { ok: true, latencyMs: 50 }, 1);
		const slow = applyOutcome(undefined, { ok: true, latencyMs: 1500 }, 1);
		let flaky = applyOutcome(undefined, { ok: true, latencyMs: 50 }, 1);
		flaky = applyOutcome(flaky, { ok: false }, 2);
		flaky = applyOutcome(flaky, { ok: true, latencyMs: 50 }, 3);
		flaky = applyOutcome(flaky, { ok: false }, 4);
		assert.ok(healthWeight(fast) > 5 * healthWeight(slow));
		assert.ok(healthWeight(fast) > healthWeight(flaky));
	});
});

describe("pool", () => {
	const proxies = [1, 2, 3].map((n) => parseProxyUrl(`http://u${n}:password-${n}xx@10.0.0.${n}:8000`, "env"));

	async function withPool(
		opts: ConstructorParameters<typeof ProxyPool>[1],
		fn: (pool: ProxyPool) => Promise<void>,
	) {
		const state = new MemorySharedState();
		const pool = new ProxyPool(state, opts);
		pool.setSource("env", proxies);
		try {
			await fn(pool);
		} finally {
			await state.close();
		}
	}

	test("a 403 bans the proxy for that site only, for the cooldown", () =>
		withPool({ strategy: "round-robin" }, async (pool) => {
			const lease = await pool.acquire({ domain: "Site-A.test" });
			const r = await pool.release(lease.leaseId, { ok: true, status: 403 });
			assert.deepEqual(r, { known: true, banned: true });
			for (let i = 0; i < 6; i++) {
				const l = await pool.acquire({ domain: "site-a.test" });
				assert.notEqual(l.proxy.id, lease.proxy.id);
				await pool.release(l.leaseId, { ok: true, status: 200 });
			}
			const seen = new Set<string>();
			for (let i = 0; i < 3; i++) {
				const l = await pool.acquire({ domain: "site-b.test" });
				seen.add(l.proxy.id);
				await pool.release(l.leaseId, { ok: true, status: 200 });
			}
			assert.ok(seen.has(lease.proxy.id), "still serves another site");
			const status = await pool.status("site-a.test");
			assert.equal(status.find((s) => s.id === lease.proxy.id)?.bans[0]?.domain, "site-a.test");
		}));

	test("sticky sessions keep their proxy until it fails", () =>
		withPool({ strategy: "random" }, async (pool) => {
			const first = await pool.acquire({ session: "job-1" });
			await pool.release(first.leaseId, { ok: true, status: 200 });
			for (let i = 0; i < 4; i++) {
				const l = await pool.acquire({ session: "job-1" });
				assert.equal(l.proxy.id, first.proxy.id);
				assert.equal(l.sticky, true);
				await pool.release(l.leaseId, { ok: true, status: 200 });
			}
			const failing = await pool.acquire({ session: "job-1" });
			await pool.release(failing.leaseId, { ok: false, error: "ECONNRESET" });
			const next = await pool.acquire({ session: "job-1", exclude: [first.proxy.id] });
			assert.equal(next.sticky, false);
		}));

	test("the concurrency cap is per proxy; release frees the slot", () =>
		withPool({ strategy: "round-robin", maxConcurrency: 1 }, async (pool) => {
			const held = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]);
			assert.equal(new Set(held.map((h) => h.proxy.id)).size, 3);
			await assert.rejects(pool.acquire(), NoProxyAvailableError);
			await pool.release(held[1]!.leaseId, { ok: true });
			assert.equal((await pool.acquire()).proxy.id, held[1]!.proxy.id);
			assert.deepEqual(await pool.release("px-unknown.1", { ok: true }), { known: false, banned: false });
		}));

	test("a lease released twice at once counts once: one slot freed, one sample learned", () =>
		withPool({ strategy: "round-robin", maxConcurrency: 1 }, async (pool) => {
			const lease = await pool.acquire({ domain: "site.test" });
			const outcomes = await Promise.all([
				pool.release(lease.leaseId, { ok: false, error: "ECONNRESET" }),
				pool.release(lease.leaseId, { ok: false, error: "ECONNRESET" }),
			]);
			assert.deepEqual(outcomes.map((o) => o.known).sort(), [false, true]);
			const row = (await pool.status()).find((p) => p.id === lease.proxy.id);
			assert.equal(row?.inFlight, 0);
			assert.equal(row?.health?.consecutiveFailures, 1, "one failure learned, not two");
			// The slot was freed once; a lease taken since is not freed by the late duplicate.
			const next = await pool.acquire({
				exclude: proxies.filter((p) => p.id !== lease.proxy.id).map((p) => p.id),
			});
			assert.equal(next.proxy.id, lease.proxy.id);
			await pool.release(lease.leaseId, { ok: true });
			await assert.rejects(
				pool.acquire({ exclude: proxies.filter((p) => p.id !== lease.proxy.id).map((p) => p.id) }),
				NoProxyAvailableError,
			);
		}));

	test("a held lease (the gateway's) keeps no record, frees its slot and teaches like any lease", () =>
		withPool({ strategy: "round-robin", maxConcurrency: 1, healthFlushMs: 50 }, async (pool) => {
			const only = { exclude: proxies.slice(1).map((p) => p.id) };
			const held = await pool.acquireHeld({ ...only, domain: "site.test" });
			assert.equal(held.proxy.id, proxies[0]!.id);
			assert.ok(held.slotKey);
			assert.equal(await pool.leasedProxy(held.leaseId), null, "no lease record to look up");
			assert.deepEqual(await pool.release(held.leaseId, { ok: true }), { known: false, banned: false });
			await assert.rejects(pool.acquireHeld(only), NoProxyAvailableError, "its slot is still held");
			assert.deepEqual(await pool.releaseHeld(held, { ok: true, status: 200, latencyMs: 40 }), {
				banned: false,
			});
			const next = await pool.acquireHeld({ ...only, domain: "site.test" });
			assert.deepEqual(await pool.releaseHeld(next, { ok: true, status: 429 }), { banned: true });
			const row = (await pool.status("site.test")).find((p) => p.id === held.proxy.id);
			assert.equal(row?.inFlight, 0);
			assert.equal(row?.health?.successes, 2);
			assert.equal(row?.bans[0]?.reason, "HTTP 429");
		}));

	test("successes reach the shared health within healthFlushMs; a failure writes them first, in order", () =>
		withPool({ strategy: "round-robin", healthFlushMs: 50 }, async (pool) => {
			const key = `proxy:health:${proxies[0]!.id}`;
			const only = { exclude: proxies.slice(1).map((p) => p.id) };
			for (let i = 0; i < 3; i++)
				await pool.releaseHeld(await pool.acquireHeld(only), { ok: true, latencyMs: 10 });
			assert.equal(await pool.state.get(key), undefined, "gathered, not written yet");
			await sleep(120);
			assert.equal((await pool.state.get<HealthRecord>(key))?.successes, 3, "written by the timer");
			await pool.releaseHeld(await pool.acquireHeld(only), { ok: true, latencyMs: 10 });
			await pool.releaseHeld(await pool.acquireHeld(only), { ok: false, error: "ECONNRESET" });
			const rec = await pool.state.get<HealthRecord>(key);
			assert.equal(rec?.successes, 4, "the pending success was written with the failure");
			assert.equal(rec?.consecutiveFailures, 1, "and before it");
		}));

	test("a failure recorded while the successes before it are being written loses neither", () =>
		withPool({ strategy: "round-robin", healthFlushMs: 10_000 }, async (pool) => {
			const only = { exclude: proxies.slice(1).map((p) => p.id) };
			for (let i = 0; i < 5; i++)
				await pool.releaseHeld(await pool.acquireHeld(only), { ok: true, latencyMs: 10 });
			const failing = await pool.acquireHeld(only);
			await Promise.all([pool.flushHealth(), pool.releaseHeld(failing, { ok: false, error: "ECONNRESET" })]);
			const rec = await pool.state.get<HealthRecord>(`proxy:health:${proxies[0]!.id}`);
			assert.equal(rec?.successes, 5);
			assert.equal(rec?.failures, 1);
			assert.equal(rec?.consecutiveFailures, 1, "the failure came last");
		}));

	test("an unused lease frees its slot and teaches nothing", () =>
		withPool({ strategy: "round-robin", maxConcurrency: 1 }, async (pool) => {
			const lease = await pool.acquire({ domain: "site.test", session: "s" });
			const r = await pool.release(lease.leaseId, { ok: false, status: 403, error: "context", unused: true });
			assert.deepEqual(r, { known: true, banned: false });
			const row = (await pool.status("site.test")).find((p) => p.id === lease.proxy.id);
			assert.ok(row);
			assert.equal(row.inFlight, 0);
			assert.equal(row.health, null, "no health learned");
			assert.deepEqual(row.bans, []);
		}));

	test("dead proxies are skipped; run-time add and remove", () =>
		withPool({ strategy: "round-robin" }, async (pool) => {
			for (let i = 0; i < 3; i++)
				await pool.recordHealth(proxies[0]!.id, { ok: false, error: "ECONNREFUSED" });
			for (let i = 0; i < 6; i++) {
				const l = await pool.acquire();
				assert.notEqual(l.proxy.id, proxies[0]!.id);
				await pool.release(l.leaseId, { ok: true });
			}
			const added = await pool.add("http://new:password-new@10.0.0.9:8000");
			assert.ok(pool.proxies().some((p) => p.id === added.id));
			await pool.remove(proxies[1]!.id);
			await pool.remove(proxies[2]!.id);
			assert.equal((await pool.acquire()).proxy.id, added.id);
		}));
});
