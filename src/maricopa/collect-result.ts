/**
 * What collecting a page (or a whole ZIP) of Maricopa parcels reports (src/maricopa/collect.ts), and
 * its bookkeeping: the empty result, a failure listed, the counts per parcel, pages added up.
 */
import type { MergeVerdict } from "../contracts/store.ts";
import type { RequestTally } from "./http.ts";

export interface ParcelFailure {
	apn: string;
	reason: string;
}

export interface CollectResult {
	zip: string;
	/** The page collected (1-based), or null for a whole ZIP. */
	page: number | null;
	/** Page 1 only: the ZIP's parcels and pages (the source contract's `expect`). */
	expect: { items: number; pages: number } | null;
	/** Where the parcel list came from. */
	bulkSource: "gis" | "search";
	/** Why the GIS layer was not used, when it was not. */
	bulkFallbackReason: string | null;
	/** Parcels of the page (or ZIP). */
	parcels: number;
	new: number;
	updated: number;
	unchanged: number;
	/** Parcels whose REST details were fetched this run. */
	detailsFetched: number;
	/** Parcels of a detail type skipped because their details are fresh and their facts unchanged. */
	detailsFresh: number;
	/** Listed in bulk but unknown to the REST API (404). */
	notFound: number;
	/** Parcels stored without a property type or an address (see `missingLayerFields`). */
	gaps: number;
	/** Facts the GIS layer does not have under their configured names. */
	missingLayerFields: string[];
	failures: number;
	failed: ParcelFailure[];
	/** HTTP requests made (retries included), by kind, and their total. */
	requestsByKind: RequestTally;
	requests: number;
	/** Requests per parcel, by kind. */
	requestsPerParcel: { bulk: number; detail: number; total: number };
	/** Store round trips the writes took (the store counts them). */
	storeRoundTrips: number;
	durationMs: number;
}

/** Failures listed in a result (the count is exact, the list is capped to keep replies small). */
const MAX_LISTED_FAILURES = 50;
export function emptyResult(zip: string, page: number | null, tally: RequestTally): CollectResult {
	return {
		zip,
		page,
		expect: null,
		bulkSource: "gis",
		bulkFallbackReason: null,
		parcels: 0,
		new: 0,
		updated: 0,
		unchanged: 0,
		detailsFetched: 0,
		detailsFresh: 0,
		notFound: 0,
		gaps: 0,
		missingLayerFields: [],
		failures: 0,
		failed: [],
		requestsByKind: tally,
		requests: 0,
		requestsPerParcel: { bulk: 0, detail: 0, total: 0 },
		storeRoundTrips: 0,
		durationMs: 0,
	};
}

/** Adds a later page's counts to a whole ZIP's result (page 1's). */
export function addPage(total: CollectResult, r: CollectResult): void {
	for (const k of ["parcels", "new", "updated", "unchanged", "detailsFetched", "detailsFresh"] as const)
		total[k] += r[k];
	for (const k of ["notFound", "gaps", "failures", "storeRoundTrips", "durationMs"] as const)
		total[k] += r[k];
	total.failed.push(...r.failed.slice(0, MAX_LISTED_FAILURES - total.failed.length));
	total.requestsByKind.bulk += r.requestsByKind.bulk;
	total.requestsByKind.detail += r.requestsByKind.detail;
}

export function fail(result: CollectResult, apn: string, reason: string): void {
	result.failures++;
	if (result.failed.length < MAX_LISTED_FAILURES) result.failed.push({ apn, reason: reason.slice(0, 300) });
}

export function finishCounts(result: CollectResult): CollectResult {
	const tally = result.requestsByKind;
	result.requests = tally.bulk + tally.detail;
	const n = Math.max(1, result.parcels);
	result.requestsPerParcel = {
		bulk: round(tally.bulk / n),
		detail: round(tally.detail / n),
		total: round(result.requests / n),
	};
	return result;
}

/** The verdict of a parcel written twice (bulk facts, then details). */
export function combine(a: MergeVerdict, b: MergeVerdict): MergeVerdict {
	if (a === "new" || b === "new") return "new";
	if (a === "updated" || b === "updated") return "updated";
	return "unchanged";
}

function round(x: number): number {
	return Math.round(x * 1000) / 1000;
}
