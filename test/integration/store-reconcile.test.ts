/**
 * Entity resolution that heals itself (issue 12), on NeDB (embedded) and the MongoDB protocol
 * (FerretDB): a twin is folded when a later record makes it match; a wrong merge is split when the
 * right parcel arrives; a listing written with a neighbouring ZIP joins its parcel with a recorded
 * confidence; and two brokers merging and reconciling the same ZIPs at once leave each parcel once.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type moleculer from "moleculer";
import { generateWorld, type Listing, type Parcel } from "../../sandbox/generator.ts";
import type { IngestResult } from "../../src/contracts/store.ts";
import type { MatchInfo, MatchLogEntry } from "../../src/domain/property.ts";
import type { AssessorParcelRecord, MlsListingRecord } from "../../src/domain/records.ts";
import type { MergeOutcome } from "../../src/store/merge-rules.ts";
import { type RunningServer, startFerretDb } from "../harness/servers.ts";
import {
	listingRecord,
	parcelRecord,
	type StoreBroker,
	startStoreBroker,
	withDatabase,
} from "../harness/store.ts";

interface Prop {
	key: string;
	apn: string | null;
	zip: string | null;
	mlsIds: string[];
	price: number | null;
	match?: MatchInfo;
	matchLog?: MatchLogEntry[];
	history?: { field: string; from: unknown; to: unknown; sourceId: string }[];
}

const world = generateWorld({ seed: 12, zips: ["85031"], parcelsPerZip: 120, listingShare: 0.4 });
const houses = world.parcels.filter(
	(p) =>
		p.propertyType === "RESIDENTIAL" && !p.isCondo && (world.listingsByApn.get(p.apn)?.length ?? 0) === 1,
);
/** A listed house and its one listing. */
const listed = (i: number): { parcel: Parcel; listing: Listing } => {
	const parcel = houses[i]!;
	return { parcel, listing: world.listingsByApn.get(parcel.apn)![0]! };
};
/** A ZIP beside 85031 that is no parcel's in this world. */
const NEIGHBOUR = "85032";

const AT = "2026-03-01T10:00:00.000Z";
const parcelIn = (record: AssessorParcelRecord, at = AT) => ({
	source: "maricopa",
	sourceId: record.apn,
	record,
	collectedAt: at,
});
const listingIn = (record: MlsListingRecord, at = "2026-03-02T10:00:00.000Z") => ({
	source: "mls",
	sourceId: record.mlsId,
	record,
	collectedAt: at,
});
const withZip = (r: MlsListingRecord, zip: string): MlsListingRecord => ({
	...r,
	address: { ...r.address, zip },
});

let ferret: RunningServer | null = null;
let dbSerial = 0;

before(async () => {
	ferret = await startFerretDb();
});
after(async () => {
	await ferret?.stop();
});

/** Every property, read page by page by key. */
async function allProperties(broker: moleculer.ServiceBroker): Promise<Prop[]> {
	const out: Prop[] = [];
	let afterKey = "";
	for (;;) {
		const page = await broker.call<{ rows: Prop[]; nextKey: string | null }, object>("properties.find", {
			afterKey,
			pageSize: 500,
		});
		out.push(...page.rows);
		if (!page.nextKey) return out;
		afterKey = page.nextKey;
	}
}

for (const backend of ["nedb", "mongo"] as const) {
	describe(`entity resolution heals itself (${backend})`, () => {
		const started: StoreBroker[] = [];
		const start = async (db?: string, nodeId?: string) => {
			const uri = backend === "mongo" ? withDatabase(ferret!.url, db ?? `heal${dbSerial++}`) : undefined;
			const s = await startStoreBroker(uri, nodeId);
			started.push(s);
			return s.broker;
		};
		after(async () => {
			for (const s of started) await s.stop();
		});
		const merge = (broker: moleculer.ServiceBroker, params: object) =>
			broker.call<MergeOutcome, object>("properties.merge", params);
		const get = (broker: moleculer.ServiceBroker, key: string) =>
			broker.call<Prop | null, object>("properties.get", { key, history: true });

		test("a listing written with a neighbouring ZIP joins its parcel, with the confidence recorded", async () => {
			const broker = await start();
			const { parcel, listing } = listed(0);
			await merge(broker, parcelIn(parcelRecord(parcel)));
			const out = await merge(broker, listingIn(withZip(listingRecord(listing), NEIGHBOUR)));
			assert.equal(out.key, parcel.apn);
			const p = (await get(broker, parcel.apn))!;
			assert.deepEqual(p.mlsIds, [listing.mlsId]);
			assert.equal(p.zip, parcel.zip, "the parcel's ZIP stays");
			assert.equal(p.match?.method, "candidate");
			assert.equal(p.match?.confidence, 0.9);
			assert.equal(p.match?.reason, "neighbouring-zip");
			assert.equal((await allProperties(broker)).length, 1, "no twin under the listing's address");

			// The same street line in an unrelated ZIP is no candidate: the listing waits for its own parcel.
			const { parcel: p2, listing: l2 } = listed(1);
			await merge(broker, parcelIn(parcelRecord(p2)));
			const far = await merge(broker, listingIn(withZip(listingRecord(l2), "85999")));
			assert.notEqual(far.key, p2.apn);
			assert.match(far.key, /^addr:.*\|85999$/);
		});

		test("a twin is folded when a later record makes it match: the parcel arrives after its listing", async () => {
			const broker = await start();
			// Listing first, written with a neighbouring ZIP: an address-keyed property of its own.
			const one = listed(2);
			const first = await merge(broker, listingIn(withZip(listingRecord(one.listing), NEIGHBOUR)));
			assert.match(first.key, /^addr:/);
			// Its parcel by a single merge, and another pair's parcel through the batched path.
			const two = listed(3);
			await merge(broker, listingIn(withZip(listingRecord(two.listing), NEIGHBOUR)));
			assert.equal((await allProperties(broker)).length, 2);
			await merge(broker, parcelIn(parcelRecord(one.parcel)));
			const batch = await broker.call<IngestResult, object>("properties.ingest", {
				records: [parcelIn(parcelRecord(two.parcel))],
			});
			assert.equal(batch.outcomes[0]!.status, "new");

			const all = await allProperties(broker);
			assert.deepEqual(all.map((p) => p.key).sort(), [one.parcel.apn, two.parcel.apn].sort(), "twins folded");
			for (const { parcel, listing } of [one, two]) {
				const p = (await get(broker, parcel.apn))!;
				assert.deepEqual(p.mlsIds, [listing.mlsId]);
				assert.equal(p.price, listing.price);
				assert.equal(p.match?.reason, "neighbouring-zip");
				const joined = p.matchLog?.find((e) => e.event === "joined");
				assert.ok(joined, "the fold is logged");
				assert.equal(joined.listing, `mls:${listing.mlsId}`);
				assert.match(joined.other ?? "", /^addr:.*\|85032$/);
				// The listing's own history came with it.
				assert.ok(p.history?.some((h) => h.field === "price" && h.sourceId === listing.mlsId));
			}
			// Reconciling the ZIP finds nothing more to do.
			const r = await broker.call<{ moved: number }, object>("properties.reconcile", { zip: "85031" });
			assert.equal(r.moved, 0);
		});

		test("a wrong merge is split when the right parcel arrives (a lot split sharing one address)", async () => {
			const broker = await start();
			// Two halves of a split lot, one Assessor address; the listing is of the second half.
			const a = listed(4);
			const b = listed(5);
			const bRecord: AssessorParcelRecord = {
				...parcelRecord(b.parcel),
				address: { street: a.parcel.situsAddress, city: a.parcel.city, state: "AZ", zip: a.parcel.zip },
			};
			const listing: MlsListingRecord = {
				...listingRecord(b.listing),
				address: { street: a.parcel.situsAddress, city: a.listing.city, state: "AZ", zip: a.parcel.zip },
			};
			assert.notEqual(b.parcel.residential!.livableSpace, a.parcel.residential!.livableSpace);

			await merge(broker, parcelIn(parcelRecord(a.parcel)));
			const joined = await merge(broker, listingIn(listing));
			assert.equal(joined.key, a.parcel.apn, "the only parcel at the address: joined to it");

			await merge(broker, parcelIn(bRecord));
			const pa = (await get(broker, a.parcel.apn))!;
			const pb = (await get(broker, b.parcel.apn))!;
			assert.deepEqual(pa.mlsIds, [], "split off the wrong parcel");
			assert.equal(pa.price, null);
			assert.ok(
				pa.history?.some((h) => h.field === "price" && h.to === null && h.sourceId === b.listing.mlsId),
				"the parcel's history says the listing left",
			);
			assert.deepEqual(
				pa.matchLog?.map((e) => [e.event, e.listing, e.other]),
				[["left", `mls:${b.listing.mlsId}`, b.parcel.apn]],
			);
			assert.deepEqual(pb.mlsIds, [b.listing.mlsId], "on the right parcel");
			assert.equal(pb.match?.method, "candidate");
			assert.ok((pb.match?.confidence ?? 0) >= 0.75 && (pb.match?.confidence ?? 1) < 1);
			assert.match(pb.match?.reason ?? "", /told apart by facts/);
			assert.ok(pb.history?.some((h) => h.field === "price" && h.sourceId === b.listing.mlsId));
			assert.equal((await allProperties(broker)).length, 2);

			// A listing the facts cannot place (none given) is stored unmatched with the reason, not guessed.
			const vague: MlsListingRecord = {
				...listing,
				mlsId: "6999001",
				sqft: null,
				yearBuilt: null,
				lotSqft: null,
			};
			const out = await merge(broker, listingIn(vague));
			assert.equal(out.key, "mls:6999001");
			const u = (await get(broker, "mls:6999001"))!;
			assert.equal(u.match?.method, "unmatched");
			assert.match(u.match?.reason ?? "", /ambiguous: 2 parcels share the address/);
		});

		if (backend === "mongo") {
			test("two brokers merging and reconciling the same ZIPs at once leave each parcel once", async () => {
				const hard = generateWorld({
					seed: 121,
					zips: ["85031", "85301"],
					parcelsPerZip: 60,
					listingShare: 0.6,
					relistShare: 0.2,
					sharedSitusShare: 0.15,
					neighbouringZipShare: 0.3,
				});
				assert.ok(hard.listings.some((l) => l.addressKind === "neighbouring-zip"));
				assert.ok(hard.listings.some((l) => l.addressKind === "shared-situs-lot-split"));
				const db = `heal-race${dbSerial++}`;
				const [x, y] = [await start(db, "heal-a"), await start(db, "heal-b")];
				const records = [
					...hard.parcels.map((p) => parcelIn(parcelRecord(p))),
					...hard.listings.map((l) => listingIn(listingRecord(l))),
				];
				// Opposite orders (listings first on one), several at a time, reconciliations in between.
				const run = async (broker: moleculer.ServiceBroker, list: typeof records, reconcileEvery: number) => {
					let next = 0;
					let done = 0;
					await Promise.all(
						Array.from({ length: 4 }, async () => {
							while (next < list.length) {
								const r = list[next++]!;
								await merge(broker, r);
								if (++done % reconcileEvery === 0)
									await broker.call("properties.reconcile", { zips: hard.options.zips });
							}
						}),
					);
				};
				await Promise.all([
					run(x, records, 60),
					run(y, [...records].reverse(), 45),
					x.call("properties.reconcile", { zips: hard.options.zips }),
					y.call("properties.reconcile", { zips: hard.options.zips }),
				]);
				await Promise.all([
					x.call("properties.reconcile", { zips: hard.options.zips }),
					y.call("properties.reconcile", { zips: hard.options.zips }),
				]);

				const all = await allProperties(x);
				const byApn = new Map<string, number>();
				for (const p of all) if (p.apn) byApn.set(p.apn, (byApn.get(p.apn) ?? 0) + 1);
				assert.equal(byApn.size, hard.parcels.length, "every parcel stored");
				assert.ok(
					[...byApn.values()].every((n) => n === 1),
					"each parcel once",
				);
				const holders = new Map<string, Prop[]>();
				for (const p of all) for (const id of p.mlsIds) holders.set(id, [...(holders.get(id) ?? []), p]);
				assert.equal(holders.size, hard.listings.length, "no listing lost");
				let unmatched = 0;
				for (const l of hard.listings) {
					const [p, ...more] = holders.get(l.mlsId)!;
					assert.equal(more.length, 0, `listing ${l.mlsId} stored once`);
					if (p!.apn) assert.equal(p!.apn, l.apn, `listing ${l.mlsId} (${l.addressKind}) on its own parcel`);
					else {
						assert.equal(p!.key, `mls:${l.mlsId}`, `listing ${l.mlsId} (${l.addressKind}) no twin`);
						assert.equal(p!.match?.method, "unmatched");
						unmatched++;
					}
				}
				// Only listings no address can place (condos whose Assessor address has no unit) stay unmatched.
				assert.ok(unmatched <= hard.listings.filter((l) => l.addressKind === "shared-situs-condo").length);
			});
		}
	});
}
