/**
 * The llm service's actions read by other modules (the REPL), with a typed `callLlm`.
 */
import { type Action, callerOf } from "./call.ts";
import type { TaskCounts } from "./orchestrator.ts";

/**
 * The source contract's counts (items: properties looked at; requests: HTTP requests to the LLM
 * endpoint, retries included), plus where the enrichments came from.
 */
export interface EnrichPendingResult extends TaskCounts {
	zips: string[];
	/** Enrichments answered from the cache / by the rules fallback / by the LLM, this run. */
	cached: number;
	fallback: number;
	llm: number;
	/** The first failures, with their reasons. */
	failed: { key: string; reason: string }[];
	durationMs: number;
}

/** The catalog (a type alias, not an interface: only aliases fit `ActionCatalog`). */
export type LlmActions = {
	"llm.enrichPending": Action<
		{ zip?: string; zips?: string[]; jobId?: string; taskId?: string; attempt?: number },
		EnrichPendingResult
	>;
};

/** `callLlm(broker, "llm.enrichPending", { zip })`: an llm call typed by its action. */
export const callLlm = callerOf<LlmActions>();
