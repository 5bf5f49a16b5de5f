/**
 * Client of an OpenAI-compatible chat completions endpoint (shared/contracts/llm.md): Ollama, vLLM,
 * llama.cpp server, OpenAI. One `attempt` is one HTTP exchange, classified into a HostPolicy
 * `Attempt` so the caller's policy paces, pauses and retries it cluster-wide:
 *
 * - 429: rate-limited, wait Retry-After (every node); 5xx, 408, timeouts, network errors and bodies
 *   that are not a completion: transient (retry with backoff);
 * - 401/403: fatal (the key is refused; no node calls again until `llm.resume`);
 * - other 4xx (unknown model, bad request): failed, no retry.
 *
 * The content of a completion is not judged here (see answer.ts): a 200 with prose in it is a
 * good exchange with a bad answer. The key goes in the Authorization header only, never in a reason.
 */
import type { Attempt } from "../core/host-policy.ts";
import {
	classifiedExchange,
	classifyStatus,
	type HttpAnswer,
	httpExchange,
	parseJsonBody,
} from "../core/http.ts";
import { redactString } from "../utils/redact.ts";
import type { TokenUsage } from "./cost.ts";
import type { ChatMessage } from "./prompt.ts";

export interface LlmClientOptions {
	/** API base with its /v1, no trailing slash. */
	baseUrl: string;
	apiKey: string | null;
	model: string;
	timeoutMs: number;
	maxTokens: number;
}

export interface Completion {
	content: string;
	finishReason: string | null;
	/** Null when the endpoint reported no usage. */
	usage: TokenUsage | null;
}

/** Outcome tags of one exchange (metrics label values). */
export type LlmRequestOutcome =
	| "ok"
	| "rate_limited"
	| "server_error"
	| "client_error"
	| "unauthorized"
	| "malformed"
	| "network";

export interface ClassifiedCompletion {
	outcome: LlmRequestOutcome;
	attempt: Attempt<Completion>;
}

export class LlmClient {
	readonly options: LlmClientOptions;

	constructor(options: LlmClientOptions) {
		this.options = options;
	}

	get url(): string {
		return `${this.options.baseUrl}/chat/completions`;
	}

	/** The request body: whole JSON answers (no streaming), JSON mode, bounded length. */
	body(messages: ChatMessage[]): Record<string, unknown> {
		return {
			model: this.options.model,
			messages,
			response_format: { type: "json_object" },
			max_tokens: this.options.maxTokens,
			// Low temperature: the answer is data, and the same facts should read alike.
			temperature: 0.2,
			stream: false,
		};
	}

	/** One exchange, never throwing for the endpoint's faults: they come back classified. */
	attempt(messages: ChatMessage[], signal?: AbortSignal): Promise<ClassifiedCompletion> {
		const headers: Record<string, string> = { "content-type": "application/json" };
		if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
		const request = { method: "POST" as const, headers, body: JSON.stringify(this.body(messages)) };
		return classifiedExchange(
			() => httpExchange(this.url, request, this.options.timeoutMs, signal),
			classifyCompletion,
			signal,
		);
	}
}

/** The OpenAI-style error message of a 4xx body, when there is one (bounded, secrets masked). */
function errorMessageOf(a: HttpAnswer): string | null {
	const json = parseJsonBody(a);
	if (!json.ok) return null;
	const message = (json.value as { error?: { message?: unknown } | string } | null)?.error;
	const text = typeof message === "string" ? message : message?.message;
	return typeof text === "string" ? redactString(text).slice(0, 200) : null;
}

/** Classify one answer of `POST /chat/completions`. Exported for unit tests. */
export function classifyCompletion(a: HttpAnswer): ClassifiedCompletion {
	if (a.status === 401 || a.status === 403) {
		// The body is not quoted: some providers echo part of the key in it.
		return {
			outcome: "unauthorized",
			attempt: {
				kind: "fatal",
				reason: `the LLM endpoint refused the API key (HTTP ${a.status}); set a valid LLM_API_KEY, then call llm.resume`,
			},
		};
	}
	const byStatus = classifyStatus(a);
	if (byStatus) {
		const attempt = byStatus.attempt as Attempt<Completion>;
		if (byStatus.outcome === "client_error") {
			const detail = errorMessageOf(a);
			return {
				outcome: "client_error",
				attempt: { kind: "failed", reason: `HTTP ${a.status}${detail ? `: ${detail}` : ""}` },
			};
		}
		return { outcome: byStatus.outcome as LlmRequestOutcome, attempt };
	}
	const json = parseJsonBody(a);
	if (!json.ok) return { outcome: "malformed", attempt: { kind: "transient", reason: json.reason } };
	const body = json.value as {
		choices?: { message?: { content?: unknown }; finish_reason?: unknown }[];
		usage?: { prompt_tokens?: unknown; completion_tokens?: unknown };
	} | null;
	const choice = Array.isArray(body?.choices) ? body.choices[0] : undefined;
	const content = choice?.message?.content;
	if (typeof content !== "string") {
		return {
			outcome: "malformed",
			attempt: { kind: "transient", reason: "response has no choices[0].message.content string" },
		};
	}
	const prompt = body?.usage?.prompt_tokens;
	const completion = body?.usage?.completion_tokens;
	const usage =
		typeof prompt === "number" && typeof completion === "number"
			? { promptTokens: prompt, completionTokens: completion }
			: null;
	const finishReason = typeof choice?.finish_reason === "string" ? choice.finish_reason : null;
	return { outcome: "ok", attempt: { kind: "ok", value: { content, finishReason, usage } } };
}
