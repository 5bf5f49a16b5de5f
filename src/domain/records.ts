/**
 * The normalized records collectors hand to the store (`properties.merge`). Collectors parse the
 * upstream shapes (Assessor REST/GIS JSON, MLS pages) into these; the store validates them again at
 * its edge with the schemas below and merges them into one canonical property per parcel.
 *
 * Conventions: numbers are numbers (padding and thousands separators already stripped), money in
 * whole US dollars, dates ISO `YYYY-MM-DD` (or `YYYY-MM` when only the month is known), absent facts
 * are `null` or omitted. A field left out (undefined) means "this record does not say"; the store
 * keeps what an earlier record of the same source said (the GIS layer gives core facts, the REST
 * parcel details add owner and valuations to the same parcel).
 */

/** Sources that feed canonical properties. Both the GIS layer and the REST API are "maricopa". */
export const PROPERTY_SOURCES = ["maricopa", "mls"] as const;
export type PropertySource = (typeof PROPERTY_SOURCES)[number];

export interface RecordAddress {
	/** Street line as written upstream: "4027 N 55TH AVE", "5219 W EL CAMINITO Drive #12". */
	street: string;
	city?: string | null;
	/** Two-letter state; Assessor records are all "AZ". */
	state?: string | null;
	/** Five-digit ZIP (a ZIP+4 is accepted and cut to five). */
	zip?: string | null;
}

export interface OwnerRecord {
	name: string;
	mailingAddress?: string | null;
	mailingCity?: string | null;
	mailingState?: string | null;
	mailingZip?: string | null;
	/** YYYY-MM-DD */
	deedDate?: string | null;
	deedType?: string | null;
	salePrice?: number | null;
	/** YYYY-MM or YYYY-MM-DD */
	saleDate?: string | null;
}

export interface ValuationRecord {
	taxYear: number;
	fullCashValue: number | null;
	limitedPropertyValue?: number | null;
	legalClass?: string | null;
	assessedFcv?: number | null;
	assessedLpv?: number | null;
}

export interface ParcelFacts {
	lotSize?: number | null;
	livableSpace?: number | null;
	constructionYear?: number | null;
	bathFixtures?: number | null;
	pool?: boolean | null;
	garages?: number | null;
	carports?: number | null;
	exteriorWalls?: string | null;
	roofType?: string | null;
}

/** One parcel as the Assessor describes it (GIS layer row, search result or REST parcel details). */
export interface AssessorParcelRecord {
	/** Any usual form: "10306005", "103-06-005", "104-02-008A". */
	apn: string;
	/** Which Assessor view produced the record; informational (all merge as source "maricopa"). */
	origin?: "gis" | "search" | "parcel";
	address?: RecordAddress | null;
	/** RESIDENTIAL, COMMERCIAL, VACANT LAND (upper-cased by the store). */
	propertyType?: string | null;
	subdivision?: string | null;
	mcr?: string | null;
	useCode?: string | null;
	zoning?: string | null;
	isRental?: boolean | null;
	lat?: number | null;
	long?: number | null;
	owner?: OwnerRecord | null;
	/** Newest tax year first (the store sorts anyway). */
	valuations?: ValuationRecord[];
	facts?: ParcelFacts | null;
}

export const LISTING_STATUSES = [
	"Active",
	"Pending",
	"Contingent",
	"Sold",
	"Closed",
	"Expired",
	"Withdrawn",
	"Cancelled",
] as const;
export type ListingStatus = (typeof LISTING_STATUSES)[number];

/** One MLS listing as read from its detail page (or, less complete, a search card). */
export interface MlsListingRecord {
	/** MLS number, e.g. "6937912". */
	mlsId: string;
	address: RecordAddress;
	price?: number | null;
	status?: ListingStatus | null;
	/** YYYY-MM-DD; the newest listing of a parcel wins price and status. */
	listDate?: string | null;
	beds?: number | null;
	fullBaths?: number | null;
	halfBaths?: number | null;
	sqft?: number | null;
	lotSqft?: number | null;
	yearBuilt?: number | null;
	garageSpaces?: number | null;
	pool?: string | null;
	hoaFee?: number | null;
	propertyType?: string | null;
	description?: string | null;
	/** Photo URLs (or sparkplatform photo ids). */
	photos?: string[];
	/** Detail page URL. */
	url?: string | null;
}

export type SourceRecord = AssessorParcelRecord | MlsListingRecord;

/** A merge request: which source said it, under which id, and what it said. */
export interface MergeInput {
	source: PropertySource;
	/** maricopa: the APN; mls: the MLS number. */
	sourceId: string;
	record: SourceRecord;
	/** ISO time the record was collected; defaults to the time of the merge. */
	collectedAt?: string;
}

// ---------------------------------------------------------------------------------------------
// fastest-validator schemas (the store checks every record with these before merging).

const str = (max: number) => ({ type: "string", max, optional: true, nullable: true }) as const;
const num = (min = 0, max = 1e12) => ({ type: "number", min, max, optional: true, nullable: true }) as const;
const int = (min = 0, max = 1e9) =>
	({ type: "number", integer: true, min, max, optional: true, nullable: true }) as const;
const isoDate = {
	type: "string",
	pattern: /^\d{4}-\d{2}(-\d{2})?$/,
	optional: true,
	nullable: true,
} as const;

export const addressSchema = {
	type: "object",
	strict: "remove",
	props: {
		street: { type: "string", min: 1, max: 200, trim: true },
		city: str(80),
		state: str(20),
		zip: { type: "string", pattern: /^\d{5}(-?\d{4})?$/, optional: true, nullable: true },
	},
} as const;

export const assessorParcelSchema = {
	$$root: true,
	type: "object",
	strict: "remove",
	props: {
		apn: { type: "string", pattern: /^\s*\d{3}[\s.-]?\d{2}[\s.-]?\d{3}[\s.-]?[A-Za-z]?\s*$/ },
		origin: { type: "enum", values: ["gis", "search", "parcel"], optional: true },
		address: { ...addressSchema, optional: true, nullable: true },
		propertyType: str(60),
		subdivision: str(200),
		mcr: str(20),
		useCode: str(20),
		zoning: str(40),
		isRental: { type: "boolean", optional: true, nullable: true },
		lat: num(-90, 90),
		long: num(-180, 180),
		owner: {
			type: "object",
			optional: true,
			nullable: true,
			strict: "remove",
			props: {
				name: { type: "string", min: 1, max: 200 },
				mailingAddress: str(200),
				mailingCity: str(80),
				mailingState: str(20),
				mailingZip: str(12),
				deedDate: isoDate,
				deedType: str(20),
				salePrice: num(),
				saleDate: isoDate,
			},
		},
		valuations: {
			type: "array",
			optional: true,
			max: 50,
			items: {
				type: "object",
				strict: "remove",
				props: {
					taxYear: { type: "number", integer: true, min: 1900, max: 2200 },
					fullCashValue: { type: "number", min: 0, max: 1e12, nullable: true },
					limitedPropertyValue: num(),
					legalClass: str(20),
					assessedFcv: num(),
					assessedLpv: num(),
				},
			},
		},
		facts: {
			type: "object",
			optional: true,
			nullable: true,
			strict: "remove",
			props: {
				lotSize: num(),
				livableSpace: num(),
				constructionYear: int(1800, 2200),
				bathFixtures: int(0, 1000),
				pool: { type: "boolean", optional: true, nullable: true },
				garages: int(0, 1000),
				carports: int(0, 1000),
				exteriorWalls: str(100),
				roofType: str(100),
			},
		},
	},
} as const;

export const mlsListingSchema = {
	$$root: true,
	type: "object",
	strict: "remove",
	props: {
		mlsId: { type: "string", pattern: /^[A-Za-z0-9-]{1,20}$/ },
		address: addressSchema,
		price: num(0, 1e10),
		status: { type: "enum", values: [...LISTING_STATUSES], optional: true, nullable: true },
		listDate: isoDate,
		beds: int(0, 100),
		fullBaths: int(0, 100),
		halfBaths: int(0, 100),
		sqft: num(0, 1e7),
		lotSqft: num(0, 1e9),
		yearBuilt: int(1800, 2200),
		garageSpaces: int(0, 100),
		pool: str(40),
		hoaFee: num(0, 1e6),
		propertyType: str(80),
		description: str(20_000),
		photos: { type: "array", optional: true, max: 200, items: { type: "string", min: 1, max: 500 } },
		url: str(1000),
	},
} as const;
