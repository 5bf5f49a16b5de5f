/**
 * The fault knobs and request counters every sandbox simulator shares, exercised over real HTTP
 * (the GIS simulator is the vehicle: no auth in the way) and in-process: each knob has its stated
 * effect, knobs change at run time, and the counters answer "how many in any window".
 */
import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";
import { maxInSlidingWindow, RequestCounters } from "../../sandbox/counters.ts";
import { FaultInjector, malformBody, Rng } from "../../sandbox/faults.ts";
import { generateWorld } from "../../sandbox/generator.ts";
import { GIS_QUERY_PATH, type MaricopaGisHandle, startMaricopaGis } from "../../sandbox/maricopa-gis.ts";
import { waitFor } from "../../src/utils/time.ts";

const world = generateWorld({ seed: 11, zips: ["85031"], parcelsPerZip: 60 });
let gis: MaricopaGisHandle;

const query = (client = "203.0.113.1", init: RequestInit = {}) =>
	fetch(
		`${gis.url}${GIS_QUERY_PATH}?f=json&where=1%3D1&outFields=APN&returnGeometry=false&resultRecordCount=5`,
		{
			...init,
			headers: { "x-sandbox-exit-ip": client },
		},
	);

describe("sandbox fault knobs and counters", () => {
	before(async () => {
		gis = await startMaricopaGis({ world, seed: 5 });
	});
	after(async () => {
		await gis.stop();
	});
	afterEach(() => {
		gis.faults.reset();
		gis.counters.reset();
	});

	test("no faults by default: well-formed JSON answers", async () => {
		for (let i = 0; i < 5; i++) {
			const res = await query();
			assert.equal(res.status, 200);
			assert.equal((JSON.parse(await res.text()) as { features: unknown[] }).features.length, 5);
		}
	});

	test("errorRate 1.0: every answer is one of errorStatuses", async () => {
		gis.faults.set({ errorRate: 1, errorStatuses: [502, 503] });
		const seen = new Set<number>();
		for (let i = 0; i < 20; i++) {
			const res = await query();
			await res.arrayBuffer();
			assert.ok(res.status === 502 || res.status === 503, `got ${res.status}`);
			seen.add(res.status);
		}
		assert.equal(seen.size, 2, "both statuses drawn");
	});

	test("errorRate 0.5 gives a mix", async () => {
		gis.faults.set({ errorRate: 0.5, errorStatuses: [500] });
		const statuses: number[] = [];
		for (let i = 0; i < 40; i++) {
			const res = await query();
			await res.arrayBuffer();
			statuses.push(res.status);
		}
		assert.ok(statuses.includes(500) && statuses.includes(200));
	});

	test("rateLimit: past the limit, 429 with Retry-After, per client", async () => {
		gis.faults.set({ rateLimit: { limit: 3, windowMs: 60_000 } });
		for (let i = 0; i < 3; i++) assert.equal((await query("203.0.113.7")).status, 200);
		const limited = await query("203.0.113.7");
		assert.equal(limited.status, 429);
		const retryAfter = Number(limited.headers.get("retry-after"));
		assert.ok(
			Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60,
			`Retry-After ${retryAfter}`,
		);
		assert.equal((await query("203.0.113.8")).status, 200, "another client has its own window");

		gis.faults.set({ rateLimit: { limit: 1, windowMs: 60_000, retryAfterS: 17 } });
		const fixed = await query("203.0.113.7");
		assert.equal(fixed.status, 429);
		assert.equal(fixed.headers.get("retry-after"), "17");
	});

	test("a rate-limit window frees up once it slides past", async () => {
		gis.faults.set({ rateLimit: { limit: 2, windowMs: 300 } });
		assert.equal((await query("203.0.113.9")).status, 200);
		assert.equal((await query("203.0.113.9")).status, 200);
		assert.equal((await query("203.0.113.9")).status, 429);
		await waitFor(
			async () => (await query("203.0.113.9")).status === 200,
			"the window to free a slot",
			5000,
			100,
		);
		assert.ok(gis.counters.maxInWindow(300, { client: "203.0.113.9", status: 200 }) <= 2);
	});

	test("malformedRate 1.0: 200 answers whose body is not JSON", async () => {
		gis.faults.set({ malformedRate: 1 });
		for (let i = 0; i < 10; i++) {
			const res = await query();
			assert.equal(res.status, 200);
			const body = await res.text();
			assert.throws(() => JSON.parse(body), SyntaxError, `body ${JSON.stringify(body.slice(0, 60))}`);
		}
	});

	test("latency: the answer waits (request still pending, then answered)", async () => {
		gis.faults.set({ latency: { minMs: 700, maxMs: 700 } });
		let settled = false;
		const pending = query("203.0.113.20").then(async (r) => {
			settled = true;
			return r.status;
		});
		await waitFor(
			() => gis.counters.total({ client: "203.0.113.20" }) === 1,
			"the request to arrive",
			5000,
			10,
		);
		assert.equal(settled, false, "no answer yet while the injected latency runs");
		assert.equal(gis.counters.records({ client: "203.0.113.20" })[0]!.status, 0, "recorded as pending");
		assert.equal(await pending, 200);
		assert.equal(gis.counters.records({ client: "203.0.113.20" })[0]!.status, 200);
	});

	test("knobs change at run time over HTTP and invalid knobs are refused", async () => {
		const set = await fetch(`${gis.url}/__sandbox/faults`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ errorRate: 1, errorStatuses: [503] }),
		});
		assert.equal(set.status, 200);
		assert.equal((await set.json()).errorRate, 1);
		const res = await query();
		await res.arrayBuffer();
		assert.equal(res.status, 503);
		const bad = await fetch(`${gis.url}/__sandbox/faults`, {
			method: "POST",
			body: JSON.stringify({ errorRate: 3 }),
		});
		assert.equal(bad.status, 400);
		assert.match((await bad.json()).error, /errorRate/);
		const reset = await fetch(`${gis.url}/__sandbox/faults/reset`, { method: "POST" });
		assert.equal((await reset.json()).errorRate, 0);
		assert.equal((await query()).status, 200);
	});

	test("counters: totals per client and kind, max in a sliding window, on /__sandbox/stats", async () => {
		for (let i = 0; i < 4; i++) await (await query("203.0.113.30")).arrayBuffer();
		for (let i = 0; i < 2; i++) await (await query("203.0.113.31")).arrayBuffer();
		await (
			await fetch(`${gis.url}/nope`, { headers: { "x-sandbox-exit-ip": "203.0.113.31" } })
		).arrayBuffer();
		assert.equal(gis.counters.total({ client: "203.0.113.30" }), 4);
		assert.equal(gis.counters.total({ client: "203.0.113.31", kind: "query" }), 2);
		assert.equal(gis.counters.total({ kind: "other" }), 1);
		assert.equal(gis.counters.maxInWindow(60_000, { client: "203.0.113.30" }), 4);

		const stats = await (await fetch(`${gis.url}/__sandbox/stats?windowMs=60000`)).json();
		assert.equal(stats.total, 7, "control routes are not counted");
		assert.deepEqual(stats.byClient, { "203.0.113.30": 4, "203.0.113.31": 3 });
		assert.deepEqual(stats.byKind, { query: 6, other: 1 });
		assert.equal(stats.maxInWindow["203.0.113.30"], 4);
		const withRecords = await (await fetch(`${gis.url}/__sandbox/stats?records=1`)).json();
		assert.equal(withRecords.records.length, 7);
		await fetch(`${gis.url}/__sandbox/stats/reset`, { method: "POST" });
		assert.equal(gis.counters.total(), 0);
	});

	test("client identity: token, else exit IP, else remote address", async () => {
		await (await fetch(`${gis.url}/x`, { headers: { authorization: "Bearer k1" } })).arrayBuffer();
		await (
			await fetch(`${gis.url}/x`, { headers: { authorization: "raw-token", "x-sandbox-exit-ip": "1.2.3.4" } })
		).arrayBuffer();
		await (await fetch(`${gis.url}/x`)).arrayBuffer();
		assert.deepEqual(gis.counters.clients(), ["k1", "raw-token", "127.0.0.1"]);
	});

	test("in-process: sliding windows and seeded decisions", () => {
		assert.equal(maxInSlidingWindow([0, 10, 20, 1000, 1001, 1002, 1003], 100), 4);
		assert.equal(maxInSlidingWindow([], 100), 0);
		const c = new RequestCounters();
		for (const t of [0, 50, 99, 100, 150, 400]) c.record("a", "k", t);
		c.record("b", "k", 60);
		assert.equal(c.maxInWindow(100, { client: "a" }), 3);
		assert.equal(c.maxInWindow(100), 4);
		assert.equal(c.countSince(100, { client: "a" }, 420), 1);
		const capped = new RequestCounters(10);
		for (let t = 0; t < 25; t++) capped.record("a", "k", t);
		assert.ok(capped.total() <= 10, "the log is bounded");
		assert.equal(capped.records().at(-1)!.t, 24, "newest records are kept");

		const seq = (seed: number) => {
			const f = new FaultInjector(
				{ errorRate: 0.3, malformedRate: 0.2, latency: { minMs: 0, maxMs: 50 } },
				seed,
			);
			return Array.from({ length: 50 }, () => f.decide("c", 0));
		};
		assert.deepEqual(seq(42), seq(42), "same seed, same faults");
		assert.notDeepEqual(seq(42), seq(43));
		assert.throws(() => new FaultInjector({ latency: { minMs: 10, maxMs: 5 } }), /latency/);
		assert.throws(() => new FaultInjector({ errorStatuses: [200] }), /errorStatuses/);

		const rng = new Rng(1);
		for (const body of ['{"a":1}', "[]", JSON.stringify({ features: [1, 2, 3], x: "y".repeat(100) })]) {
			for (let i = 0; i < 20; i++) assert.throws(() => JSON.parse(malformBody(body, rng)));
		}
	});
});
