/**
 * Enriching properties: facts -> cache, else the LLM (within the daily budget, through the host's
 * cluster-wide policy), else the rules fallback -> stored on the property by a conditional write.
 *
 * - Cache: answers are kept in the shared state under their input hash (facts + model + prompt
 *   version) for `cacheTtlMs`, so identical inputs are answered without a request, on any node.
 * - Budget: every request reserves its worst case first (budget.ts); a refused reservation means
 *   the fallback, never an overspend.
 * - The LLM is asked up to `maxAttempts` times for a valid answer (the policy retries transport
 *   faults within each); a refused key stops every node's calls (HostPolicy fatal stop).
 * - Stored only while the facts it was made from are still the property's facts: the store
 *   refuses a stale enrichment, and this module reads the property again and starts over.
 *
 * The store and the broker are reached through `EnrichmentStore`, so this stays testable and thin.
 */
import type { EnrichPendingResult } from "../contracts/llm.ts";
import type { EnrichmentVerdict, MergeVerdict, PropertyRow } from "../contracts/store.ts";
import { UpstreamError } from "../core/errors.ts";
import { HostFatalError, type HostPolicy, HostRequestError } from "../core/host-policy.ts";
import { inputHash, type PropertyFacts, propertyFacts, RULES_MODEL } from "../domain/enrichment-input.ts";
import {
	canonicalJson,
	type EnrichmentContent,
	type EnrichmentSource,
	type PropertyEnrichment,
} from "../domain/property.ts";
import { EMPTY_COUNTS } from "../jobs/types.ts";
import type { SharedState } from "../shared-state/index.ts";
import { AnswerError, parseAnswer } from "./answer.ts";
import type { LlmBudget } from "./budget.ts";
import type { Completion, LlmClient, LlmRequestOutcome } from "./client.ts";
import { costUsd, requestBound, type TokenUsage } from "./cost.ts";
import { rulesEnrichment } from "./fallback.ts";
import { buildMessages } from "./prompt.ts";

export type { PropertyRow };

export interface EnrichmentStore {
	get(key: string): Promise<PropertyRow | null>;
	page(zip: string, page: number, pageSize: number): Promise<{ rows: PropertyRow[]; totalPages: number }>;
	setEnrichment(
		key: string,
		enrichment: PropertyEnrichment,
		expectedInputHash: string,
	): Promise<EnrichmentVerdict>;
}

/** Why a property got the fallback (metrics label values). */
export type FallbackReason = "budget" | "stopped" | "unavailable" | "invalid_answer";

export type EnricherEvent =
	| { type: "request"; outcome: LlmRequestOutcome | "invalid_answer" }
	| { type: "tokens"; usage: TokenUsage; costUsd: number }
	| { type: "enriched"; source: EnrichmentSource }
	| { type: "fallback"; reason: FallbackReason; detail: string }
	| { type: "failure"; key: string; reason: string }
	/** The endpoint is stopped cluster-wide (key refused); reported once until a call succeeds again. */
	| { type: "stopped"; reason: string };

export interface EnricherOptions {
	model: string;
	/** Answers asked for per property when the content is not valid. */
	maxAttempts: number;
	fallback: "rules" | "none";
	/** 0 = no cache. */
	cacheTtlMs: number;
	maxTokens: number;
	/** Properties enriched at once by enrichPending. */
	concurrency: number;
	client: LlmClient;
	policy: HostPolicy;
	budget: LlmBudget;
	state: SharedState;
	store: EnrichmentStore;
	onEvent?: (e: EnricherEvent) => void;
	now?: () => number;
}

/** The LLM could not give an answer; the fallback (or a failure) follows. */
/** With LLM_FALLBACK=none an enrichment the LLM could not make: an upstream fault, not this node's. */
export class LlmUnavailableError extends UpstreamError {
	readonly reason: FallbackReason;
	constructor(reason: FallbackReason, message: string) {
		super(message, { type: "LLM_UNAVAILABLE", retryable: false, data: { reason, upstream: true } });
		this.reason = reason;
	}
}

/** Counts of one enrichPending or enrich call. */
export interface Tally {
	requests: number;
}

/** What an enrichment did to the property: the store's merge verdict. */
export type EnrichStatus = MergeVerdict;

export interface EnrichOutcome {
	key: string;
	status: EnrichStatus;
	enrichment: PropertyEnrichment;
	/** Set when the rules fallback answered: why the LLM did not. */
	fallbackReason: string | null;
}

export type { EnrichPendingResult } from "../contracts/llm.ts";

interface Made {
	content: EnrichmentContent;
	source: EnrichmentSource;
	model: string;
	hash: string;
	tokensUsed: number;
	fallbackReason: string | null;
}

interface CachedAnswer {
	content: EnrichmentContent;
	tokensUsed: number;
}

export const PAGE_SIZE = 100;
const MAX_LISTED_FAILURES = 20;
/** Rounds of re-reading a property whose facts changed while it was enriched. */
const STALE_ROUNDS = 3;
const cacheKey = (hash: string) => `llm:cache:${hash}`;

export class Enricher {
	readonly options: EnricherOptions;
	#stoppedReported = false;

	constructor(options: EnricherOptions) {
		this.options = options;
	}

	#emit(e: EnricherEvent) {
		this.options.onEvent?.(e);
	}

	#now(): number {
		return (this.options.now ?? Date.now)();
	}

	/** Enrich one property unless its stored enrichment is current (`force`: enrich anyway). */
	async enrich(
		row: PropertyRow,
		opts: { force?: boolean; signal?: AbortSignal; tally?: Tally } = {},
	): Promise<EnrichOutcome> {
		const tally = opts.tally ?? { requests: 0 };
		let current: PropertyRow = row;
		for (let round = 1; round <= STALE_ROUNDS; round++) {
			const facts = propertyFacts(current);
			const existing = current.enrichment ?? null;
			const upToDate = existing?.processing.inputHash === inputHash(facts, this.options.model);
			if (existing && upToDate && !opts.force) {
				return { key: current.key, status: "unchanged", enrichment: existing, fallbackReason: null };
			}
			const started = this.#now();
			const made = await this.#make(facts, tally, opts.signal);
			this.#emit({ type: "enriched", source: made.source });
			if (existing && sameEnrichment(existing, made)) {
				// The fallback again, word for word: nothing to write.
				return {
					key: current.key,
					status: "unchanged",
					enrichment: existing,
					fallbackReason: made.fallbackReason,
				};
			}
			const enrichment: PropertyEnrichment = {
				...made.content,
				processing: {
					llm_model: made.model,
					tokens_used: made.tokensUsed,
					processing_time_ms: this.#now() - started,
					source: made.source,
					inputHash: made.hash,
					enrichedAt: new Date(this.#now()).toISOString(),
				},
			};
			const verdict = await this.options.store.setEnrichment(current.key, enrichment, made.hash);
			if (verdict === "stored") {
				return {
					key: current.key,
					status: existing ? "updated" : "new",
					enrichment,
					fallbackReason: made.fallbackReason,
				};
			}
			const again = verdict === "stale" ? await this.options.store.get(current.key) : null;
			if (!again) throw new Error(`property ${current.key} is gone (merged into another property)`);
			current = again;
		}
		throw new Error(`property ${row.key} kept changing while it was enriched (${STALE_ROUNDS} rounds)`);
	}

	/** Enrich every property of the ZIPs whose enrichment is missing or out of date. */
	async enrichPending(zips: string[], signal?: AbortSignal): Promise<EnrichPendingResult> {
		const started = this.#now();
		const tally: Tally = { requests: 0 };
		const result: EnrichPendingResult = {
			zips,
			...EMPTY_COUNTS,
			cached: 0,
			fallback: 0,
			llm: 0,
			failed: [],
			durationMs: 0,
		};
		const one = async (row: PropertyRow) => {
			result.items++;
			try {
				const out = await this.enrich(row, { signal, tally });
				result[out.status]++;
				if (out.fallbackReason !== null) result.fallback++;
				else if (out.status !== "unchanged") {
					if (out.enrichment.processing.source === "cache") result.cached++;
					else result.llm++;
				}
			} catch (err) {
				if (signal?.aborted) throw err;
				const reason = (err as Error).message;
				result.failures++;
				if (result.failed.length < MAX_LISTED_FAILURES) result.failed.push({ key: row.key, reason });
				this.#emit({ type: "failure", key: row.key, reason });
				await this.options.budget.count("failures").catch(() => undefined);
			}
		};
		for (const zip of zips) {
			// Enrichment writes change no property's place in the key order, so pages stay stable.
			for (let page = 1, pages = 1; page <= pages; page++) {
				signal?.throwIfAborted();
				const res = await this.options.store.page(zip, page, PAGE_SIZE);
				pages = res.totalPages;
				await inParallel(res.rows, this.options.concurrency, one, signal);
			}
		}
		result.requests = tally.requests;
		result.durationMs = this.#now() - started;
		return result;
	}

	/** The enrichment of `facts`: cache, else LLM, else fallback (or LlmUnavailableError when none). */
	async #make(facts: PropertyFacts, tally: Tally, signal?: AbortSignal): Promise<Made> {
		const { model, cacheTtlMs, state, budget } = this.options;
		const hash = inputHash(facts, model);
		if (cacheTtlMs > 0) {
			const cached = await state.get<CachedAnswer>(cacheKey(hash));
			if (cached) {
				await budget.count("cacheHits");
				return { content: cached.content, source: "cache", model, hash, tokensUsed: 0, fallbackReason: null };
			}
		}
		try {
			const answer = await this.#ask(facts, tally, signal);
			if (cacheTtlMs > 0) await state.set(cacheKey(hash), answer, cacheTtlMs);
			return { ...answer, source: "llm", model, hash, fallbackReason: null };
		} catch (err) {
			if (!(err instanceof LlmUnavailableError) || signal?.aborted) throw err;
			if (this.options.fallback === "none") throw err;
			await budget.count("fallbacks");
			this.#emit({ type: "fallback", reason: err.reason, detail: err.message });
			return {
				content: rulesEnrichment(facts),
				source: "rules",
				model: RULES_MODEL,
				hash: inputHash(facts, RULES_MODEL),
				tokensUsed: 0,
				fallbackReason: err.message,
			};
		}
	}

	/** A valid answer from the LLM, or LlmUnavailableError saying why there is none. */
	async #ask(facts: PropertyFacts, tally: Tally, signal?: AbortSignal): Promise<CachedAnswer> {
		const { client, policy, budget, maxAttempts, maxTokens } = this.options;
		const messages = buildMessages(facts);
		const bound = requestBound(messages, maxTokens);
		let lastProblem = "";
		for (let attempt = 1; attempt <= maxAttempts; attempt++) {
			const reservation = await budget.reserve(bound);
			if (typeof reservation === "string") throw new LlmUnavailableError("budget", reservation);
			let completion: Completion;
			try {
				completion = await policy.run(
					"chat",
					async () => {
						tally.requests++;
						await budget.count("requests");
						const classified = await client.attempt(messages, signal);
						this.#emit({ type: "request", outcome: classified.outcome });
						return classified.attempt;
					},
					signal,
				);
			} catch (err) {
				// No answer came back, so nothing was charged (a timed-out request may have been: the
				// provider's bill is the truth there).
				await budget.settle(reservation, null);
				if (err instanceof HostFatalError) {
					if (!this.#stoppedReported) {
						this.#stoppedReported = true;
						this.#emit({ type: "stopped", reason: err.reason });
					}
					throw new LlmUnavailableError("stopped", `LLM calls are stopped: ${err.reason}`);
				}
				if (err instanceof HostRequestError) throw new LlmUnavailableError("unavailable", err.message);
				throw err;
			}
			this.#stoppedReported = false;
			// No usage reported: count the worst case rather than nothing.
			const used = completion.usage ?? bound;
			await budget.settle(reservation, used);
			this.#emit({ type: "tokens", usage: used, costUsd: costUsd(used, budget.prices) });
			try {
				const content = parseAnswer(completion.content, completion.finishReason);
				return { content, tokensUsed: used.promptTokens + used.completionTokens };
			} catch (err) {
				if (!(err instanceof AnswerError)) throw err;
				lastProblem = err.message;
				this.#emit({ type: "request", outcome: "invalid_answer" });
			}
		}
		throw new LlmUnavailableError(
			"invalid_answer",
			`no valid answer in ${maxAttempts} attempt${maxAttempts === 1 ? "" : "s"}: ${lastProblem}`,
		);
	}
}

/** A fresh fallback that says what the stored one says (timing and date aside). */
function sameEnrichment(existing: PropertyEnrichment, made: Made): boolean {
	const { processing, ...content } = existing;
	return (
		made.source === "rules" &&
		processing.source === "rules" &&
		processing.inputHash === made.hash &&
		canonicalJson(content) === canonicalJson(made.content)
	);
}

/** Run `fn` over `items`, `limit` at a time; the first rejection (a cancel) stops taking new items. */
async function inParallel<T>(
	items: T[],
	limit: number,
	fn: (item: T) => Promise<void>,
	signal?: AbortSignal,
): Promise<void> {
	let next = 0;
	let failed = false;
	const worker = async () => {
		while (next < items.length && !failed) {
			signal?.throwIfAborted();
			const item = items[next++] as T;
			try {
				await fn(item);
			} catch (err) {
				failed = true;
				throw err;
			}
		}
	};
	const settled = await Promise.allSettled(
		Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker),
	);
	const crashed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
	if (crashed) throw crashed.reason;
}
