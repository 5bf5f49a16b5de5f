/**
 * The sandbox world generator: deterministic, realistic where clients care (APNs, situs addresses,
 * cities, property types, listings), large enough (10,000 parcels), and with MLS addresses that are
 * variants of the situs address yet join to their parcel through the project's address key.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { World } from "../../sandbox/generator.ts";
import { formatApn, generateWorld, normalizeApn, truthSnapshot } from "../../sandbox/generator.ts";
import { addressKey } from "../../src/domain/address.ts";

const CITY: Record<string, string> = {
	"85031": "PHOENIX",
	"85033": "PHOENIX",
	"85008": "PHOENIX",
	"85301": "GLENDALE",
	"85379": "SURPRISE",
};

let big: World | undefined;
function bigWorld(): World {
	if (!big) {
		const t0 = performance.now();
		big = generateWorld();
		const ms = performance.now() - t0;
		console.log(
			`# generated ${big.parcels.length} parcels and ${big.listings.length} listings in ${ms.toFixed(0)} ms`,
		);
	}
	return big;
}

describe("sandbox world generator", () => {
	test("generates 10,000 parcels over the five default ZIPs by default", () => {
		const w = bigWorld();
		assert.equal(w.parcels.length, 10_000);
		assert.deepEqual(w.options.zips, ["85031", "85033", "85008", "85301", "85379"]);
		for (const zip of w.options.zips) assert.equal(w.byZip.get(zip)!.length, 2000);
		assert.equal(w.byApn.size, 10_000, "APNs are unique");
	});

	test("same seed, same world; another seed, another world", () => {
		const a = generateWorld({ seed: 7, parcelsPerZip: 300 });
		const b = generateWorld({ seed: 7, parcelsPerZip: 300 });
		const c = generateWorld({ seed: 8, parcelsPerZip: 300 });
		assert.equal(JSON.stringify(a.parcels), JSON.stringify(b.parcels));
		assert.equal(JSON.stringify(a.listings), JSON.stringify(b.listings));
		assert.deepEqual(a.truth, b.truth);
		assert.notEqual(JSON.stringify(a.parcels), JSON.stringify(c.parcels));
	});

	test("configurable ZIP list and per-ZIP counts", () => {
		const w = generateWorld({ zips: ["85008", "85301"], parcelsPerZip: { default: 50, "85301": 120 } });
		assert.equal(w.byZip.get("85008")!.length, 50);
		assert.equal(w.byZip.get("85301")!.length, 120);
		assert.equal(w.parcels.length, 170);
		const unknown = generateWorld({ zips: ["85051"], parcelsPerZip: 40 });
		assert.equal(unknown.parcels.length, 40, "a ZIP without a profile still gets parcels");
		assert.throws(() => generateWorld({ zips: ["8503"] }), /5-digit/);
		assert.throws(() => generateWorld({ listingShare: 2 }), /listingShare/);
	});

	test("APNs: 8-digit book-map-parcel, a few split parcels with a letter suffix", () => {
		const w = bigWorld();
		const splits = w.parcels.filter((p) => /[A-Z]$/.test(p.apn));
		assert.ok(
			w.parcels.every((p) => /^\d{8}[A-Z]?$/.test(p.apn)),
			"every APN is 8 digits (+ letter)",
		);
		assert.ok(splits.length > 10 && splits.length < 500, `split parcels: ${splits.length}`);
		for (const s of splits) {
			const sibling = s.apn.endsWith("A") ? `${s.apn.slice(0, 8)}B` : `${s.apn.slice(0, 8)}A`;
			assert.ok(w.byApn.has(sibling), `split ${s.apn} has its other half`);
		}
		assert.equal(formatApn("10402008A"), "104-02-008A");
		assert.equal(normalizeApn("104-02.008 a"), "10402008A");
		assert.equal(w.parcel(w.parcels[0]!.apnDisplay), w.parcels[0]);
		const sorted = [...w.parcels].map((p) => p.apn).sort();
		assert.deepEqual(
			w.parcels.map((p) => p.apn),
			sorted,
			"parcels are in APN order",
		);
	});

	test("situs addresses: directionals, numbered and named streets, suffixes, condo units, cities", () => {
		const w = bigWorld();
		const addresses = w.parcels.map((p) => p.situsAddress);
		assert.ok(
			addresses.some((a) => /^\d+ [NSEW] \d+(ST|ND|RD|TH) (AVE|DR|LN|ST|PL|WAY)$/.test(a)),
			"numbered streets",
		);
		assert.ok(
			addresses.some((a) => /^\d+ W EL CAMINITO DR$/.test(a)),
			"W EL CAMINITO DR",
		);
		assert.ok(
			addresses.some((a) => /^\d+ E CAMELBACK RD( UNIT \d+)?$/.test(a)),
			"E CAMELBACK RD",
		);
		for (const suffix of ["AVE", "DR", "ST", "RD", "LN", "WAY", "PL", "CT", "BLVD"]) {
			assert.ok(
				addresses.some((a) => new RegExp(` ${suffix}( UNIT \\d+)?$`).test(a)),
				`suffix ${suffix}`,
			);
		}
		const condos = w.parcels.filter((p) => p.isCondo);
		assert.ok(condos.length > 100, "condos exist");
		assert.ok(condos.every((p) => / UNIT \d+$/.test(p.situsAddress)));
		for (const p of w.parcels) assert.equal(p.city, CITY[p.zip]);
		const keys = new Set(w.parcels.map((p) => `${p.situsAddress}|${p.zip}`));
		assert.equal(keys.size, w.parcels.length, "no two parcels share an address in a ZIP");
	});

	test("property types, facts and valuations look like the Assessor's", () => {
		const w = bigWorld();
		const count = (t: string) => w.parcels.filter((p) => p.propertyType === t).length;
		assert.ok(count("RESIDENTIAL") / w.parcels.length > 0.85, "mostly residential");
		assert.ok(count("COMMERCIAL") > 20);
		assert.ok(count("VACANT LAND") > 20);
		for (const p of w.parcels) {
			const v = p.valuations[0]!;
			assert.equal(v.taxYear, 2026);
			assert.ok(v.fullCashValue > 0 && v.limitedPropertyValue <= v.fullCashValue);
			assert.ok(p.lat > 33.3 && p.lat < 33.9 && p.long > -112.6 && p.long < -111.9, `${p.apn} in Phoenix`);
			assert.match(p.sectionTownshipRange, /^\d{1,2}\d[NS]\d[EW]$/);
			if (p.propertyType === "RESIDENTIAL") {
				const r = p.residential!;
				assert.ok(r.livableSpace >= 500 && r.livableSpace < 6000);
				assert.ok(r.constructionYear >= 1940 && r.constructionYear <= 2025);
				assert.equal(r.bathFixtures, r.fullBaths * 3 + r.halfBaths * 2);
			} else {
				assert.equal(p.residential, null);
			}
			if (p.propertyType === "VACANT LAND") assert.equal(p.constructionYear, null);
		}
		assert.ok(w.parcels.some((p) => p.residential?.pool));
		assert.ok(
			w.parcels.some((p) => p.subdivision.includes("  ")),
			"double-spaced plat names, as in the real data",
		);
	});

	test("listings: ~8% of residential parcels, complete facts, unique 7-digit MLS ids", () => {
		const w = bigWorld();
		const residential = w.parcels.filter((p) => p.propertyType === "RESIDENTIAL").length;
		const listedParcels = new Set(w.listings.map((l) => l.apn));
		const share = listedParcels.size / residential;
		assert.ok(share > 0.06 && share < 0.1, `listed share ${share}`);
		assert.equal(new Set(w.listings.map((l) => l.mlsId)).size, w.listings.length);
		assert.ok(
			w.listings.some((l) => w.listingsByApn.get(l.apn)!.length > 1),
			"some parcels were listed twice",
		);
		const statuses = new Set(w.listings.map((l) => l.status));
		assert.deepEqual([...statuses].sort(), ["Active", "Contingent", "Pending", "Sold"]);
		for (const l of w.listings) {
			const p = w.byApn.get(l.apn)!;
			assert.equal(p.propertyType, "RESIDENTIAL", "every listing belongs to a residential parcel");
			assert.match(l.mlsId, /^\d{7}$/);
			assert.ok(l.price > 10_000 && l.beds >= 1 && l.fullBaths >= 1 && l.sqft > 0 && l.lotSqft > 0);
			assert.equal(l.yearBuilt, p.residential!.constructionYear);
			assert.ok(l.photoIds.length >= 6 && l.photoIds.every((id) => /^\d{26}$/.test(id)));
			assert.ok(l.description.length > 50);
			assert.equal(l.zip, p.zip);
			assert.equal(w.truth.listingApn[l.mlsId], p.apn);
		}
	});

	test("MLS addresses are variants of the situs address that join through the address key", () => {
		const w = bigWorld();
		const differ = w.listings.filter((l) => l.address.toUpperCase() !== w.byApn.get(l.apn)!.situsAddress);
		assert.ok(differ.length > w.listings.length / 2, "most MLS addresses differ from the situs text");
		assert.ok(
			w.listings.some((l) => /\b(Drive|Avenue|Street|Road|Lane)\b/.test(l.address)),
			"spelled-out suffixes",
		);
		assert.ok(
			w.listings.some((l) => /\b(North|South|East|West)\b/.test(l.address)),
			"spelled-out directionals",
		);
		assert.ok(
			w.listings.some((l) => /#\s?\d+$/.test(l.address)),
			"#12-style units",
		);
		assert.ok(
			w.listings.every((l) => l.city === l.city.charAt(0) + l.city.slice(1).toLowerCase()),
			"Title-case cities",
		);
		const byKey = new Map<string, string>();
		for (const p of w.parcels) byKey.set(addressKey(p.situsAddress, p.zip)!, p.apn);
		for (const l of w.listings) {
			assert.equal(byKey.get(addressKey(l.address, l.zip) ?? ""), l.apn, `${l.fullAddress} joins its parcel`);
		}
	});

	test("ground truth: one canonical property per parcel, every listing tied to one", () => {
		const w = bigWorld();
		assert.equal(w.truth.properties.length, w.parcels.length);
		const listed = w.truth.properties.filter((p) => p.mlsIds.length > 0);
		assert.equal(
			listed.reduce((n, p) => n + p.mlsIds.length, 0),
			w.listings.length,
		);
		for (const p of listed) for (const id of p.mlsIds) assert.equal(w.truth.listingApn[id], p.apn);
		const snap = truthSnapshot(w);
		assert.equal(snap.counts.parcels, 10_000);
		assert.equal(snap.listings.length, w.listings.length);
		assert.equal(snap.properties, undefined);
		assert.equal(truthSnapshot(w, true).properties!.length, 10_000);
	});
});
