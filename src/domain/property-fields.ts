/**
 * A property's fields, derived from its sources' latest records (`Contribution`s) with a fixed per-field
 * source precedence: the assessor for parcel facts, the newest MLS listing for price, status, beds,
 * photos and description. Derived, never patched, so a merge (property.ts) is order-independent.
 * Pure: no I/O, no clock.
 */
import { addressKey, normalizeStreet, normalizeZip } from "./address.ts";
import { formatApn, normalizeApn } from "./apn.ts";
import type {
	AssessorParcelRecord,
	MlsListingRecord,
	OwnerRecord,
	PropertySource,
	SourceRecord,
	ValuationRecord,
} from "./records.ts";

export interface Contribution {
	source: PropertySource;
	sourceId: string;
	/** ISO time. */
	collectedAt: string;
	record: SourceRecord;
}

/** Fields whose every change is appended to the property's history. */
export const TRACKED_FIELDS = ["price", "status", "owner", "valuation"] as const;
export type TrackedField = (typeof TRACKED_FIELDS)[number];

export interface PropertyFields {
	apn: string | null;
	apnDisplay: string | null;
	/** Canonical street line ("5219 W EL CAMINITO DR #12"). */
	street: string | null;
	city: string | null;
	state: string | null;
	zip: string | null;
	/** Canonical street + ZIP, the join key for records without an APN. */
	addressKey: string | null;
	propertyType: string | null;
	subdivision: string | null;
	mcr: string | null;
	useCode: string | null;
	zoning: string | null;
	isRental: boolean | null;
	lat: number | null;
	long: number | null;
	lotSize: number | null;
	livableSpace: number | null;
	constructionYear: number | null;
	bathFixtures: number | null;
	pool: boolean | null;
	garages: number | null;
	carports: number | null;
	exteriorWalls: string | null;
	roofType: string | null;
	owner: OwnerRecord | null;
	/** Newest tax year's valuation. */
	valuation: ValuationRecord | null;
	valuations: ValuationRecord[];
	/** The current (newest) listing's MLS number; every listing's number is in `mlsIds`. */
	mlsId: string | null;
	mlsIds: string[];
	price: number | null;
	status: string | null;
	listDate: string | null;
	beds: number | null;
	fullBaths: number | null;
	halfBaths: number | null;
	sqft: number | null;
	hoaFee: number | null;
	photos: string[];
	description: string | null;
	listingUrl: string | null;
}

function newestListing(listings: Contribution[]): Contribution | null {
	let best: Contribution | null = null;
	const rank = (c: Contribution) => {
		const r = c.record as MlsListingRecord;
		return `${r.listDate ?? ""}|${c.collectedAt}|${c.sourceId.padStart(20, "0")}`;
	};
	for (const c of listings) if (!best || rank(c) > rank(best)) best = c;
	return best;
}

const v = <T>(x: T | null | undefined): T | null => (x === undefined ? null : x);
const first = <T>(...xs: (T | null | undefined)[]): T | null => {
	for (const x of xs) if (x !== null && x !== undefined) return x;
	return null;
};
const upper = (s: string | null | undefined) => (s ? s.trim().replace(/\s+/g, " ").toUpperCase() : null);

/** The property's fields from its contributions, by per-field source precedence. */
export function deriveFields(contributions: Contribution[]): PropertyFields {
	const assessorC = contributions.find((c) => c.source === "maricopa");
	const a = (assessorC?.record ?? null) as AssessorParcelRecord | null;
	const listingCs = contributions.filter((c) => c.source === "mls");
	const current = newestListing(listingCs);
	const l = (current?.record ?? null) as MlsListingRecord | null;

	const apn = a ? normalizeApn(a.apn) : null;
	const addr = a?.address ?? l?.address ?? null;
	const street = addr ? normalizeStreet(addr.street) : null;
	const zip = first(normalizeZip(a?.address?.zip), normalizeZip(l?.address.zip));
	const valuations = [...(a?.valuations ?? [])].sort((x, y) => y.taxYear - x.taxYear);
	const facts = a?.facts ?? null;
	return {
		apn,
		apnDisplay: apn ? formatApn(apn) : null,
		street,
		city: upper(first(a?.address?.city, l?.address.city)),
		state: upper(first(a?.address?.state, l?.address.state)) ?? (zip && /^8[56]/.test(zip) ? "AZ" : null),
		zip,
		addressKey: addr ? addressKey(addr.street, zip) : null,
		propertyType: upper(first(a?.propertyType, l?.propertyType)),
		subdivision: v(a?.subdivision),
		mcr: v(a?.mcr),
		useCode: v(a?.useCode),
		zoning: v(a?.zoning),
		isRental: v(a?.isRental),
		lat: v(a?.lat),
		long: v(a?.long),
		lotSize: first(facts?.lotSize, l?.lotSqft),
		livableSpace: first(facts?.livableSpace, l?.sqft),
		constructionYear: first(facts?.constructionYear, l?.yearBuilt),
		bathFixtures: v(facts?.bathFixtures),
		pool: first(facts?.pool, l?.pool ? /private/i.test(l.pool) : null),
		garages: first(facts?.garages, l?.garageSpaces),
		carports: v(facts?.carports),
		exteriorWalls: v(facts?.exteriorWalls),
		roofType: v(facts?.roofType),
		owner: v(a?.owner),
		valuation: valuations[0] ?? null,
		valuations,
		mlsId: l?.mlsId ?? null,
		mlsIds: listingCs.map((c) => c.sourceId).sort(),
		price: v(l?.price),
		status: v(l?.status),
		listDate: v(l?.listDate),
		beds: v(l?.beds),
		fullBaths: v(l?.fullBaths),
		halfBaths: v(l?.halfBaths),
		sqft: first(l?.sqft, facts?.livableSpace),
		hoaFee: v(l?.hoaFee),
		photos: l?.photos ?? [],
		description: v(l?.description),
		listingUrl: v(l?.url),
	};
}

export function trackedValue(f: PropertyFields, field: TrackedField): string | number | null {
	switch (field) {
		case "price":
			return f.price;
		case "status":
			return f.status;
		case "owner":
			return f.owner?.name ?? null;
		case "valuation":
			return f.valuation?.fullCashValue ?? null;
	}
}
