/**
 * Maricopa County Assessor API simulator (contract: ../shared/contracts/maricopa-api.md).
 *
 * Quirks kept on purpose, because the real API has them and the client must cope:
 * - auth is the raw token in `AUTHORIZATION`; a missing/wrong one is HTTP 500 with an empty
 *   text/html body and the reason phrase `[search]:Unauthorized access! Please contact support.`;
 * - the search result key `SubdivisonName` is misspelled; numbers are strings, some padded
 *   ("135279      ", "3.1 "); `PropertyType` is upper case in search, title case in the parcel;
 * - a missing parcel is 404 with an empty body; a sub-resource of a missing parcel is `200 []`;
 * - an unknown path is `200` with an HTML page.
 * Faults (latency, 5xx, 429, malformed JSON) and per-client counters come from http.ts.
 *
 * Control routes (besides stats/faults): `GET /__sandbox/truth[?properties=1]`,
 * `POST /__sandbox/tokens/revoke {"token"}`, `POST /__sandbox/tokens/add {"token"}`.
 */

import { RequestCounters } from "./counters.ts";
import type { FaultKnobs } from "./faults.ts";
import { FaultInjector } from "./faults.ts";
import type { Parcel, PropertyType, World } from "./generator.ts";
import { normalizeApn, truthSnapshot } from "./generator.ts";
import type { SimContext, SimServer } from "./http.ts";
import { HttpError, startSimServer } from "./http.ts";

export const UNAUTHORIZED_REASON = "[search]:Unauthorized access! Please contact support.";
export const NOT_FOUND_REASON = "[parcel]:Requested content was not found";
export const SUB_RESOURCES = [
	"propertyinfo",
	"address",
	"valuations",
	"residential-details",
	"owner-details",
] as const;
export type SubResource = (typeof SUB_RESOURCES)[number];

export interface MaricopaApiOptions {
	world: World;
	/** Accepted tokens (raw `AUTHORIZATION` values). */
	tokens: string[];
	/** Results per search page (the real API: 25). */
	pageSize?: number;
	faults?: Partial<FaultKnobs>;
	/** Seed of the fault RNG. */
	seed?: number;
	host?: string;
	port?: number;
}

export interface MaricopaApiHandle extends SimServer {
	/** Live set of accepted tokens; tests may edit it or use the helpers. */
	tokens: Set<string>;
	revokeToken(token: string): void;
	addToken(token: string): void;
}

const TYPE_TITLE: Record<PropertyType, string> = {
	RESIDENTIAL: "Residential",
	COMMERCIAL: "Commercial",
	"VACANT LAND": "Vacant Land",
};

/** One row of `/search/property/` as the real API spells it (`SubdivisonName` sic). */
export function searchResultOf(p: Parcel): Record<string, string | null> {
	return {
		MCR: p.mcr,
		SubdivisonName: p.subdivision,
		SectionTownshipRange: p.sectionTownshipRange,
		APN: p.apn,
		Ownership: p.owner.name,
		SitusAddress: p.situsAddress,
		SitusCity: p.city,
		SitusZip: p.zip,
		PropertyType: p.propertyType,
		RentalID: p.rentalId,
	};
}

function geo(p: Parcel) {
	return { lat: p.lat, long: p.long };
}

export function propertyInfoOf(p: Parcel): Record<string, unknown> {
	return {
		MCR: p.mcr,
		PropertyAddress: `${p.situsAddress} ${p.city} ${p.zip}`,
		LotSize: String(p.lotSize),
		IsResidential: p.propertyType === "RESIDENTIAL",
		SubdivisionName: p.subdivision,
		PropertyType: TYPE_TITLE[p.propertyType],
		PropertyUseCode: p.useCode,
		Zoning: p.zoning,
		IsRental: p.isRental,
	};
}

export function addressOf(p: Parcel): Record<string, unknown> {
	return {
		PropertyAddress: `${p.situsAddress} ${p.city} ${p.zip}`,
		StreetNumber: String(p.situs.number),
		StreetDirection: p.situs.direction,
		StreetName: p.situs.streetName,
		StreetSuffix: p.situs.suffix,
		Unit: p.situs.unit,
		City: p.city,
		Zip: p.zip,
	};
}

export function ownerOf(p: Parcel): Record<string, unknown> {
	const o = p.owner;
	return {
		Ownership: o.name,
		MailingAddress1: o.mailingAddress1,
		MailingCity: o.mailingCity,
		MailingState: o.mailingState,
		MailingZip: o.mailingZip,
		DeedDate: o.deedDate,
		DeedType: o.deedType,
		SalePrice: o.salePrice === null ? null : String(o.salePrice),
		SaleDate: o.saleDate,
	};
}

/** Valuations, newest first; the LPV and class code come padded as the real API sends them. */
export function valuationsOf(p: Parcel): Record<string, string>[] {
	return p.valuations.map((v) => ({
		TaxYear: String(v.taxYear),
		FullCashValue: String(v.fullCashValue),
		LimitedPropertyValue: String(v.limitedPropertyValue).padEnd(12, " "),
		LegalClassificationCode: v.legalClass.padEnd(4, " "),
		AssessedFCV: String(v.assessedFcv),
		AssessedLPV: String(v.assessedLpv),
	}));
}

export function residentialOf(p: Parcel): Record<string, unknown> | null {
	const r = p.residential;
	if (!r) return null;
	return {
		ConstructionYear: String(r.constructionYear),
		LotSize: String(p.lotSize),
		LivableSpace: String(r.livableSpace),
		Pool: r.pool,
		ExteriorWalls: r.exteriorWalls,
		RoofType: r.roofType,
		BathFixtures: String(r.bathFixtures),
		NumberOfGarages: String(r.garages),
		NumberOfCarports: String(r.carports),
	};
}

/** The whole `GET /parcel/{apn}` document. */
export function parcelDetailOf(p: Parcel): Record<string, unknown> {
	return {
		...propertyInfoOf(p),
		Owner: ownerOf(p),
		Geo: geo(p),
		Valuations: valuationsOf(p),
		ResidentialPropertyData: residentialOf(p),
	};
}

function subResourceOf(p: Parcel, sub: SubResource): unknown {
	switch (sub) {
		case "propertyinfo":
			return { ...propertyInfoOf(p), Geo: geo(p) };
		case "address":
			return addressOf(p);
		case "valuations":
			return valuationsOf(p);
		case "residential-details":
			// Non-residential parcels have no residential details: the same `[]` as "nothing here".
			return residentialOf(p) ?? [];
		case "owner-details":
			return ownerOf(p);
	}
}

const UNKNOWN_PAGE =
	"<!DOCTYPE html><html><head><title>Maricopa County Assessor's Office</title></head>" +
	"<body><h1>Maricopa County Assessor's Office</h1><p>The page you requested could not be displayed.</p>" +
	'<p><a href="/">Return to the home page</a></p></body></html>';

interface Route {
	kind: string;
	apn?: string;
	sub?: SubResource;
}

function route(url: URL, method: string): Route {
	if (method !== "GET") return { kind: "other" };
	const path = url.pathname;
	if (path === "/search/property/" || path === "/search/property") return { kind: "search" };
	const m = /^\/parcel\/([^/]+)(?:\/([^/]+))?\/?$/.exec(path);
	if (m) {
		const apn = decodeURIComponent(m[1]!);
		if (m[2] === undefined) return { kind: "parcel", apn };
		if ((SUB_RESOURCES as readonly string[]).includes(m[2])) {
			return { kind: `parcel/${m[2]}`, apn, sub: m[2] as SubResource };
		}
	}
	return { kind: "other" };
}

/** Parcels matching a free-text query: a ZIP, an APN, or a substring of address/owner/subdivision. */
export function searchParcels(world: World, q: string): Parcel[] {
	const query = q.trim().replace(/\s+/g, " ").toUpperCase();
	if (query === "") return [];
	if (/^\d{5}$/.test(query)) return world.byZip.get(query) ?? [];
	const byApn = world.parcel(query);
	if (byApn && /^\d{8}[A-Z]?$/.test(normalizeApn(query))) return [byApn];
	return world.parcels.filter(
		(p) =>
			p.situsAddress.includes(query) ||
			p.owner.name.includes(query) ||
			(p.subdivision !== "" && p.subdivision.replace(/\s+/g, " ").includes(query)),
	);
}

export async function startMaricopaApi(opts: MaricopaApiOptions): Promise<MaricopaApiHandle> {
	const { world } = opts;
	const pageSize = opts.pageSize ?? 25;
	const tokens = new Set(opts.tokens);
	const faults = new FaultInjector(opts.faults, opts.seed ?? 1);
	const counters = new RequestCounters();

	const handle = (ctx: SimContext) => {
		const r = route(ctx.url, ctx.req.method ?? "GET");
		if (r.kind === "other") {
			ctx.send(200, UNKNOWN_PAGE, { "content-type": "text/html; charset=utf-8" });
			return;
		}
		const token = ctx.req.headers.authorization;
		if (typeof token !== "string" || !tokens.has(token)) {
			ctx.send(500, "", { "content-type": "text/html" }, { statusMessage: UNAUTHORIZED_REASON });
			return;
		}
		if (r.kind === "search") {
			const q = ctx.url.searchParams.get("q") ?? "";
			const pageParam = Number.parseInt(ctx.url.searchParams.get("page") ?? "1", 10);
			const page = Number.isFinite(pageParam) && pageParam >= 1 ? pageParam : 1;
			const hits = searchParcels(world, q);
			const results = hits.slice((page - 1) * pageSize, page * pageSize).map(searchResultOf);
			ctx.json(200, { TOTAL: hits.length, Results: results });
			return;
		}
		const parcel = world.parcel(r.apn!);
		if (r.sub) {
			ctx.json(200, parcel ? subResourceOf(parcel, r.sub) : []);
			return;
		}
		if (!parcel) {
			ctx.send(404, "", { "content-type": "text/html" }, { statusMessage: NOT_FOUND_REASON });
			return;
		}
		ctx.json(200, parcelDetailOf(parcel));
	};

	const tokenOf = (body: unknown): string => {
		const token = (body as { token?: unknown } | undefined)?.token;
		if (typeof token !== "string" || token === "") throw new HttpError(400, 'expected {"token": "..."}');
		return token;
	};

	const server = await startSimServer({
		name: "maricopa",
		host: opts.host,
		port: opts.port,
		faults,
		counters,
		classify: (url, req) => route(url, req.method ?? "GET").kind,
		handle,
		control: {
			"GET truth": ({ url }) => truthSnapshot(world, url.searchParams.get("properties") === "1"),
			"POST tokens/revoke": ({ body }) => {
				tokens.delete(tokenOf(body));
				return { tokens: tokens.size };
			},
			"POST tokens/add": ({ body }) => {
				tokens.add(tokenOf(body));
				return { tokens: tokens.size };
			},
		},
	});
	return {
		...server,
		tokens,
		revokeToken: (t: string) => {
			tokens.delete(t);
		},
		addToken: (t: string) => {
			tokens.add(t);
		},
	};
}
