/**
 * llm: property enrichment by any OpenAI-compatible endpoint (src/llm/): description, key features,
 * investment analysis and quality score, stored on the canonical property. Answers are cached by
 * input hash, spending is capped per UTC day for the whole cluster, the endpoint is paced by the
 * host's cluster-wide policy (src/core/host-policy.ts), and the rules fallback answers when the LLM
 * cannot (LLM_FALLBACK).
 *
 * Actions:
 * - `enrich` { key, force? } -> { key, status, enrichment, fallbackReason } (computed, cached, stored;
 *   a current enrichment is returned as it is unless `force`)
 * - `enrichPending` { zip } | { zips }, jobId?, taskId? -> { items, new, updated, unchanged, requests,
 *   failures, cached, fallback, llm, failed, ... } (the orchestrator's enrichment task)
 * - `usage` {} -> today's requests, tokens, cost, budget left, cache hits, fallbacks
 * - `status` {}, `resume` {} -> the endpoint's budget, pause and breaker; clear a stop after the key
 *   was replaced (polite-host mixin)
 */
import moleculer, { type Context } from "moleculer";
import { type PoliteHostSchema, politeHostMixin } from "../mixins/polite-host.mixin.ts";
import { type EnrichParams, type EnrichPendingParams, enrichParams } from "../src/contracts/llm.ts";
import { callStore, findPage } from "../src/contracts/store.ts";
import { DependencyUnavailableError, NotFoundError } from "../src/core/errors.ts";
import type { HostPolicy } from "../src/core/host-policy.ts";
import { normalizeApn } from "../src/domain/apn.ts";
import { ZIP_PARAM } from "../src/jobs/plan.ts";
import { collectZipParams, runSourceTask } from "../src/jobs/source-contract.ts";
import { LlmBudget } from "../src/llm/budget.ts";
import { LlmClient } from "../src/llm/client.ts";
import { Enricher, type EnricherEvent, type EnrichmentStore } from "../src/llm/enricher.ts";
import type { ServiceFactory } from "../src/node/context.ts";
import { redact } from "../src/utils/redact.ts";

const { ValidationError } = moleculer.Errors;

const M = {
	requests: "saguaro_llm_requests_total",
	tokens: "saguaro_llm_tokens_total",
	cost: "saguaro_llm_cost_usd_total",
	enrichments: "saguaro_llm_enrichments_total",
	cacheHits: "saguaro_llm_cache_hits_total",
	fallbacks: "saguaro_llm_fallbacks_total",
	failures: "saguaro_llm_failures_total",
} as const;

/** How long enrichPending waits for the store's services to be discovered before giving up. */
const STORE_WAIT_MS = 30_000;

const llmService: ServiceFactory = ({ config, state }) => {
	const c = config.llm;
	let policy: HostPolicy;
	let budget: LlmBudget;
	let client: LlmClient;
	let onEvent: (e: EnricherEvent) => void;

	const storeVia = (ctx: Context): EnrichmentStore => ({
		get: (key) => callStore(ctx, "properties.get", { key }),
		page: (zip, page, pageSize) => findPage(ctx, { zip, page, pageSize }),
		async setEnrichment(key, enrichment, expectedInputHash) {
			return (await callStore(ctx, "properties.setEnrichment", { key, enrichment, expectedInputHash }))
				.status;
		},
	});

	const enricherFor = (ctx: Context) =>
		new Enricher({
			model: c.model,
			maxAttempts: c.maxAttempts,
			fallback: c.fallback,
			cacheTtlMs: c.cacheTtlMs,
			maxTokens: c.maxTokens,
			concurrency: c.concurrency,
			client,
			policy,
			budget,
			state,
			store: storeVia(ctx),
			onEvent,
		});

	const schema: PoliteHostSchema = {
		name: "llm",
		// Budget, pause and breaker metrics, plus `status` and `resume` actions for the endpoint.
		mixins: [politeHostMixin(state)],
		created() {
			const broker = this.broker;
			const logger = this.logger;
			policy = this.createHostPolicy({
				host: "llm",
				rate: { points: c.ratePerMin, durationMs: 60_000 },
				retry: { maxAttempts: c.maxAttempts, baseMs: 500, maxMs: 10_000 },
				breaker: c.breaker,
				// Waiting out a Retry-After or an open breaker beats a fallback, within reason.
				maxWaitMs: Math.max(60_000, c.timeoutMs),
			});
			budget = new LlmBudget(
				state,
				{ usdPerDay: c.budgetUsdPerDay, tokensPerDay: c.tokensPerDay },
				{ promptUsdPer1k: c.pricePromptUsdPer1k, completionUsdPer1k: c.priceCompletionUsdPer1k },
			);
			client = new LlmClient({
				baseUrl: c.baseUrl,
				apiKey: c.apiKey,
				model: c.model,
				timeoutMs: c.timeoutMs,
				maxTokens: c.maxTokens,
			});
			const metrics = config.core.enableMetrics ? broker.metrics : null;
			if (metrics) {
				const counter = (name: string, description: string, labelNames: string[] = []) =>
					metrics.register({ type: "counter", name, labelNames, description });
				counter(
					M.requests,
					"LLM endpoint requests by outcome (invalid_answer: a 200 whose content was refused)",
					["outcome"],
				);
				counter(M.tokens, "LLM tokens used, by kind", ["kind"]);
				counter(M.cost, "LLM spending, USD (from usage tokens and the configured prices)");
				counter(M.enrichments, "Enrichments made, by source (llm, cache, rules)", ["source"]);
				counter(M.cacheHits, "Enrichments answered from the cache");
				counter(M.fallbacks, "Enrichments made by the rules fallback, by why the LLM did not answer", [
					"reason",
				]);
				counter(M.failures, "Properties whose enrichment failed");
			}
			onEvent = (e) => {
				switch (e.type) {
					case "request":
						metrics?.increment(M.requests, { outcome: e.outcome });
						break;
					case "tokens":
						metrics?.increment(M.tokens, { kind: "prompt" }, e.usage.promptTokens);
						metrics?.increment(M.tokens, { kind: "completion" }, e.usage.completionTokens);
						if (e.costUsd > 0) metrics?.increment(M.cost, {}, e.costUsd);
						break;
					case "enriched":
						metrics?.increment(M.enrichments, { source: e.source });
						if (e.source === "cache") metrics?.increment(M.cacheHits, {});
						break;
					case "fallback":
						metrics?.increment(M.fallbacks, { reason: e.reason });
						logger.debug(`LLM fallback (${e.reason}): ${redact(e.detail)}`);
						break;
					case "failure":
						metrics?.increment(M.failures, {});
						logger.debug(`Enrichment of ${e.key} failed: ${redact(e.reason)}`);
						break;
					case "stopped":
						logger.warn(
							`LLM calls are stopped for the whole cluster (${redact(e.reason)}); ${
								c.fallback === "rules" ? "properties get the rules fallback" : "enrichments fail"
							} until llm.resume.`,
						);
				}
			};
		},
		actions: {
			enrich: {
				params: enrichParams,
				async handler(ctx: Context<EnrichParams>) {
					const key = normalizeApn(ctx.params.key) ?? ctx.params.key;
					const row = await callStore(ctx, "properties.get", { key });
					if (!row) throw new NotFoundError(`no property ${ctx.params.key}`);
					return redact(await enricherFor(ctx).enrich(row, { force: ctx.params.force ?? false }));
				},
			},
			enrichPending: {
				params: {
					zip: { ...ZIP_PARAM, optional: true },
					zips: {
						type: "array",
						items: ZIP_PARAM,
						min: 1,
						max: 1000,
						optional: true,
					},
					jobId: collectZipParams.jobId,
					taskId: collectZipParams.taskId,
					attempt: collectZipParams.attempt,
				},
				async handler(ctx: Context<EnrichPendingParams>) {
					const zips = [
						...new Set([...(ctx.params.zip ? [ctx.params.zip] : []), ...(ctx.params.zips ?? [])]),
					];
					if (zips.length === 0) {
						throw new ValidationError("enrichPending needs a zip or zips", "VALIDATION_ERROR", [
							{ field: "zips" },
						]);
					}
					await this.broker.waitForServices(["properties"], STORE_WAIT_MS).catch(() => {
						throw new DependencyUnavailableError("store", "the store (properties) is not reachable");
					});
					return runSourceTask(state, ctx.params, async (signal) =>
						redact(await enricherFor(ctx).enrichPending(zips, signal)),
					);
				},
			},
			usage: {
				async handler() {
					const today = await budget.usage();
					const fatal = await policy.fatal();
					return redact({
						...today,
						model: c.model,
						fallback: c.fallback,
						budget: {
							usdPerDay: c.budgetUsdPerDay,
							usdLeft: Math.max(0, c.budgetUsdPerDay - today.committedUsd),
							tokensPerDay: c.tokensPerDay > 0 ? c.tokensPerDay : null,
							tokensLeft: c.tokensPerDay > 0 ? Math.max(0, c.tokensPerDay - today.committedTokens) : null,
						},
						stopped: fatal ? { reason: fatal.reason, at: new Date(fatal.at).toISOString() } : null,
					});
				},
			},
			// `status` and `resume` come from the polite-host mixin.
		},
	};
	return schema;
};

export default llmService;
