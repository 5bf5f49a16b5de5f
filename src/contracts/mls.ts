/**
 * The MLS service's actions read by other modules (the REPL), with a typed `callMls`.
 */
import type { HostStatus } from "../core/host-policy.ts";
import { type Action, callerOf } from "./call.ts";
import type { ParamsSchema } from "./params.ts";

/** `searchZip`: its schema is the source contract's zip rule (src/jobs/source-contract.ts). */
export interface SearchZipParams {
	zip: string;
}

/** `listing`: one listing page, on MLS_BASE_URL's site. */
export interface ListingParams {
	url: string;
}

export const listingParams = { url: { type: "url" } } as const satisfies ParamsSchema<ListingParams>;

/** `searchZip`'s answer: every listing card of a ZIP, across result pages. */
export interface SearchSummary {
	zip: string;
	pages: number;
	/** False when the search stopped at MLS_MAX_PAGES. */
	complete: boolean;
	cards: { mlsId: string; url: string; address: string | null }[];
}

/** The catalog (a type alias, not an interface: only aliases fit `ActionCatalog`). */
export type MlsActions = {
	"mls.searchZip": Action<SearchZipParams, SearchSummary>;
	/** The polite-host mixin's status: one row per host policy. */
	"mls.status": Action<Record<string, never>, HostStatus[]>;
};

/** `callMls(broker, "mls.searchZip", { zip })`: an MLS call typed by its action. */
export const callMls = callerOf<MlsActions>();
