/**
 * Contract tests of the Assessor's ArcGIS parcel layer simulator (contracts/maricopa-gis.md) over
 * real HTTP on loopback: the supported `where` subset, paging capped at maxRecordCount with
 * `exceededTransferLimit`, formatted money strings, errors as HTTP 200 JSON, faults and counters.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";
import { generateWorld } from "../../sandbox/generator.ts";
import {
	formatMoney,
	GIS_LAYER_PATH,
	GIS_QUERY_PATH,
	type MaricopaGisHandle,
	startMaricopaGis,
} from "../../sandbox/maricopa-gis.ts";

const world = generateWorld({ seed: 5, parcelsPerZip: { default: 40, "85033": 230 } });
let gis: MaricopaGisHandle;

type Feature = { attributes: Record<string, string | number | null>; geometry?: { rings: number[][][] } };
type QueryAnswer = {
	features: Feature[];
	exceededTransferLimit?: boolean;
	fields: { name: string; type: string }[];
	count?: number;
	error?: { code: number; message: string; details: string[] };
};

async function query(params: Record<string, string>): Promise<QueryAnswer> {
	const res = await fetch(`${gis.url}${GIS_QUERY_PATH}?${new URLSearchParams({ f: "json", ...params })}`);
	assert.equal(res.status, 200, "ArcGIS answers errors with HTTP 200 too");
	return (await res.json()) as QueryAnswer;
}

describe("sandbox Maricopa GIS (ArcGIS REST) layer", () => {
	before(async () => {
		gis = await startMaricopaGis({ world, maxRecordCount: 100, seed: 4 });
	});
	after(async () => {
		await gis.stop();
	});
	afterEach(() => {
		gis.faults.reset();
		gis.maxRecordCount = 100;
	});

	test("a ZIP in pages of maxRecordCount, ordered by APN, exceededTransferLimit while rows remain", async () => {
		const apns: string[] = [];
		const flags: (boolean | undefined)[] = [];
		for (let offset = 0; ; offset += 100) {
			const page = await query({
				where: "PHYSICAL_ZIP='85033'",
				outFields: "*",
				returnGeometry: "false",
				orderByFields: "APN",
				resultOffset: String(offset),
				resultRecordCount: "1000",
			});
			assert.ok(page.features.length <= 100, "capped at maxRecordCount");
			for (const f of page.features) {
				assert.equal(f.attributes.PHYSICAL_ZIP, "85033");
				assert.equal(f.geometry, undefined, "returnGeometry=false");
				apns.push(f.attributes.APN as string);
			}
			flags.push(page.exceededTransferLimit);
			if (!page.exceededTransferLimit) break;
		}
		assert.deepEqual(flags, [true, true, undefined]);
		assert.deepEqual(
			apns,
			world.byZip.get("85033")!.map((p) => p.apn),
		);
	});

	test("attributes: contract fields, formatted and padded money strings", async () => {
		const p = world.parcels.find(
			(x) => x.propertyType === "RESIDENTIAL" && x.valuations[0]!.fullCashValue >= 100_000,
		)!;
		const { features } = await query({ where: `APN='${p.apn}'`, outFields: "*", returnGeometry: "false" });
		assert.equal(features.length, 1);
		const a = features[0]!.attributes;
		assert.equal(a.APN, p.apn);
		assert.equal(a.PHYSICAL_ADDRESS, p.situsAddress);
		assert.equal(a.PHYSICAL_CITY, p.city);
		assert.equal(a.PHYSICAL_ZIP, p.zip);
		assert.equal(a.LAND_SIZE, p.lotSize);
		assert.equal(a.CONST_YEAR, String(p.constructionYear));
		assert.equal(a.LIVING_SPACE, p.residential!.livableSpace);
		assert.equal(a.LATITUDE, p.lat);
		assert.equal(a.LONGITUDE, p.long);
		const fcv = a.FCV_CUR as string;
		assert.equal(fcv.length, 12);
		assert.match(fcv, /^ +\d{1,3}(,\d{3})+$/);
		assert.equal(Number(fcv.trim().replace(/,/g, "")), p.valuations[0]!.fullCashValue);
		assert.equal(a.LPV_CUR, p.valuations[0]!.limitedPropertyValue.toLocaleString("en-US"));
		assert.equal(formatMoney(241900, 12), "     241,900");
		const vacant = world.parcels.find((x) => x.propertyType === "VACANT LAND")!;
		const v = (await query({ where: `APN='${vacant.apn}'`, outFields: "CONST_YEAR,LIVING_SPACE" }))
			.features[0]!;
		assert.deepEqual(v.attributes, { CONST_YEAR: null, LIVING_SPACE: null });
	});

	test("where: 1=1, AND of supported clauses, returnCountOnly, outFields subset", async () => {
		assert.deepEqual(await query({ where: "1=1", returnCountOnly: "true" }), { count: world.parcels.length });
		const p = world.byZip.get("85008")![3]!;
		const both = await query({
			where: `PHYSICAL_ZIP='85008' AND APN='${p.apn}'`,
			outFields: "APN,PHYSICAL_ZIP",
		});
		assert.equal(both.features.length, 1);
		assert.deepEqual(both.features[0]!.attributes, { APN: p.apn, PHYSICAL_ZIP: "85008" });
		assert.deepEqual(
			both.fields.map((f) => f.name),
			["APN", "PHYSICAL_ZIP"],
		);
		const tricky = world.parcels.find((x) => x.situs.unit === null)!;
		const quoted = await query({
			where: `PHYSICAL_ADDRESS='${tricky.situsAddress}' AND PHYSICAL_ZIP='${tricky.zip}'`,
			outFields: "APN",
		});
		assert.deepEqual(
			quoted.features.map((f) => f.attributes.APN),
			[tricky.apn],
		);
		const andInLiteral = await query({ where: "PHYSICAL_ADDRESS='1 N A AND B ST'", returnCountOnly: "true" });
		assert.deepEqual(andInLiteral, { count: 0 }, "AND inside a literal is not a conjunction");
		const none = await query({ where: `PHYSICAL_ZIP='85031' AND APN='${p.apn}'`, outFields: "APN" });
		assert.deepEqual(none.features, []);
		const all = await query({ where: "1=1 AND PHYSICAL_ZIP='85301'", returnCountOnly: "true" });
		assert.equal(all.count, 40);
		const noOutFields = await query({ where: `APN='${p.apn}'`, returnGeometry: "false" });
		assert.deepEqual(
			Object.keys(noOutFields.features[0]!.attributes),
			["OBJECTID"],
			"ArcGIS default: OBJECTID only",
		);
		const desc = await query({
			where: "PHYSICAL_ZIP='85301'",
			outFields: "APN",
			orderByFields: "APN DESC",
			resultRecordCount: "3",
		});
		const zip = world.byZip.get("85301")!;
		assert.deepEqual(
			desc.features.map((f) => f.attributes.APN),
			zip
				.slice(-3)
				.reverse()
				.map((x) => x.apn),
		);
	});

	test("geometry is returned unless returnGeometry=false", async () => {
		const p = world.parcels[0]!;
		const { features } = await query({ where: `APN='${p.apn}'`, outFields: "APN" });
		const ring = features[0]!.geometry!.rings[0]!;
		assert.equal(ring.length, 5);
		assert.deepEqual(ring[0], ring[4], "closed ring");
	});

	test("errors: HTTP 200 with {error:{code:400,message,details}}", async () => {
		for (const params of [
			{ where: "OWNER_NAME LIKE 'SMITH%'" },
			{ where: "PHYSICAL_ZIP='85031' OR APN='1'" },
			{ where: "LAND_SIZE=5000" },
			{ where: "" },
			{ where: "1=1", outFields: "NOPE" },
			{ where: "1=1", orderByFields: "NOPE" },
			{ where: "1=1", resultOffset: "-5" },
			{ outFields: "*" },
		] as Record<string, string>[]) {
			const body = await query(params);
			assert.equal(body.error?.code, 400, JSON.stringify(params));
			assert.equal(body.error?.message, "Unable to complete operation.");
			assert.ok(Array.isArray(body.error?.details) && body.error.details.length > 0);
		}
	});

	test("f=html (or none) gives a page, f=pjson pretty JSON, POST form works, layer info", async () => {
		const html = await fetch(`${gis.url}${GIS_QUERY_PATH}?where=1%3D1`);
		assert.match(html.headers.get("content-type") ?? "", /text\/html/);
		await html.arrayBuffer();
		const pjson = await fetch(`${gis.url}${GIS_QUERY_PATH}?f=pjson&where=1%3D1&returnCountOnly=true`);
		assert.match(await pjson.text(), /\n {2}"count"/);
		const post = await fetch(`${gis.url}${GIS_QUERY_PATH}`, {
			method: "POST",
			headers: { "content-type": "application/x-www-form-urlencoded" },
			body: new URLSearchParams({
				f: "json",
				where: "PHYSICAL_ZIP='85008'",
				returnCountOnly: "true",
			}).toString(),
		});
		assert.deepEqual(await post.json(), { count: 40 });
		const layer = await (await fetch(`${gis.url}${GIS_LAYER_PATH}?f=json`)).json();
		assert.equal(layer.maxRecordCount, 100);
		assert.ok(layer.fields.some((f: { name: string }) => f.name === "FCV_CUR"));
	});

	test("maxRecordCount changes at run time (in-process and over the control route)", async () => {
		gis.maxRecordCount = 7;
		assert.equal((await query({ where: "1=1", outFields: "APN" })).features.length, 7);
		const res = await fetch(`${gis.url}/__sandbox/config`, {
			method: "POST",
			body: JSON.stringify({ maxRecordCount: 11 }),
		});
		assert.deepEqual(await res.json(), { maxRecordCount: 11 });
		const page = await query({ where: "1=1", outFields: "APN", resultRecordCount: "50" });
		assert.equal(page.features.length, 11);
		assert.equal(page.exceededTransferLimit, true);
		const bad = await fetch(`${gis.url}/__sandbox/config`, {
			method: "POST",
			body: JSON.stringify({ maxRecordCount: 0 }),
		});
		assert.equal(bad.status, 400);
	});

	test("faults and counters", async () => {
		gis.counters.reset();
		gis.faults.set({ errorRate: 1, errorStatuses: [503] });
		const failed = await fetch(`${gis.url}${GIS_QUERY_PATH}?f=json&where=1%3D1&returnCountOnly=true`);
		assert.equal(failed.status, 503);
		await failed.arrayBuffer();
		gis.faults.reset();
		gis.faults.set({ malformedRate: 1 });
		const bad = await fetch(`${gis.url}${GIS_QUERY_PATH}?f=json&where=1%3D1&outFields=*`);
		assert.equal(bad.status, 200);
		const text = await bad.text();
		assert.throws(() => JSON.parse(text));
		gis.faults.reset();
		gis.faults.set({ rateLimit: { limit: 0, windowMs: 1000 } });
		const limited = await fetch(`${gis.url}${GIS_QUERY_PATH}?f=json&where=1%3D1`);
		assert.equal(limited.status, 429);
		assert.ok(limited.headers.get("retry-after"));
		await limited.arrayBuffer();
		assert.equal(gis.counters.total({ kind: "query" }), 3);
		assert.equal(gis.counters.total({ status: 429 }), 1);
	});
});
