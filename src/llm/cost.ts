/**
 * Cost math: what an answer cost from its usage tokens and the configured prices, and the most a
 * request can cost before it is sent (what the daily budget reserves). Pure.
 */
import type { ChatMessage } from "./prompt.ts";

export interface Prices {
	promptUsdPer1k: number;
	completionUsdPer1k: number;
}

export interface TokenUsage {
	promptTokens: number;
	completionTokens: number;
}

export function costUsd(usage: TokenUsage, prices: Prices): number {
	return (
		(usage.promptTokens * prices.promptUsdPer1k + usage.completionTokens * prices.completionUsdPer1k) / 1000
	);
}

/** Per-message and per-request framing tokens of chat templates (OpenAI counts 3-4 a message). */
const TOKENS_PER_MESSAGE = 8;
const TOKENS_PER_REQUEST = 8;

/**
 * An upper bound of the prompt tokens of `messages`: BPE tokenizers never give more tokens than
 * UTF-8 bytes, plus the template's framing. Far above the real count (about a quarter of it for
 * English), which only matters while a request is in flight: the reservation is settled to the
 * answer's real usage.
 */
export function promptTokenBound(messages: ChatMessage[]): number {
	return (
		TOKENS_PER_REQUEST +
		messages.reduce((sum, m) => sum + Buffer.byteLength(m.content, "utf8") + TOKENS_PER_MESSAGE, 0)
	);
}

/** The most one request can use: its prompt bound plus every completion token it may be given. */
export function requestBound(messages: ChatMessage[], maxTokens: number): TokenUsage {
	return { promptTokens: promptTokenBound(messages), completionTokens: maxTokens };
}
