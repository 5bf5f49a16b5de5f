/**
 * The llm service's actions read by other modules (the REPL), with a typed `callLlm`.
 */
import { type Action, callerOf } from "./call.ts";
import type { TaskCounts } from "./orchestrator.ts";
import { forceParams, type ParamsSchema } from "./params.ts";

/** `enrich`: one property, by its key (an APN is normalized); `force` asks again past the cache. */
export interface EnrichParams {
	key: string;
	force?: boolean;
}

export const enrichParams = {
	key: { type: "string", min: 1, max: 300 },
	...forceParams,
} as const satisfies ParamsSchema<EnrichParams>;

/**
 * `enrichPending`: the properties of a ZIP (or several) not enriched yet, as a source task. Its
 * rules are the source contract's (src/jobs/source-contract.ts: zip, job, task, attempt).
 */
export interface EnrichPendingParams {
	zip?: string;
	zips?: string[];
	jobId?: string;
	taskId?: string;
	/** This attempt's id (its lease token). */
	attempt?: string;
}

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
	"llm.enrichPending": Action<EnrichPendingParams, EnrichPendingResult>;
};

/** `callLlm(broker, "llm.enrichPending", { zip })`: an llm call typed by its action. */
export const callLlm = callerOf<LlmActions>();
