/**
 * maricopa across real node processes over NATS + Redis, against the sandbox's Assessor API and GIS:
 * three collector nodes share one budget (checked with the sandbox's sliding-window counters), a 429's
 * Retry-After pauses every node, injected faults still leave every parcel stored exactly once, and a
 * revoked token stops the whole run with one clear error.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type moleculer from "moleculer";
import { type Sandbox, startSandbox } from "../../sandbox/index.ts";
import { clientBroker, type NodeProcess, spawnNode } from "../harness/cluster.ts";
import { type RunningServer, startFerretDb, startNats, startRedis } from "../harness/servers.ts";

const ZIPS = ["85031", "85033", "85008", "85301", "85379"];
const BUDGET = { points: 5, windowMs: 1000 };
const COLLECTORS = ["mc-1", "mc-2", "mc-3"];

interface CollectResult {
	zip: string;
	bulkSource: string;
	parcels: number;
	new: number;
	detailsFetched: number;
	failures: number;
	failed: { apn: string; reason: string }[];
	requestsByKind: { bulk: number; detail: number };
	requestsPerParcel: { bulk: number; detail: number; total: number };
}

describe("maricopa collectors in a cluster", () => {
	let nats: RunningServer;
	let redis: RunningServer;
	let mongo: RunningServer;
	let sb: Sandbox;
	let client: moleculer.ServiceBroker;
	const nodes: NodeProcess[] = [];
	const dataDir = mkdtempSync(join(tmpdir(), "saguaro-maricopa-"));

	before(async () => {
		[nats, redis, mongo, sb] = await Promise.all([
			startNats(),
			startRedis(),
			startFerretDb(),
			startSandbox({ world: { zips: ZIPS, parcelsPerZip: 36 } }),
		]);
		const base = {
			TRANSPORTER: nats.url,
			REDIS_URL: redis.url,
			API_PORT: "0",
			HEARTBEAT_INTERVAL_S: "1",
			HEARTBEAT_TIMEOUT_S: "10",
			ENABLE_METRICS: "false",
		};
		const maricopaEnv = {
			MARICOPA_BASE_URL: sb.env.MARICOPA_BASE_URL!,
			MARICOPA_TOKEN: sb.env.MARICOPA_TOKEN!,
			MARICOPA_GIS_URL: sb.env.MARICOPA_GIS_URL!,
			MARICOPA_RATE_PER_MIN: String(BUDGET.points),
			MARICOPA_GIS_RATE_PER_MIN: String(BUDGET.points),
			MARICOPA_RATE_WINDOW_S: String(BUDGET.windowMs / 1000),
			// The default slack (10 ms, clock skew only): a request leaves a window after the answer of
			// the request a budget before it, so send-to-arrival delays need no allowance.
			MARICOPA_BACKOFF_BASE_MS: "100",
			MARICOPA_BACKOFF_MAX_MS: "800",
			MARICOPA_MAX_ATTEMPTS: "8",
			MARICOPA_TIMEOUT_MS: "5000",
			MARICOPA_CONCURRENCY: "6",
			MARICOPA_BREAKER_MIN_REQUESTS: "30",
			MARICOPA_BREAKER_OPEN_MS: "1000",
		};
		nodes.push(
			spawnNode({
				nodeId: "store-1",
				env: { ...base, SERVICES: "store", MONGO_URI: mongo.url, DATA_DIR: dataDir },
			}),
		);
		for (const id of COLLECTORS) {
			nodes.push(spawnNode({ nodeId: id, env: { ...base, ...maricopaEnv, SERVICES: "maricopa" } }));
		}
		await Promise.all(nodes.map((n) => n.ready()));
		client = clientBroker(nats.url, "maricopa-test-client", { requestTimeout: 0 });
		await client.start();
		await client.waitForServices(["maricopa", "properties", "raw"], 30_000);
	});

	after(async () => {
		await client?.stop().catch(() => {});
		await Promise.all(nodes.map((n) => n.stop()));
		await Promise.all([nats?.stop(), redis?.stop(), mongo?.stop(), sb?.stop()]);
		rmSync(dataDir, { recursive: true, force: true });
	});

	const apiRecords = () => sb.maricopa.counters.records({ client: sb.config.maricopa.token });

	const collect = (nodeID: string, zip: string, force = false) =>
		client.call(
			"maricopa.collectZip",
			{ zip, force },
			{ nodeID, timeout: 300_000 },
		) as Promise<CollectResult>;

	/**
	 * Every parcel of the ZIP (ground truth) is in the store under its APN, with its ZIP. Properties
	 * are keyed by APN, so "stored" is "stored exactly once"; the collector's own counts must add up.
	 */
	async function assertStoredExactlyOnce(zip: string, result?: CollectResult & Record<string, unknown>) {
		const truth = (sb.world.byZip.get(zip) ?? []).map((p) => p.apn);
		for (const apn of truth) {
			const doc = (await client.call("properties.byApn", { apn })) as { apn: string; zip: string } | null;
			assert.ok(doc, `parcel ${apn} of ${zip} stored`);
			assert.equal(doc.apn, apn);
			assert.equal(doc.zip, zip);
		}
		if (result) {
			assert.equal(result.parcels, truth.length, `${zip}: every parcel listed`);
			const counted = Number(result.new) + Number(result.updated) + Number(result.unchanged);
			assert.equal(counted, truth.length, `${zip}: each parcel counted once`);
		}
	}

	test("three nodes collecting at once stay within one budget and use it", { timeout: 240_000 }, async () => {
		const started = Date.now();
		const results = await Promise.all(COLLECTORS.map((id, i) => collect(id, ZIPS[i]!)));
		const records = apiRecords().filter((r) => r.t >= started);
		const maxInWindow = sb.maricopa.counters.maxInWindow(BUDGET.windowMs, {
			client: sb.config.maricopa.token,
		});
		const times = records.map((r) => r.t).sort((a, b) => a - b);
		const spanMs = times.at(-1)! - times[0]!;
		const achievedPerWindow = ((times.length - 1) / spanMs) * BUDGET.windowMs;
		const perParcel = results.map((r) => r.requestsPerParcel);
		console.log(
			`budget ${BUDGET.points}/${BUDGET.windowMs} ms: ${records.length} API requests over ${spanMs} ms, ` +
				`max in any window ${maxInWindow}, achieved ${achievedPerWindow.toFixed(2)}/window ` +
				`(${((achievedPerWindow / BUDGET.points) * 100).toFixed(1)}% of the budget); ` +
				`GIS max in window ${sb.gis.counters.maxInWindow(BUDGET.windowMs)}; requests per parcel ${JSON.stringify(perParcel)}`,
		);
		assert.ok(
			maxInWindow <= BUDGET.points,
			`at most ${BUDGET.points} requests in any window, saw ${maxInWindow}`,
		);
		assert.ok(sb.gis.counters.maxInWindow(BUDGET.windowMs) <= BUDGET.points);
		for (const [i, r] of results.entries()) {
			assert.equal(r.bulkSource, "gis");
			assert.equal(r.failures, 0, JSON.stringify(r.failed));
			// The ZIP's count, and one page lists the whole ZIP (the layer's fields were checked at start).
			assert.equal(r.requestsByKind.bulk, 2, "a count and one GIS page");
			assert.deepEqual((r as { expect?: unknown }).expect, { items: 36, pages: 1 });
			await assertStoredExactlyOnce(ZIPS[i]!, r as CollectResult & Record<string, unknown>);
		}
		// Incremental: a second run finds facts unchanged and details fresh, and fetches nothing.
		const again = await collect(COLLECTORS[0]!, ZIPS[0]!);
		assert.equal(again.detailsFetched, 0);
		assert.equal(again.requestsByKind.detail, 0);
	});

	test("three nodes looking parcels up at once use the budget without exceeding it", {
		timeout: 240_000,
	}, async () => {
		const started = Date.now();
		// No store writes here: the budget alone paces the calls (12 in flight a node, 2 requests each).
		const apns = sb.world.parcels.slice(0, 36).map((p) => p.apn);
		await Promise.all(
			apns.map((apn, i) =>
				client.call(
					"maricopa.parcel",
					{ apn, store: false },
					{ nodeID: COLLECTORS[i % 3], timeout: 120_000 },
				),
			),
		);
		const times = apiRecords()
			.filter((r) => r.t >= started)
			.map((r) => r.t)
			.sort((a, b) => a - b);
		const spanMs = times.at(-1)! - times[0]!;
		const achieved = ((times.length - 1) / spanMs) * BUDGET.windowMs;
		const maxInWindow = sb.maricopa.counters.maxInWindow(BUDGET.windowMs, {
			client: sb.config.maricopa.token,
		});
		console.log(
			`parcel lookups: ${times.length} requests over ${spanMs} ms, max in any window ${maxInWindow}/${BUDGET.points}, ` +
				`achieved ${achieved.toFixed(2)}/window (${((achieved / BUDGET.points) * 100).toFixed(1)}% of the budget)`,
		);
		assert.ok(maxInWindow <= BUDGET.points, `at most ${BUDGET.points} in any window, saw ${maxInWindow}`);
		assert.ok(achieved >= BUDGET.points * 0.5, `budget used: ${achieved.toFixed(2)} of ${BUDGET.points}`);
	});

	test("with 5xx, latency and malformed bodies every parcel is stored exactly once", {
		timeout: 240_000,
	}, async () => {
		const knobs = { errorRate: 0.15, malformedRate: 0.1, latency: { minMs: 0, maxMs: 60 } };
		sb.maricopa.faults.set(knobs);
		sb.gis.faults.set({ ...knobs, errorRate: 0.3 });
		try {
			const zip = ZIPS[3]!;
			const first = await collect(COLLECTORS[1]!, zip);
			await assertStoredExactlyOnce(zip, first as CollectResult & Record<string, unknown>);
			const statuses = sb.maricopa.counters.stats().byStatus;
			assert.equal(first.failures, 0, JSON.stringify(first.failed));
			assert.ok(
				Object.keys(statuses).some((s) => s.startsWith("5")),
				"faults were injected",
			);
			// A forced re-run over the same faults writes the same parcels again, never twice.
			const second = await collect(COLLECTORS[2]!, zip, true);
			await assertStoredExactlyOnce(zip, second as CollectResult & Record<string, unknown>);
			assert.equal(second.new, 0, "a re-run creates nothing new");
			const residential = sb.world.byZip.get(zip)!.filter((p) => p.propertyType === "RESIDENTIAL");
			const sample = (await client.call("properties.byApn", { apn: residential[0]!.apn })) as {
				owner: unknown;
				valuations: unknown[];
			};
			assert.ok(sample.owner, "details (owner) merged");
		} finally {
			sb.maricopa.faults.reset();
			sb.gis.faults.reset();
		}
	});

	test("a 429's Retry-After pauses every node", { timeout: 240_000 }, async () => {
		sb.maricopa.faults.set({ rateLimit: { limit: 3, windowMs: 1000, retryAfterS: 1 } });
		try {
			const started = Date.now();
			// Each node looks up six parcels at once (detail + address sub-resource: 12 requests a node).
			const apns = sb.world.parcels.slice(0, 18).map((p) => p.apn);
			const found = await Promise.all(
				apns.map(
					(apn, i) =>
						client.call(
							"maricopa.parcel",
							{ apn, store: false },
							{ nodeID: COLLECTORS[i % COLLECTORS.length], timeout: 120_000 },
						) as Promise<{ found: boolean }>,
				),
			);
			assert.ok(found.every((f) => f.found));
			const records = apiRecords().filter((r) => r.t >= started);
			const limited = records.filter((r) => r.status === 429);
			assert.ok(limited.length > 0, "the sandbox answered 429");
			// Requests already on the wire when the 429 left may still land; after that, silence.
			for (const r429 of limited) {
				const inside = records.filter((r) => r.t > r429.t + 40 && r.t < r429.t + 900);
				assert.equal(inside.length, 0, `no request inside the pause after the 429 at ${r429.t}`);
			}
			console.log(`Retry-After: ${limited.length} answers 429 of ${records.length} requests, all honoured`);
		} finally {
			sb.maricopa.faults.reset();
		}
	});

	test("a revoked token stops the whole run with one clear error", { timeout: 240_000 }, async () => {
		const token = sb.config.maricopa.token;
		const started = Date.now();
		const runs = COLLECTORS.map((id, i) =>
			collect(id, ZIPS[i]!, true).then(
				() => null,
				(err: Error & { code?: number; type?: string }) => err,
			),
		);
		// Let the run get going, then revoke the token.
		const waitedUntil = Date.now() + 60_000;
		while (apiRecords().filter((r) => r.t >= started && r.kind === "parcel").length < 10) {
			if (Date.now() > waitedUntil) {
				const tails = nodes.map((n) => `--- ${n.nodeId}\n${n.output().slice(-3000)}`).join("\n");
				assert.fail(`the run made no parcel requests in 60 s; nodes said:\n${tails}`);
			}
			await new Promise((r) => setTimeout(r, 20));
		}
		sb.maricopa.revokeToken(token);
		let timer: NodeJS.Timeout | undefined;
		const errors = await Promise.race([
			Promise.all(runs),
			new Promise<never>((_, reject) => {
				timer = setTimeout(() => {
					const tails = nodes.map((n) => `--- ${n.nodeId}\n${n.output().slice(-4000)}`).join("\n");
					reject(
						new Error(`the runs did not all stop within 120 s of the revocation; nodes said:\n${tails}`),
					);
				}, 120_000);
			}),
		]).finally(() => clearTimeout(timer));
		try {
			for (const err of errors) {
				assert.ok(err, "every collector stopped");
				assert.equal(err.type, "MARICOPA_STOPPED");
				assert.match(err.message, /refused the token/);
				assert.doesNotMatch(err.message, new RegExp(token));
			}
			// What was already on its way when the first refusal came back is refused too: at most what
			// the budget lets be in flight at once (the sliding budget may send a window's worth together).
			const refused = apiRecords().filter((r) => r.t >= started && r.status === 500);
			assert.ok(refused.length >= 1 && refused.length <= BUDGET.points, `refused answers: ${refused.length}`);
			const lastRefused = Math.max(...refused.map((r) => r.t));
			const afterStop = apiRecords().filter((r) => r.t > lastRefused + 50);
			assert.equal(afterStop.length, 0, "no request after the stop");
			const status = (await client.call("maricopa.status", {}, { nodeID: COLLECTORS[2] })) as {
				host: string;
				fatal: { reason: string } | null;
			}[];
			assert.match(status.find((s) => s.host === "maricopa-api")?.fatal?.reason ?? "", /Unauthorized/);
			// A later call anywhere is refused at once, without a request.
			const before = apiRecords().length;
			await assert.rejects(
				client.call("maricopa.parcel", { apn: sb.world.parcels[0]!.apn }, { nodeID: COLLECTORS[1] }),
				/refused the token/,
			);
			assert.equal(apiRecords().length, before);
		} finally {
			sb.maricopa.addToken(token);
			await client.call("maricopa.resume", {}, { nodeID: COLLECTORS[0] });
		}
		const parcel = (await client.call("maricopa.parcel", {
			apn: sb.world.parcels[0]!.apn,
			store: false,
		})) as {
			found: boolean;
		};
		assert.equal(parcel.found, true);
	});
});
