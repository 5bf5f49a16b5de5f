/**
 * The locks a candidate join takes (issue 12): FerretDB's conditional replace is not atomic, so a
 * listing joining a parcel it does not share an address key with must hold that parcel's writer
 * lock keys (its APN among them), and a listing moving out of a property must hold that one's too.
 * The store on an in-memory NeDB datastore; the locks are the real in-process ones, recorded.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import Datastore from "@seald-io/nedb";
import { generateWorld } from "../../sandbox/generator.ts";
import type { PropertyDoc } from "../../src/domain/property.ts";
import type { Contribution } from "../../src/domain/property-fields.ts";
import { NedbCollection, type Datastore as NedbDatastore } from "../../src/store/collection.ts";
import { LocalKeyLocks } from "../../src/store/key-lock.ts";
import { PropertyStore } from "../../src/store/property-store.ts";
import { listingRecord, parcelRecord } from "../harness/store.ts";

// @seald-io/nedb (moleculer-db's NeDB) is CommonJS; its typings describe no constructor.
const InMemory = Datastore as unknown as new (options: { inMemoryOnly: boolean }) => NedbDatastore;

class RecordingLocks extends LocalKeyLocks {
	readonly calls: string[][] = [];
	override withLocks<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
		this.calls.push([...keys].sort());
		return super.withLocks(keys, fn);
	}
}

test("a candidate join holds the parcel's lock keys; a listing leaving a property holds that one's", async () => {
	const world = generateWorld({ seed: 12, zips: ["85031"], parcelsPerZip: 60, listingShare: 0.5 });
	const listing = world.listings.find((l) => world.listingsByApn.get(l.apn)!.length === 1)!;
	const parcel = world.byApn.get(listing.apn)!;
	const locks = new RecordingLocks();
	const store = new PropertyStore(new NedbCollection<PropertyDoc>(new InMemory({ inMemoryOnly: true })), {
		locks,
	});
	await store.ensureIndexes();
	const p: Contribution = {
		source: "maricopa",
		sourceId: parcel.apn,
		collectedAt: "2026-03-01T00:00:00.000Z",
		record: parcelRecord(parcel),
	};
	const l: Contribution = {
		source: "mls",
		sourceId: listing.mlsId,
		collectedAt: "2026-03-02T00:00:00.000Z",
		record: { ...listingRecord(listing), address: { ...listingRecord(listing).address, zip: "85032" } },
	};
	await store.merge(p);
	locks.calls.length = 0;
	const out = await store.merge(l);
	assert.equal(out.key, parcel.apn);
	const last = locks.calls.at(-1)!;
	assert.ok(last.includes(`apn:${parcel.apn}`), `the join held ${JSON.stringify(last)}`);
	assert.ok(last.includes(`maricopa:${parcel.apn}`));

	// The listing re-collected with its ZIP put right: same parcel, exact now, under the same locks.
	locks.calls.length = 0;
	const fixed = { ...l, record: listingRecord(listing), collectedAt: "2026-03-03T00:00:00.000Z" };
	assert.equal((await store.merge(fixed)).key, parcel.apn);
	assert.ok(locks.calls.at(-1)!.includes(`apn:${parcel.apn}`));
	assert.equal((await store.get(parcel.apn))!.match?.method, "address");
});
