/**
 * The store's contract suite, run unchanged against NeDB (embedded) and MongoDB protocol (FerretDB).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import type moleculer from "moleculer";
import { generateWorld } from "../../sandbox/generator.ts";
import { propertyInputHash } from "../../src/domain/enrichment-input.ts";
import type { PropertyDoc, PropertyEnrichment } from "../../src/domain/property.ts";
import type { MergeOutcome } from "../../src/store/merge-rules.ts";
import { type RunningServer, startFerretDb } from "../harness/servers.ts";
import {
	listingRecord,
	parcelRecord,
	type StoreBroker,
	startStoreBroker,
	withDatabase,
} from "../harness/store.ts";

interface Page {
	rows: Record<string, unknown>[];
	total: number;
	totalPages: number;
}

const world = generateWorld({
	seed: 7,
	zips: ["85031", "85301"],
	parcelsPerZip: 40,
	listingShare: 0.35,
	relistShare: 0.2,
});
const listed = world.listings.find((l) => (world.listingsByApn.get(l.apn)?.length ?? 0) === 1)!;
const listedParcel = world.byApn.get(listed.apn)!;
/** A second listed parcel, for the enrichment test. */
const otherListing = world.listings.find(
	(l) => l.apn !== listed.apn && (world.listingsByApn.get(l.apn)?.length ?? 0) === 1,
)!;
const other = { listing: otherListing, parcel: world.byApn.get(otherListing.apn)! };

function enrichmentFor(inputHash: string): PropertyEnrichment {
	return {
		description: "A test enrichment.",
		key_features: ["tested"],
		investment_analysis: {
			rental_estimate: 1500,
			cap_rate: 5,
			market_trend: "stable",
			recommendation: "hold",
		},
		quality_score: 0.5,
		processing: {
			llm_model: "test-model",
			tokens_used: 42,
			processing_time_ms: 7,
			source: "llm",
			inputHash,
			enrichedAt: "2026-03-10T00:00:00.000Z",
		},
	};
}

let ferret: RunningServer | null = null;
let dbSerial = 0;

before(async () => {
	ferret = await startFerretDb();
});
after(async () => {
	await ferret?.stop();
});

for (const backend of ["nedb", "mongo"] as const) {
	describe(`store contract (${backend})`, () => {
		let store: StoreBroker;
		let broker: moleculer.ServiceBroker;
		const merge = (params: object) => broker.call<MergeOutcome, object>("properties.merge", params);
		const setEnrichment = (key: string, enrichment: PropertyEnrichment, expectedInputHash: string) =>
			broker.call<{ key: string; status: string }, object>("properties.setEnrichment", {
				key,
				enrichment,
				expectedInputHash,
			});

		before(async () => {
			store = await startStoreBroker(
				backend === "mongo" ? withDatabase(ferret!.url, `contract${dbSerial++}`) : undefined,
			);
			broker = store.broker;
		});
		after(async () => {
			await store.stop();
		});

		test("raw records: created, recognized unchanged by hash, updated on new content", async () => {
			const payload = { APN: "10306005", "weird.key": 1, $odd: true };
			const a = await broker.call<{ status: string }, object>("raw.upsertRaw", {
				source: "maricopa-api",
				sourceId: "10306005",
				payload,
			});
			assert.equal(a.status, "created");
			const b = await broker.call<{ status: string }, object>("raw.upsertRaw", {
				source: "maricopa-api",
				sourceId: "10306005",
				payload: { $odd: true, "weird.key": 1, APN: "10306005" },
			});
			assert.equal(b.status, "unchanged");
			const c = await broker.call<{ status: string }, object>("raw.upsertRaw", {
				source: "maricopa-api",
				sourceId: "10306005",
				payload: { ...payload, Owner: "GARCIA JOSE" },
			});
			assert.equal(c.status, "updated");
			const rec = await broker.call<{ payload: unknown; revisions: number }, object>("raw.record", {
				source: "maricopa-api",
				sourceId: "10306005",
			});
			assert.deepEqual(rec.payload, { ...payload, Owner: "GARCIA JOSE" });
			assert.equal(rec.revisions, 1);
			assert.equal(await broker.call("raw.count", {}), 1);
		});

		test("a record failing its schema is rejected with the reason, counted, and not stored", async () => {
			const before = await broker.call<{ properties: number }>("properties.stats");
			await assert.rejects(
				merge({
					source: "maricopa",
					sourceId: "x",
					record: { apn: "not-an-apn", address: { street: "1 N 1ST ST" } },
				}),
				(err: Error & { type?: string }) => err.name === "ValidationError" && /apn/.test(err.message),
			);
			await assert.rejects(
				merge({
					source: "mls",
					sourceId: "1",
					record: { mlsId: "1", address: { street: "9 W ELM ST", zip: "85031" }, price: -5 },
				}),
				/price/,
			);
			// No listing lost: one whose address gives no key is stored unmatched, with the reason.
			const unmatched = await merge({
				source: "mls",
				sourceId: "2",
				record: { mlsId: "2", address: { street: "W ELM ST", zip: "85008" } },
			});
			assert.equal(unmatched.key, "mls:2");
			assert.equal(unmatched.status, "new");
			const stored = await broker.call<
				{ match: { method: string; confidence: number; reason: string } },
				object
			>("properties.get", { key: "mls:2" });
			assert.equal(stored.match.method, "unmatched");
			assert.equal(stored.match.confidence, 0);
			assert.match(stored.match.reason, /house number/);
			const after = await broker.call<{
				properties: number;
				unmatched: number;
				rejected: Record<string, number>;
			}>("properties.stats");
			assert.equal(after.properties, before.properties + 1);
			assert.equal(after.unmatched, 1);
			assert.equal(after.rejected["properties.maricopa.invalid"], 1);
			assert.equal(after.rejected["properties.mls.invalid"], 1);
			assert.equal(after.rejected["properties.mls.unjoinable"], undefined);
		});

		test("listing first, then its parcel: one property keyed by APN holding both sources", async () => {
			const l = await merge({
				source: "mls",
				sourceId: listed.mlsId,
				record: listingRecord(listed),
				collectedAt: "2026-03-01T10:00:00Z",
			});
			assert.equal(l.status, "new");
			assert.match(l.key, /^addr:/);
			const p = await merge({
				source: "maricopa",
				sourceId: listedParcel.apn,
				record: parcelRecord(listedParcel),
				collectedAt: "2026-03-01T11:00:00Z",
			});
			assert.equal(p.key, listedParcel.apn);
			assert.deepEqual(p.absorbed, [l.key]);
			assert.equal(await broker.call("properties.get", { key: l.key }), null, "no orphan twin left behind");
			const prop = await broker.call<Record<string, unknown>, object>("properties.byApn", {
				apn: listedParcel.apnDisplay,
			});
			assert.equal(prop.key, listedParcel.apn);
			assert.deepEqual((prop.sources as { source: string }[]).map((s) => s.source).sort(), [
				"maricopa",
				"mls",
			]);
			assert.equal(prop.price, listed.price, "MLS wins price");
			assert.equal(prop.livableSpace, listedParcel.residential!.livableSpace, "assessor wins parcel facts");
			assert.equal(prop.street, listedParcel.situsAddress.replace(" UNIT ", " #"));
			assert.equal(prop.beds, listed.beds);
		});

		test("re-merging the same records changes nothing", async () => {
			const a = await merge({
				source: "mls",
				sourceId: listed.mlsId,
				record: listingRecord(listed),
				collectedAt: "2026-03-02T10:00:00Z",
			});
			const b = await merge({
				source: "maricopa",
				sourceId: listedParcel.apn,
				record: parcelRecord(listedParcel),
			});
			assert.equal(a.status, "unchanged");
			assert.equal(b.status, "unchanged");
			assert.equal(a.key, listedParcel.apn);
		});

		test("a price change and a status change are appended to history with source and time", async () => {
			const changed = { ...listingRecord(listed), price: listed.price - 5000, status: "Pending" };
			const out = await merge({
				source: "mls",
				sourceId: listed.mlsId,
				record: changed,
				collectedAt: "2026-03-05T09:00:00Z",
			});
			assert.equal(out.status, "updated");
			const { history } = await broker.call<{ history: Record<string, unknown>[] }, object>(
				"properties.history",
				{
					key: listedParcel.apnDisplay,
				},
			);
			const price = history.filter((h) => h.field === "price");
			assert.deepEqual(price.at(-1), {
				field: "price",
				from: listed.price,
				to: listed.price - 5000,
				source: "mls",
				sourceId: listed.mlsId,
				at: "2026-03-05T09:00:00Z",
			});
			assert.equal(history.filter((h) => h.field === "status").at(-1)?.to, "Pending");
			assert.ok(history.some((h) => h.field === "owner" && h.to === listedParcel.owner.name));
		});

		test("an enrichment is stored beside the facts, refused once the facts moved on, and never loses a merge", async () => {
			const parcel = other.parcel;
			await merge({ source: "maricopa", sourceId: parcel.apn, record: parcelRecord(parcel) });
			const before = await broker.call<PropertyDoc, object>("properties.get", {
				key: parcel.apn,
				history: true,
			});
			const hash = propertyInputHash(before, "test-model");
			const stored = await setEnrichment(parcel.apn, enrichmentFor(hash), hash);
			assert.deepEqual(stored, { key: parcel.apn, status: "stored" });
			const after = await broker.call<PropertyDoc, object>("properties.get", {
				key: parcel.apn,
				history: true,
			});
			assert.deepEqual(after.enrichment, enrichmentFor(hash));
			assert.equal(after.version, before.version + 1);
			assert.equal(after.changedAt, before.changedAt, "an enrichment is not a change of the facts");
			assert.deepEqual(after.history, before.history);
			const listedRows = await broker.call<Page, object>("properties.find", {
				zip: parcel.zip,
				pageSize: 500,
			});
			assert.ok(
				listedRows.rows.some((r) => r.key === parcel.apn && r.enrichment),
				"lists carry it too",
			);

			assert.equal((await setEnrichment("99999999", enrichmentFor(hash), hash)).status, "missing");
			// The listing's price and rooms change the facts: the enrichment stays, but a write made
			// from the old facts is refused.
			await merge({ source: "mls", sourceId: other.listing.mlsId, record: listingRecord(other.listing) });
			const merged = await broker.call<PropertyDoc, object>("properties.get", { key: parcel.apn });
			assert.deepEqual(merged.enrichment, enrichmentFor(hash));
			assert.notEqual(propertyInputHash(merged, "test-model"), hash);
			assert.equal((await setEnrichment(parcel.apn, enrichmentFor(hash), hash)).status, "stale");
			await assert.rejects(
				setEnrichment(parcel.apn, { ...enrichmentFor(hash), quality_score: 2 }, hash),
				(err: Error) => err.name === "ValidationError" && /quality_score/.test(JSON.stringify(err)),
			);

			// Enrichment writes racing merges: every merge lands, and a write from old facts is refused.
			const fresh = propertyInputHash(merged, "test-model");
			const prices = [1, 2, 3, 4, 5].map((i) => other.listing.price + i * 1000);
			const outcomes = await Promise.all([
				...prices.map((price, i) =>
					merge({
						source: "mls",
						sourceId: other.listing.mlsId,
						record: { ...listingRecord(other.listing), price },
						collectedAt: `2026-04-0${i + 1}T00:00:00Z`,
					}),
				),
				...prices.map(() => setEnrichment(parcel.apn, enrichmentFor(fresh), fresh)),
			]);
			const final = await broker.call<PropertyDoc, object>("properties.get", {
				key: parcel.apn,
				history: true,
			});
			// Merges of one record apply in arrival order: each price was the price once (none lost).
			assert.ok(prices.includes(final.price as number), "the last merged record is there");
			const priceChanges = final.history.filter((h) => h.field === "price").map((h) => h.to);
			for (const price of prices) assert.ok(priceChanges.includes(price), `price ${price} in history`);
			const writes = outcomes.slice(prices.length) as { status: string }[];
			assert.ok(writes.every((w) => w.status === "stored" || w.status === "stale"));
			if (final.enrichment?.processing.inputHash === fresh) {
				assert.ok(writes.some((w) => w.status === "stored"));
			}
			assert.notEqual(propertyInputHash(final, "test-model"), fresh, "the facts did move on");
		});

		test("a whole world, listings and parcels interleaved concurrently: one property per parcel; twice = same counts", async () => {
			const inputs = [
				...world.parcels.map((p) => ({ source: "maricopa", sourceId: p.apn, record: parcelRecord(p) })),
				...world.listings.map((l) => ({ source: "mls", sourceId: l.mlsId, record: listingRecord(l) })),
			];
			// Deterministic shuffle so listings often arrive before their parcels.
			const order = inputs.map((x, i) => ({ x, k: (i * 7919) % inputs.length })).sort((a, b) => a.k - b.k);
			for (const round of [1, 2]) {
				const outs = await Promise.all(order.map(({ x }) => merge(x)));
				if (round === 2) assert.ok(outs.every((o) => o.status === "unchanged"));
				const stats = await broker.call<{ properties: number; addressOnly: number; unmatched: number }>(
					"properties.stats",
				);
				// Besides the parcels, only the unmatched listing an earlier test stored.
				assert.equal(stats.properties - stats.unmatched, world.parcels.length);
				assert.equal(stats.addressOnly - stats.unmatched, 0);
			}
			for (const l of world.listings) {
				const p = await broker.call<{ mlsIds: string[] } | null, object>("properties.get", { key: l.apn });
				assert.ok(p?.mlsIds.includes(l.mlsId), `listing ${l.mlsId} joined parcel ${l.apn}`);
			}
		});

		test("queries: by ZIP paged, by status, changed since", async () => {
			const zip = "85031";
			const expected = world.byZip.get(zip)!.length;
			const first = await broker.call<Page, object>("properties.find", { zip, page: 1, pageSize: 25 });
			assert.equal(first.total, expected);
			assert.equal(first.rows.length, 25);
			assert.equal(first.totalPages, Math.ceil(expected / 25));
			const last = await broker.call<Page, object>("properties.find", {
				zip,
				page: first.totalPages,
				pageSize: 25,
			});
			assert.equal(last.rows.length, expected - 25 * (first.totalPages - 1));
			assert.ok(!("contributions" in first.rows[0]!));
			// Another ZIP is another answer (not a cached copy of the first query).
			const other = await broker.call<Page, object>("properties.find", {
				zip: "85301",
				page: 1,
				pageSize: 25,
			});
			assert.equal(other.total, world.byZip.get("85301")!.length);
			assert.ok(other.rows.every((r) => (r as { zip?: string }).zip === "85301"));
			const pending = await broker.call<Page, object>("properties.find", {
				status: "Pending",
				pageSize: 500,
			});
			assert.ok(pending.rows.length > 0 && pending.rows.every((r) => r.status === "Pending"));
			const future = await broker.call<Page, object>("properties.find", {
				changedSince: "2999-01-01T00:00:00Z",
			});
			assert.equal(future.total, 0);
			const since = await broker.call<Page, object>("properties.find", {
				changedSince: "2000-01-01T00:00:00Z",
				pageSize: 10,
			});
			// The parcels, and the unmatched listing an earlier test stored.
			assert.equal(since.total, world.parcels.length + 1);
		});

		test("generic writes of moleculer-db are switched off", async () => {
			await assert.rejects(broker.call("properties.create", { key: "x" }), /not found|ServiceNotFound/i);
		});
	});
}

test("an embedded node with the NeDB store ends by itself once stopped (no timer left behind)", () => {
	const res = spawnSync(
		process.execPath,
		[resolve(import.meta.dirname, "../fixtures/start-stop-node.ts"), "store"],
		{ encoding: "utf8", timeout: 30_000, env: { PATH: process.env.PATH } },
	);
	assert.equal(res.signal, null, `still running after 30 s: ${res.stderr}`);
	assert.equal(res.status, 0, res.stderr);
	assert.match(res.stdout, /stopped/);
});
