/**
 * The maricopa service's actions (services/maricopa.service.ts): params schemas and types. Its
 * `collectZip` is the source contract's (src/jobs/source-contract.ts) with `force`
 * (src/contracts/params.ts).
 */
import type { ParamsSchema } from "./params.ts";

/**
 * `searchZip`: one page of a ZIP's parcels from the GIS layer or the REST search (a probe; jobs use
 * `collectZip`). The zip's rule is the source contract's; `via` and `page` have defaults.
 */
export interface SearchZipParams {
	zip: string;
	via: "gis" | "search";
	page: number;
}

/** `searchZip`'s own rules, beside the source contract's zip. */
export const searchZipOptionParams = {
	via: { type: "enum", values: ["gis", "search"], default: "gis" },
	page: { type: "number", integer: true, min: 1, max: 100_000, default: 1, convert: true },
} as const satisfies ParamsSchema<Omit<SearchZipParams, "zip">>;

/** `parcel`: one parcel's REST details, stored unless `store: false`. */
export interface ParcelParams {
	apn: string;
	store: boolean;
}

export const parcelParams = {
	apn: { type: "string", min: 8, max: 20 },
	store: { type: "boolean", default: true, convert: true },
} as const satisfies ParamsSchema<ParcelParams>;
