/**
 * The MLS service's actions read by other modules (the REPL), with a typed `callMls`.
 */
import type { HostStatus } from "../core/host-policy.ts";
import { type Action, callerOf } from "./call.ts";

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
	"mls.searchZip": Action<{ zip: string }, SearchSummary>;
	/** The polite-host mixin's status: one row per host policy. */
	"mls.status": Action<Record<string, never>, HostStatus[]>;
};

/** `callMls(broker, "mls.searchZip", { zip })`: an MLS call typed by its action. */
export const callMls = callerOf<MlsActions>();
