/**
 * Upstream Assessor shapes (REST search rows, REST parcel details, GIS layer rows) checked and turned
 * into the store's `AssessorParcelRecord`. The Assessor sends most numbers as strings, some padded
 * ("135279      ", "3.1 ") or formatted ("     241,900"); dates as MM/DD/YYYY or MM/YYYY.
 * Anything that does not have the documented shape raises `UpstreamShapeError`: a recorded failure of
 * that call, never a half-filled record.
 */
import { DEFAULT_GIS_FIELDS, type GisFact } from "../config/maricopa.ts";
import { normalizeApn } from "../domain/apn.ts";
import type { AssessorParcelRecord, OwnerRecord, ParcelFacts, ValuationRecord } from "../domain/records.ts";

export class UpstreamShapeError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "UpstreamShapeError";
	}
}

export type AssessorPropertyType = "RESIDENTIAL" | "COMMERCIAL" | "VACANT LAND" | "OTHER";

type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
	return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** "  241,900 " -> 241900; "" / null / "N/A" -> null. Numbers pass through when finite. */
export function parseNumber(v: unknown): number | null {
	if (typeof v === "number") return Number.isFinite(v) ? v : null;
	if (typeof v !== "string") return null;
	const text = v.trim().replace(/,/g, "");
	if (text === "" || !/^-?\d+(\.\d+)?$/.test(text)) return null;
	return Number(text);
}

export function parseInteger(v: unknown): number | null {
	const n = parseNumber(v);
	return n === null ? null : Math.round(n);
}

/** Trimmed text with runs of spaces kept as upstream wrote them; "" -> null. */
export function parseText(v: unknown, max = 200): string | null {
	if (typeof v !== "string") return null;
	const text = v.trim();
	return text === "" ? null : text.slice(0, max);
}

export function parseBool(v: unknown): boolean | null {
	if (typeof v === "boolean") return v;
	if (typeof v === "string") {
		const t = v.trim().toLowerCase();
		if (t === "true" || t === "y" || t === "yes") return true;
		if (t === "false" || t === "n" || t === "no") return false;
	}
	return null;
}

/** "02/12/2015" -> "2015-02-12"; "01/2015" -> "2015-01"; anything else -> null. */
export function parseUsDate(v: unknown): string | null {
	if (typeof v !== "string") return null;
	const t = v.trim();
	let m = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(t);
	if (m) return `${m[3]}-${m[1]!.padStart(2, "0")}-${m[2]!.padStart(2, "0")}`;
	m = /^(\d{1,2})\/(\d{4})$/.exec(t);
	if (m) return `${m[2]}-${m[1]!.padStart(2, "0")}`;
	return null;
}

/** Upper-case Assessor property type from any spelling ("Residential", "VACANT LAND", "vacant"). */
export function propertyTypeOf(v: unknown): AssessorPropertyType | null {
	const t = parseText(v)?.toUpperCase();
	if (!t) return null;
	if (t.startsWith("RESIDENTIAL")) return "RESIDENTIAL";
	if (t.startsWith("COMMERCIAL")) return "COMMERCIAL";
	if (t.startsWith("VACANT")) return "VACANT LAND";
	return "OTHER";
}

/**
 * The GIS layer has no property type, only the Property Use Code: 00xx vacant land, 01xx-08xx
 * residential (single family, condos, mobile homes, multi-family), 1xxx-7xxx commercial/industrial.
 */
export function propertyTypeFromUseCode(puc: unknown): AssessorPropertyType | null {
	const code = parseText(puc);
	if (!code || !/^\d{4}$/.test(code)) return null;
	const group = Number(code.slice(0, 2));
	if (group === 0) return "VACANT LAND";
	if (group >= 1 && group <= 8) return "RESIDENTIAL";
	if (group >= 10 && group <= 79) return "COMMERCIAL";
	return "OTHER";
}

function requireApn(v: unknown, where: string): string {
	const apn = typeof v === "string" ? normalizeApn(v) : null;
	if (!apn)
		throw new UpstreamShapeError(`${where}: APN missing or not a parcel number (${JSON.stringify(v)})`);
	return apn;
}

function zipOf(v: unknown): string | null {
	const t = parseText(v);
	return t && /^\d{5}(-?\d{4})?$/.test(t) ? t.slice(0, 5) : null;
}

/** Drops null/undefined entries so a record only says what the upstream said. */
function compact<T extends object>(o: T): T {
	return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined)) as T;
}

// --- REST search ------------------------------------------------------------------------------

export interface SearchPage {
	total: number;
	rows: SearchRow[];
}

export interface SearchRow {
	apn: string;
	propertyType: AssessorPropertyType | null;
	record: AssessorParcelRecord;
}

export function parseSearchPage(body: unknown): SearchPage {
	if (!isObject(body)) throw new UpstreamShapeError("search: body is not an object");
	const total = body.TOTAL;
	const results = body.Results;
	if (typeof total !== "number" || !Number.isInteger(total) || total < 0) {
		throw new UpstreamShapeError("search: TOTAL is not a count");
	}
	if (!Array.isArray(results)) throw new UpstreamShapeError("search: Results is not a list");
	return { total, rows: results.map((r, i) => searchRowOf(r, i)) };
}

function searchRowOf(r: unknown, i: number): SearchRow {
	if (!isObject(r)) throw new UpstreamShapeError(`search: result ${i} is not an object`);
	const apn = requireApn(r.APN, `search result ${i}`);
	const propertyType = propertyTypeOf(r.PropertyType);
	const street = parseText(r.SitusAddress);
	const owner = parseText(r.Ownership);
	const record: AssessorParcelRecord = compact({
		apn,
		origin: "search" as const,
		address: street
			? { street, city: parseText(r.SitusCity, 80), state: "AZ", zip: zipOf(r.SitusZip) }
			: null,
		propertyType,
		// The real API spells it `SubdivisonName`; accept the correct spelling too.
		subdivision: parseText(r.SubdivisonName ?? r.SubdivisionName),
		mcr: parseText(r.MCR, 20),
		isRental: r.RentalID === undefined ? null : r.RentalID !== null && parseText(r.RentalID) !== null,
		owner: owner ? { name: owner } : null,
	});
	return { apn, propertyType, record };
}

// --- REST parcel details ----------------------------------------------------------------------

function ownerOf(o: unknown): OwnerRecord | null {
	if (!isObject(o)) return null;
	const name = parseText(o.Ownership);
	if (!name) return null;
	return compact({
		name,
		mailingAddress: parseText(o.MailingAddress1),
		mailingCity: parseText(o.MailingCity, 80),
		mailingState: parseText(o.MailingState, 20),
		mailingZip: parseText(o.MailingZip, 12),
		deedDate: parseUsDate(o.DeedDate),
		deedType: parseText(o.DeedType, 20),
		salePrice: parseNumber(o.SalePrice),
		saleDate: parseUsDate(o.SaleDate),
	});
}

function valuationsOf(list: unknown): ValuationRecord[] {
	if (list === undefined || list === null) return [];
	if (!Array.isArray(list)) throw new UpstreamShapeError("parcel: Valuations is not a list");
	const out: ValuationRecord[] = [];
	for (const v of list) {
		if (!isObject(v)) throw new UpstreamShapeError("parcel: a valuation is not an object");
		const taxYear = parseInteger(v.TaxYear);
		if (taxYear === null || taxYear < 1900 || taxYear > 2200) continue;
		out.push(
			compact({
				taxYear,
				fullCashValue: parseNumber(v.FullCashValue),
				limitedPropertyValue: parseNumber(v.LimitedPropertyValue),
				legalClass: parseText(v.LegalClassificationCode, 20),
				assessedFcv: parseNumber(v.AssessedFCV),
				assessedLpv: parseNumber(v.AssessedLPV),
			}) as ValuationRecord,
		);
	}
	for (const v of out) v.fullCashValue ??= null;
	return out.sort((a, b) => b.taxYear - a.taxYear);
}

function residentialFactsOf(r: unknown, lotSize: number | null): ParcelFacts {
	const facts: ParcelFacts = { lotSize };
	if (isObject(r)) {
		Object.assign(facts, {
			lotSize: parseNumber(r.LotSize) ?? lotSize,
			livableSpace: parseNumber(r.LivableSpace),
			constructionYear: parseInteger(r.ConstructionYear),
			bathFixtures: parseInteger(r.BathFixtures),
			pool: parseBool(r.Pool),
			garages: parseInteger(r.NumberOfGarages),
			carports: parseInteger(r.NumberOfCarports),
			exteriorWalls: parseText(r.ExteriorWalls, 100),
			roofType: parseText(r.RoofType, 100),
		});
	}
	return compact(facts);
}

/**
 * `GET /parcel/{apn}` document -> record. The APN is the one asked for (the document does not
 * repeat it). The address is left out (see parseAddressResource): the bulk row gives it.
 */
export function parseParcelDetail(apnAsked: string, body: unknown): AssessorParcelRecord {
	const apn = requireApn(apnAsked, "parcel");
	if (!isObject(body)) throw new UpstreamShapeError(`parcel ${apn}: body is not an object`);
	if (!("PropertyAddress" in body) && !("Owner" in body) && !("MCR" in body)) {
		throw new UpstreamShapeError(`parcel ${apn}: none of the documented fields`);
	}
	const lotSize = parseNumber(body.LotSize);
	const geo = isObject(body.Geo) ? body.Geo : {};
	const lat = parseNumber(geo.lat);
	const long = parseNumber(geo.long);
	return compact({
		apn,
		origin: "parcel" as const,
		propertyType: propertyTypeOf(body.PropertyType),
		subdivision: parseText(body.SubdivisionName),
		mcr: parseText(body.MCR, 20),
		useCode: parseText(body.PropertyUseCode, 20),
		zoning: parseText(body.Zoning, 40),
		isRental: parseBool(body.IsRental),
		lat: lat !== null && lat >= -90 && lat <= 90 ? lat : null,
		long: long !== null && long >= -180 && long <= 180 ? long : null,
		owner: ownerOf(body.Owner),
		valuations: valuationsOf(body.Valuations),
		facts: residentialFactsOf(body.ResidentialPropertyData, lotSize),
	});
}

/**
 * `GET /parcel/{apn}/address` -> address; null for the `[]` a missing parcel's sub-resource gives.
 * Used when no bulk row gave the address: the detail's one-line "4027 N 55TH AVE PHOENIX 85031" has
 * no separator between street and city, so it is not cut up by guesswork.
 */
export function parseAddressResource(body: unknown): AssessorParcelRecord["address"] {
	if (Array.isArray(body) && body.length === 0) return null;
	if (!isObject(body)) throw new UpstreamShapeError("address: body is not an object");
	const parts = [body.StreetNumber, body.StreetDirection, body.StreetName, body.StreetSuffix]
		.map((p) => (typeof p === "string" || typeof p === "number" ? String(p).trim() : ""))
		.filter(Boolean);
	if (parts.length < 2) throw new UpstreamShapeError("address: no street number and name");
	const unit = parseText(body.Unit, 20);
	return compact({
		street: unit ? `${parts.join(" ")} UNIT ${unit}` : parts.join(" "),
		city: parseText(body.City, 80),
		state: "AZ",
		zip: zipOf(body.Zip),
	});
}

// --- GIS layer --------------------------------------------------------------------------------

export interface GisPage {
	rows: GisRow[];
	exceededTransferLimit: boolean;
}

export interface GisRow {
	apn: string;
	propertyType: AssessorPropertyType | null;
	record: AssessorParcelRecord;
	/** The row's attributes as received (kept as the raw record). */
	attributes: Json;
}

/** ArcGIS error answered with HTTP 200: `{"error":{"code":400,"message":...}}`. */
export class GisQueryError extends Error {
	readonly code: number;
	constructor(code: number, message: string) {
		super(`GIS query error ${code}: ${message}`);
		this.name = "GisQueryError";
		this.code = code;
	}
}

export function parseGisPage(
	body: unknown,
	fields: Record<GisFact, string | null> = DEFAULT_GIS_FIELDS,
): GisPage {
	if (!isObject(body)) throw new UpstreamShapeError("gis: body is not an object");
	if (isObject(body.error)) {
		const code = typeof body.error.code === "number" ? body.error.code : 0;
		const details = Array.isArray(body.error.details) ? ` (${body.error.details.join("; ")})` : "";
		throw new GisQueryError(code, `${String(body.error.message ?? "unknown error")}${details}`);
	}
	if (!Array.isArray(body.features)) throw new UpstreamShapeError("gis: features is not a list");
	const rows = body.features.map((f, i) => {
		if (!isObject(f) || !isObject(f.attributes))
			throw new UpstreamShapeError(`gis: feature ${i} has no attributes`);
		return gisRowOf(f.attributes, i, fields);
	});
	return { rows, exceededTransferLimit: body.exceededTransferLimit === true };
}

/**
 * What each fact is called on the GIS layer. Public code that reads the layer names fields
 * differently (`PUC` or `USE_CODE`, `LAND_SIZE` or `LAND_SQF`, `CONST_YEAR` or `YR_BLT`), so the
 * names are configuration (MARICOPA_GIS_FIELDS), checked at start against the layer's own list.
 */
export { DEFAULT_GIS_FIELDS, type GisFact, type GisFieldNames } from "../config/maricopa.ts";

/** Without these a row cannot be keyed or paged by ZIP. */
export const REQUIRED_GIS_FACTS: readonly GisFact[] = ["apn", "zip", "address"];

/**
 * A GIS row as a parcel record. `fields` maps each fact to its layer field; a fact mapped to null is
 * absent from the layer (a gap the caller reports).
 */
export function gisRowOf(
	a: Json,
	i: number,
	fields: Record<GisFact, string | null> = DEFAULT_GIS_FIELDS,
): GisRow {
	const f = (fact: GisFact) => (fields[fact] ? a[fields[fact]] : undefined);
	const apn = requireApn(f("apn"), `gis feature ${i}`);
	const propertyType = propertyTypeFromUseCode(f("useCode"));
	const street = parseText(f("address"));
	const owner = parseText(f("owner"));
	const taxYear = parseInteger(f("taxYear"));
	const fcv = parseNumber(f("fullCashValue"));
	const lat = parseNumber(f("lat"));
	const long = parseNumber(f("long"));
	const record: AssessorParcelRecord = compact({
		apn,
		origin: "gis" as const,
		address: street ? { street, city: parseText(f("city"), 80), state: "AZ", zip: zipOf(f("zip")) } : null,
		propertyType: propertyType === "OTHER" ? null : propertyType,
		subdivision: parseText(f("subdivision")),
		mcr: parseText(f("mcr"), 20),
		useCode: parseText(f("useCode"), 20),
		lat: lat !== null && lat >= -90 && lat <= 90 ? lat : null,
		long: long !== null && long >= -180 && long <= 180 ? long : null,
		owner: owner ? { name: owner } : null,
		valuations:
			taxYear !== null && taxYear >= 1900 && taxYear <= 2200 && fcv !== null
				? [compact({ taxYear, fullCashValue: fcv, limitedPropertyValue: parseNumber(f("limitedValue")) })]
				: undefined,
		facts: compact({
			lotSize: parseNumber(f("lotSize")),
			livableSpace: parseNumber(f("livingSpace")),
			constructionYear: parseInteger(f("constructionYear")),
		}),
	});
	return { apn, propertyType, record, attributes: a };
}
