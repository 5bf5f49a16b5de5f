import { intRule, type SettingGroup, urlRule } from "./define.ts";
import { type HostBreakerConfig, hostBreakerSettings, toHostBreaker } from "./host-policy.ts";

export const LLM_FALLBACKS = ["rules", "none"] as const;
export type LlmFallback = (typeof LLM_FALLBACKS)[number];

const usdRule = (max: number) => ({ type: "number", convert: true, min: 0, max }) as const;

/** Enrichment by an OpenAI-compatible chat completions endpoint (llm service). */
export const llmSettings = {
	LLM_BASE_URL: {
		rule: urlRule(["http", "https"]),
		default: "http://127.0.0.1:11434/v1",
		description:
			"OpenAI-compatible API base, with its /v1 (Ollama, vLLM, llama.cpp server, OpenAI); requests go to {base}/chat/completions.",
	},
	LLM_API_KEY: {
		rule: { type: "string", min: 1, max: 500 },
		description:
			"Bearer key of the endpoint. Unset = no Authorization header (a local model). A refused key stops LLM calls cluster-wide until llm.resume.",
		secret: true,
	},
	LLM_MODEL: {
		rule: { type: "string", min: 1, max: 200 },
		default: "llama3.1",
		description: "Model asked for; part of the cache key, so changing it re-enriches every property.",
	},
	LLM_TIMEOUT_S: {
		rule: intRule(1, 3600),
		default: "120",
		description: "Time limit of one completion request (local models on CPU are slow).",
	},
	LLM_MAX_ATTEMPTS: {
		rule: intRule(1, 20),
		default: "3",
		description:
			"Attempts per request on transient errors (5xx, timeouts), and answers asked for per property when the content is not the JSON asked for, before the fallback.",
	},
	LLM_RATE_PER_MIN: {
		rule: intRule(1, 1_000_000),
		default: "600",
		description:
			"Requests per minute to the endpoint, for the whole cluster (shared budget); a local model is usually bound by LLM_CONCURRENCY first.",
	},
	...hostBreakerSettings("LLM", "LLM endpoint"),
	LLM_CONCURRENCY: {
		rule: intRule(1, 256),
		default: "4",
		description: "Properties one enrichPending enriches at once (the rate budget paces them cluster-wide).",
	},
	LLM_MAX_TOKENS: {
		rule: intRule(16, 32_000),
		default: "800",
		description: "Most completion tokens per answer (max_tokens); a longer answer is truncated and refused.",
	},
	LLM_PRICE_PROMPT_USD_PER_1K: {
		rule: usdRule(1000),
		default: "0",
		description: "Price of 1,000 prompt tokens, USD (0 = a local model).",
	},
	LLM_PRICE_COMPLETION_USD_PER_1K: {
		rule: usdRule(1000),
		default: "0",
		description: "Price of 1,000 completion tokens, USD (0 = a local model).",
	},
	LLM_BUDGET_USD_PER_DAY: {
		rule: usdRule(1_000_000),
		default: "5",
		description:
			"LLM spending cap per UTC day for the whole cluster, USD; past it properties get the fallback. 0 = never spend (a free local model still runs).",
	},
	LLM_TOKENS_PER_DAY: {
		rule: intRule(0, 1_000_000_000_000),
		default: "0",
		description: "Token cap (prompt + completion) per UTC day for the whole cluster; 0 = no token cap.",
	},
	LLM_CACHE_TTL_H: {
		rule: intRule(0, 24 * 3650),
		default: "720",
		description:
			"How long an answer is reused for identical facts and model (cluster-wide cache); 0 = no cache.",
	},
	LLM_FALLBACK: {
		rule: { type: "enum", values: [...LLM_FALLBACKS] },
		default: "rules",
		description:
			"When the LLM cannot answer (budget spent, key refused, endpoint down, invalid answers): rules = a rule-based enrichment marked source 'rules'; none = record a failure.",
	},
} satisfies SettingGroup;

export interface LlmConfig {
	baseUrl: string;
	apiKey: string | null;
	model: string;
	timeoutMs: number;
	maxAttempts: number;
	ratePerMin: number;
	breaker: HostBreakerConfig;
	concurrency: number;
	maxTokens: number;
	pricePromptUsdPer1k: number;
	priceCompletionUsdPer1k: number;
	budgetUsdPerDay: number;
	/** 0 = no token cap. */
	tokensPerDay: number;
	/** 0 = no cache. */
	cacheTtlMs: number;
	fallback: LlmFallback;
}

export function toLlmConfig(v: Record<string, unknown>): LlmConfig {
	return {
		baseUrl: (v.LLM_BASE_URL as string).replace(/\/+$/, ""),
		apiKey: (v.LLM_API_KEY as string | undefined) ?? null,
		model: v.LLM_MODEL as string,
		timeoutMs: (v.LLM_TIMEOUT_S as number) * 1000,
		maxAttempts: v.LLM_MAX_ATTEMPTS as number,
		ratePerMin: v.LLM_RATE_PER_MIN as number,
		breaker: toHostBreaker(v, "LLM"),
		concurrency: v.LLM_CONCURRENCY as number,
		maxTokens: v.LLM_MAX_TOKENS as number,
		pricePromptUsdPer1k: v.LLM_PRICE_PROMPT_USD_PER_1K as number,
		priceCompletionUsdPer1k: v.LLM_PRICE_COMPLETION_USD_PER_1K as number,
		budgetUsdPerDay: v.LLM_BUDGET_USD_PER_DAY as number,
		tokensPerDay: v.LLM_TOKENS_PER_DAY as number,
		cacheTtlMs: (v.LLM_CACHE_TTL_H as number) * 3_600_000,
		fallback: v.LLM_FALLBACK as LlmFallback,
	};
}
