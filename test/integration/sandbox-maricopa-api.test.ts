/**
 * Contract tests of the Maricopa County Assessor API simulator (contracts/maricopa-api.md) over real
 * HTTP on loopback, quirks included: auth failures as HTTP 500 with a reason phrase, the misspelled
 * `SubdivisonName`, numbers as (padded) strings, 404 with an empty body, `200 []` for sub-resources
 * of a missing parcel, HTML for unknown paths, run-time token revocation.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";
import type { Parcel } from "../../sandbox/generator.ts";
import { generateWorld } from "../../sandbox/generator.ts";
import {
	type MaricopaApiHandle,
	NOT_FOUND_REASON,
	SUB_RESOURCES,
	startMaricopaApi,
	UNAUTHORIZED_REASON,
} from "../../sandbox/maricopa-api.ts";

const TOKEN = "test-token-1";
const world = generateWorld({ seed: 3, parcelsPerZip: { default: 60, "85031": 130 }, splitShare: 0.1 });
let api: MaricopaApiHandle;

const get = (path: string, token: string | null = TOKEN) =>
	fetch(`${api.url}${path}`, { headers: token === null ? {} : { AUTHORIZATION: token } });

async function getJson<T = unknown>(path: string): Promise<T> {
	const res = await get(path);
	assert.equal(res.status, 200, `${path} -> ${res.status}`);
	assert.match(res.headers.get("content-type") ?? "", /application\/json/);
	return (await res.json()) as T;
}

type SearchPage = { TOTAL: number; Results: Record<string, unknown>[] };
const SEARCH_KEYS = [
	"MCR",
	"SubdivisonName",
	"SectionTownshipRange",
	"APN",
	"Ownership",
	"SitusAddress",
	"SitusCity",
	"SitusZip",
	"PropertyType",
	"RentalID",
];

const residential = () => world.parcels.find((p) => p.propertyType === "RESIDENTIAL" && !p.isCondo)!;

describe("sandbox Maricopa Assessor API", () => {
	before(async () => {
		api = await startMaricopaApi({ world, tokens: [TOKEN], seed: 9 });
	});
	after(async () => {
		await api.stop();
	});
	afterEach(() => {
		api.faults.reset();
		api.addToken(TOKEN);
	});

	test("search by ZIP: pages of 25, TOTAL, real keys (SubdivisonName sic), every parcel once", async () => {
		const zipParcels = world.byZip.get("85031")!;
		const first = await getJson<SearchPage>("/search/property/?q=85031&page=1");
		assert.equal(first.TOTAL, 130);
		assert.equal(first.Results.length, 25);
		assert.deepEqual(Object.keys(first.Results[0]!), SEARCH_KEYS);
		const seen: string[] = [];
		for (let page = 1; page <= 6; page++) {
			const body = await getJson<SearchPage>(`/search/property/?q=85031&page=${page}`);
			assert.equal(body.TOTAL, 130);
			assert.equal(body.Results.length, page < 6 ? 25 : 5);
			for (const r of body.Results) {
				assert.equal(r.SitusZip, "85031");
				assert.equal(typeof r.APN, "string");
				assert.match(r.APN as string, /^\d{8}[A-Z]?$/);
				seen.push(r.APN as string);
			}
		}
		assert.deepEqual(
			seen,
			zipParcels.map((p) => p.apn),
		);
		const beyond = await getJson<SearchPage>("/search/property/?q=85031&page=7");
		assert.deepEqual(beyond, { TOTAL: 130, Results: [] });
		const types = new Set(first.Results.map((r) => r.PropertyType));
		for (const t of types) assert.ok(["RESIDENTIAL", "COMMERCIAL", "VACANT LAND"].includes(t as string));
	});

	test("a search row carries the parcel's values", async () => {
		const p = residential();
		const body = await getJson<SearchPage>(`/search/property/?q=${p.zip}&page=1`);
		const all = [body];
		for (let page = 2; !all.flatMap((b) => b.Results).some((r) => r.APN === p.apn); page++) {
			all.push(await getJson<SearchPage>(`/search/property/?q=${p.zip}&page=${page}`));
		}
		const row = all.flatMap((b) => b.Results).find((r) => r.APN === p.apn)!;
		assert.deepEqual(row, {
			MCR: p.mcr,
			SubdivisonName: p.subdivision,
			SectionTownshipRange: p.sectionTownshipRange,
			APN: p.apn,
			Ownership: p.owner.name,
			SitusAddress: p.situsAddress,
			SitusCity: p.city,
			SitusZip: p.zip,
			PropertyType: "RESIDENTIAL",
			RentalID: p.rentalId,
		});
	});

	test("search: no match, address substring, APN", async () => {
		assert.deepEqual(await getJson("/search/property/?q=99999&page=1"), { TOTAL: 0, Results: [] });
		assert.deepEqual(await getJson("/search/property/?q=NO%20SUCH%20STREET"), { TOTAL: 0, Results: [] });
		const p = residential();
		const byAddress = await getJson<SearchPage>(`/search/property/?q=${encodeURIComponent(p.situsAddress)}`);
		assert.ok(byAddress.Results.some((r) => r.APN === p.apn));
		const byApn = await getJson<SearchPage>(`/search/property/?q=${p.apnDisplay}`);
		assert.equal(byApn.TOTAL, 1);
		assert.equal(byApn.Results[0]!.APN, p.apn);
	});

	test("auth: missing or wrong token = HTTP 500, empty text/html body, reason phrase", async () => {
		for (const token of [null, "wrong-token", `Bearer ${TOKEN}`]) {
			for (const path of ["/search/property/?q=85031&page=1", `/parcel/${residential().apn}`]) {
				const res = await get(path, token);
				assert.equal(res.status, 500);
				assert.equal(res.statusText, UNAUTHORIZED_REASON);
				assert.equal(res.headers.get("content-type"), "text/html");
				assert.equal(await res.text(), "");
			}
		}
	});

	test("a token revoked at run time stops working, in-process and over the control route", async () => {
		const path = "/search/property/?q=85008&page=1";
		assert.equal((await get(path)).status, 200);
		api.revokeToken(TOKEN);
		const res = await get(path);
		assert.equal(res.status, 500);
		assert.equal(res.statusText, UNAUTHORIZED_REASON);
		api.addToken(TOKEN);
		assert.equal((await get(path)).status, 200);
		const revoke = await fetch(`${api.url}/__sandbox/tokens/revoke`, {
			method: "POST",
			body: JSON.stringify({ token: TOKEN }),
		});
		assert.equal(revoke.status, 200);
		assert.equal((await get(path)).status, 500);
		await fetch(`${api.url}/__sandbox/tokens/add`, {
			method: "POST",
			body: JSON.stringify({ token: TOKEN }),
		});
		assert.equal((await get(path)).status, 200);
	});

	test("parcel: APN with or without dashes, dots or spaces; strings, padding, title-case type", async () => {
		const p = residential();
		const plain = await getJson<Record<string, unknown>>(`/parcel/${p.apn}`);
		const b = p.apn;
		for (const form of [
			p.apnDisplay,
			`${b.slice(0, 3)}.${b.slice(3, 5)}.${b.slice(5)}`,
			`${b.slice(0, 3)} ${b.slice(3, 5)} ${b.slice(5)}`,
		]) {
			assert.deepEqual(await getJson(`/parcel/${encodeURIComponent(form)}`), plain, form);
		}
		assert.equal(plain.MCR, p.mcr);
		assert.equal(plain.PropertyAddress, `${p.situsAddress} ${p.city} ${p.zip}`);
		assert.equal(plain.LotSize, String(p.lotSize));
		assert.equal(plain.IsResidential, true);
		assert.equal(plain.SubdivisionName, p.subdivision);
		assert.equal(plain.PropertyType, "Residential");
		assert.equal(plain.PropertyUseCode, p.useCode);
		assert.equal(typeof plain.Zoning, "string");
		assert.equal(plain.IsRental, p.isRental);
		assert.deepEqual(plain.Geo, { lat: p.lat, long: p.long });
		const owner = plain.Owner as Record<string, unknown>;
		assert.equal(owner.Ownership, p.owner.name);
		assert.match(owner.DeedDate as string, /^\d{2}\/\d{2}\/\d{4}$/);
		const vals = plain.Valuations as Record<string, string>[];
		assert.equal(vals[0]!.TaxYear, "2026");
		assert.equal(vals[0]!.FullCashValue, String(p.valuations[0]!.fullCashValue));
		assert.equal(vals[0]!.LimitedPropertyValue.length, 12, "padded LPV");
		assert.equal(vals[0]!.LimitedPropertyValue.trim(), String(p.valuations[0]!.limitedPropertyValue));
		assert.match(vals[0]!.LegalClassificationCode, /^[34]\.1 $/, "padded class code");
		const rpd = plain.ResidentialPropertyData as Record<string, unknown>;
		const r = p.residential!;
		assert.deepEqual(rpd, {
			ConstructionYear: String(r.constructionYear),
			LotSize: String(p.lotSize),
			LivableSpace: String(r.livableSpace),
			Pool: r.pool,
			ExteriorWalls: r.exteriorWalls,
			RoofType: r.roofType,
			BathFixtures: String(r.bathFixtures),
			NumberOfGarages: String(r.garages),
			NumberOfCarports: String(r.carports),
		});
		assert.equal("Bedrooms" in rpd, false, "bedrooms are not reported");
	});

	test("parcel: commercial and vacant land, split parcels with a letter suffix", async () => {
		const byType = (t: Parcel["propertyType"]) => world.parcels.find((p) => p.propertyType === t)!;
		const commercial = await getJson<Record<string, unknown>>(`/parcel/${byType("COMMERCIAL").apn}`);
		assert.equal(commercial.PropertyType, "Commercial");
		assert.equal(commercial.IsResidential, false);
		assert.equal(commercial.ResidentialPropertyData, null);
		const vacant = await getJson<Record<string, unknown>>(`/parcel/${byType("VACANT LAND").apn}`);
		assert.equal(vacant.PropertyType, "Vacant Land");
		const split = world.parcels.find((p) => /[A-Z]$/.test(p.apn))!;
		assert.match(split.apnDisplay, /^\d{3}-\d{2}-\d{3}[AB]$/);
		const doc = await getJson<Record<string, unknown>>(`/parcel/${split.apnDisplay.toLowerCase()}`);
		assert.equal(doc.PropertyAddress, `${split.situsAddress} ${split.city} ${split.zip}`);
	});

	test("sub-resources return the matching part", async () => {
		const p = residential();
		const full = await getJson<Record<string, unknown>>(`/parcel/${p.apn}`);
		assert.deepEqual(await getJson(`/parcel/${p.apn}/valuations`), full.Valuations);
		assert.deepEqual(await getJson(`/parcel/${p.apn}/residential-details`), full.ResidentialPropertyData);
		assert.deepEqual(await getJson(`/parcel/${p.apn}/owner-details`), full.Owner);
		const info = await getJson<Record<string, unknown>>(`/parcel/${p.apn}/propertyinfo`);
		for (const key of ["MCR", "PropertyAddress", "LotSize", "PropertyType", "Zoning", "Geo"]) {
			assert.deepEqual(info[key], full[key], key);
		}
		const address = await getJson<Record<string, unknown>>(`/parcel/${p.apn}/address`);
		assert.equal(address.PropertyAddress, full.PropertyAddress);
		assert.equal(address.StreetNumber, String(p.situs.number));
		assert.equal(address.Zip, p.zip);
	});

	test("missing parcel: 404, empty body, reason phrase; its sub-resources: 200 []", async () => {
		const res = await get("/parcel/999-99-999");
		assert.equal(res.status, 404);
		assert.equal(res.statusText, NOT_FOUND_REASON);
		assert.equal(await res.text(), "");
		for (const sub of SUB_RESOURCES) {
			const s = await get(`/parcel/99999999/${sub}`);
			assert.equal(s.status, 200, sub);
			assert.deepEqual(await s.json(), []);
		}
	});

	test("unknown path: 200 with an HTML page", async () => {
		for (const path of ["/", "/no/such/thing", `/parcel/${residential().apn}/nonsense`]) {
			const res = await get(path);
			assert.equal(res.status, 200);
			assert.match(res.headers.get("content-type") ?? "", /text\/html/);
			const body = await res.text();
			assert.match(body, /<html/);
			assert.throws(() => JSON.parse(body));
		}
	});

	test("faults in front of the API: 429 + Retry-After, 5xx, malformed JSON", async () => {
		api.faults.set({ rateLimit: { limit: 2, windowMs: 60_000, retryAfterS: 30 } });
		assert.equal((await get("/parcel/99999999/valuations")).status, 200);
		assert.equal((await get("/parcel/99999999/valuations")).status, 200);
		const limited = await get("/parcel/99999999/valuations");
		assert.equal(limited.status, 429);
		assert.equal(limited.headers.get("retry-after"), "30");

		api.faults.reset();
		api.faults.set({ errorRate: 1, errorStatuses: [500, 502, 503] });
		for (let i = 0; i < 5; i++) {
			const res = await get("/search/property/?q=85031&page=1");
			await res.arrayBuffer();
			assert.ok([500, 502, 503].includes(res.status));
			assert.notEqual(res.statusText, UNAUTHORIZED_REASON, "a transient 500 is not the auth failure");
		}
		api.faults.reset();
		api.faults.set({ malformedRate: 1 });
		const res = await get(`/parcel/${residential().apn}`);
		assert.equal(res.status, 200);
		const text = await res.text();
		assert.throws(() => JSON.parse(text));
	});

	test("counters per client and path kind; ground truth on /__sandbox/truth", async () => {
		api.counters.reset();
		await (await get("/search/property/?q=85031&page=1")).arrayBuffer();
		await (await get(`/parcel/${residential().apn}`)).arrayBuffer();
		await (await get(`/parcel/${residential().apn}/valuations`)).arrayBuffer();
		await (await get("/search/property/?q=85031&page=1", "intruder")).arrayBuffer();
		assert.equal(api.counters.total({ client: TOKEN }), 3);
		assert.equal(api.counters.total({ client: TOKEN, kind: "parcel" }), 1);
		assert.equal(api.counters.total({ kind: "parcel/valuations" }), 1);
		assert.equal(api.counters.total({ client: "intruder", status: 500 }), 1);
		const truth = await (await fetch(`${api.url}/__sandbox/truth`)).json();
		assert.equal(truth.counts.parcels, world.parcels.length);
		assert.deepEqual(truth.listingApn, world.truth.listingApn);
	});
});
