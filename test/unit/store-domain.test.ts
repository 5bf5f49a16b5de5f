import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { generateWorld } from "../../sandbox/generator.ts";
import { addressKey, normalizeStreet } from "../../src/domain/address.ts";
import { parseAddress } from "../../src/domain/address-line.ts";
import { formatApn, normalizeApn } from "../../src/domain/apn.ts";
import { mergeProperty, type PropertyEnrichment } from "../../src/domain/property.ts";
import type { Contribution } from "../../src/domain/property-fields.ts";
import { listingRecord, parcelRecord } from "../harness/store.ts";

describe("APN", () => {
	test("dashes, dots and spaces dropped, split-parcel letter kept", () => {
		assert.equal(normalizeApn("103-06-005"), "10306005");
		assert.equal(normalizeApn("103.06.005"), "10306005");
		assert.equal(normalizeApn(" 104 02 008a "), "10402008A");
		assert.equal(formatApn("10402008A"), "104-02-008A");
		assert.equal(normalizeApn("1030600"), null);
		assert.equal(normalizeApn("85031"), null);
	});
});

describe("address normalization", () => {
	test("one street, written the ways sources write it", () => {
		const variants = [
			"5219 W EL CAMINITO DR",
			"5219 W EL CAMINITO Drive",
			"5219 West El Caminito Drive",
			"5219 W. El Caminito Dr.",
			"5219 w el caminito dr",
		];
		for (const v of variants) assert.equal(normalizeStreet(v), "5219 W EL CAMINITO DR", v);
	});

	test("units, numbered streets, suffix words", () => {
		assert.equal(normalizeStreet("7009 E CAMELBACK RD UNIT 12"), "7009 E CAMELBACK RD #12");
		for (const v of [
			"7009 E Camelback Road #12",
			"7009 E Camelback Rd # 12",
			"7009 East Camelback Road, Apt 12",
			"7009 E CAMELBACK RD STE 12",
		]) {
			assert.equal(normalizeStreet(v), "7009 E CAMELBACK RD #12", v);
		}
		assert.equal(normalizeStreet("4027 N 55th Avenue"), "4027 N 55TH AVE");
		assert.equal(normalizeStreet("4027 N 55 Ave"), "4027 N 55TH AVE");
		assert.equal(normalizeStreet("100 N First Street"), "100 N 1ST ST");
		assert.equal(normalizeStreet("2 N Central Ave"), "2 N CENTRAL AVE");
		assert.equal(normalizeStreet("123 North St"), "123 NORTH ST");
		assert.equal(normalizeStreet("15000 N Frank Lloyd Wright Blvd"), "15000 N FRANK LLOYD WRIGHT BLVD");
		assert.equal(normalizeStreet("16845 W Calle Lejos Street"), "16845 W CALLE LEJOS ST");
	});

	test("one-line addresses: city, state and ZIP split off", () => {
		assert.deepEqual(
			{ ...parseAddress("4027 N 55TH AVE PHOENIX 85031") },
			{
				number: "4027",
				predir: "N",
				name: "55TH",
				suffix: "AVE",
				postdir: null,
				unit: null,
				city: "PHOENIX",
				state: "AZ",
				zip: "85031",
			},
		);
		const a = parseAddress("5219 W EL CAMINITO Drive, Unit 12, Glendale, AZ 85302-1234")!;
		assert.equal(a.city, "GLENDALE");
		assert.equal(a.zip, "85302");
		assert.equal(a.unit, "12");
		const b = parseAddress("13000 W Bell Rd Surprise AZ 85374")!;
		assert.equal(b.city, "SURPRISE");
		assert.equal(b.name, "BELL");
		const c = parseAddress("9839 W Sun City Blvd SUN CITY WEST 85375");
		assert.equal(c?.city, "SUN CITY WEST");
	});

	test("address key needs a house number and a ZIP", () => {
		assert.equal(addressKey("4027 N 55th Ave", "85031-2201"), "4027 N 55TH AVE|85031");
		assert.equal(addressKey("N 55th Ave", "85031"), null);
		assert.equal(addressKey("4027 N 55th Ave", null), null);
	});

	test("every sandbox listing normalizes to its parcel's address key", () => {
		const world = generateWorld({
			zips: ["85031", "85033", "85008", "85301", "85379"],
			parcelsPerZip: 600,
			listingShare: 0.3,
		});
		assert.ok(world.listings.length > 500);
		for (const l of world.listings) {
			const p = world.byApn.get(l.apn)!;
			assert.equal(
				addressKey(l.address, l.zip),
				addressKey(p.situsAddress, p.zip),
				`${l.address} vs ${p.situsAddress}`,
			);
			const full = parseAddress(l.fullAddress)!;
			assert.equal(full.city, p.city);
			assert.equal(full.zip, p.zip);
		}
		const keys = new Set(world.parcels.map((p) => addressKey(p.situsAddress, p.zip)));
		assert.equal(keys.size, world.parcels.length, "distinct parcels have distinct address keys");
	});
});

describe("merge", () => {
	const world = generateWorld({
		seed: 3,
		zips: ["85008"],
		parcelsPerZip: 200,
		listingShare: 0.5,
		relistShare: 0.5,
	});
	const relisted = [...world.listingsByApn.entries()].find(([, ls]) => ls.length > 1)!;
	const parcel = world.byApn.get(relisted[0])!;
	const [older, newer] = [...relisted[1]].sort((a, b) => (a.listDate < b.listDate ? -1 : 1));
	const c = (source: "maricopa" | "mls", sourceId: string, record: object, at: string): Contribution =>
		({ source, sourceId, record, collectedAt: at }) as Contribution;
	const contributions = [
		c("maricopa", parcel.apn, parcelRecord(parcel), "2026-01-01T00:00:00Z"),
		c("mls", older!.mlsId, listingRecord(older!), "2026-01-02T00:00:00Z"),
		c("mls", newer!.mlsId, listingRecord(newer!), "2026-01-03T00:00:00Z"),
	];

	test("order-independent: any arrival order gives the same property", () => {
		const orders = [
			[0, 1, 2],
			[2, 1, 0],
			[1, 0, 2],
		];
		const results = orders.map((order) => {
			let doc = null;
			for (const i of order)
				doc = mergeProperty(doc, contributions[i]!, {
					id: "x",
					now: "2026-01-05T00:00:00Z",
					claimAddress: true,
				}).doc;
			const { history: _h, version: _v, changedAt: _c, createdAt: _a, updatedAt: _u, ...rest } = doc!;
			return rest;
		});
		assert.deepEqual(results[1], results[0]);
		assert.deepEqual(results[2], results[0]);
		assert.equal(results[0]!.mlsId, newer!.mlsId, "the newest listing sets price and status");
		assert.equal(results[0]!.price, newer!.price);
		assert.deepEqual(results[0]!.mlsIds, [older!.mlsId, newer!.mlsId].sort());
		assert.equal(results[0]!.key, parcel.apn);
	});

	test("GIS core facts then REST details of the same parcel: fields the later one omits are kept", () => {
		const gis = {
			apn: parcel.apn,
			origin: "gis",
			address: { street: parcel.situsAddress, zip: parcel.zip },
			facts: { lotSize: 1234 },
		};
		const rest = {
			apn: parcel.apn,
			origin: "parcel",
			owner: { name: "DOE JANE" },
			facts: { constructionYear: 1960 },
		};
		let r = mergeProperty(null, c("maricopa", parcel.apn, gis, "2026-01-01T00:00:00Z"), {
			id: "x",
			now: "t",
		});
		r = mergeProperty(r.doc, c("maricopa", parcel.apn, rest, "2026-01-02T00:00:00Z"), { id: "x", now: "t" });
		assert.equal(r.doc.lotSize, 1234);
		assert.equal(r.doc.constructionYear, 1960);
		assert.equal(r.doc.owner?.name, "DOE JANE");
		assert.equal(r.doc.street, normalizeStreet(parcel.situsAddress));
		assert.deepEqual(
			r.changes.map((h) => [h.field, h.from, h.to]),
			[["owner", null, "DOE JANE"]],
		);
	});

	test("an enrichment is carried over by merges, and taken from an absorbed property when the parcel has none", () => {
		const enrichment = (model: string): PropertyEnrichment => ({
			description: "d",
			key_features: ["f"],
			investment_analysis: {
				rental_estimate: 1,
				cap_rate: 1,
				market_trend: "stable",
				recommendation: "hold",
			},
			quality_score: 0.5,
			processing: {
				llm_model: model,
				tokens_used: 10,
				processing_time_ms: 5,
				source: "llm",
				inputHash: "0".repeat(32),
				enrichedAt: "2026-01-04T00:00:00Z",
			},
		});
		const opts = { id: "x", now: "2026-01-05T00:00:00Z" };
		const parcelDoc = mergeProperty(null, contributions[0]!, opts).doc;
		const enriched = { ...parcelDoc, enrichment: enrichment("parcel-model") };
		const next = mergeProperty(enriched, contributions[1]!, opts);
		assert.equal(next.status, "updated");
		assert.deepEqual(next.doc.enrichment, enriched.enrichment, "kept across a merge that changes facts");
		assert.equal(next.doc.changedAt, opts.now);
		assert.equal(mergeProperty(enriched, contributions[0]!, opts).doc.enrichment, enriched.enrichment);

		// A listing property enriched before its parcel arrived: the parcel absorbs it and its enrichment.
		const listingDoc = mergeProperty(null, contributions[2]!, { ...opts, id: "y", claimAddress: true }).doc;
		const listingEnriched = { ...listingDoc, enrichment: enrichment("listing-model") };
		const absorbed = mergeProperty(parcelDoc, contributions[0]!, { ...opts, absorb: [listingEnriched] });
		assert.deepEqual(absorbed.doc.enrichment, listingEnriched.enrichment);
		const both = mergeProperty(enriched, contributions[0]!, { ...opts, absorb: [listingEnriched] });
		assert.equal(both.doc.enrichment?.processing.llm_model, "parcel-model", "the parcel's own wins");
		assert.equal("enrichment" in mergeProperty(null, contributions[0]!, opts).doc, false);
	});
});
