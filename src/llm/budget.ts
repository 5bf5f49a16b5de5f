/**
 * The cluster's daily LLM budget (USD and tokens, per UTC day) and usage counters, in one counter
 * map per day in the shared state, so every node spends from the same budget.
 *
 * Never exceeded: before a request is sent, its worst case (prompt bound + max_tokens, priced) is
 * reserved with an atomic add; a reservation that would pass the cap is taken back and refused.
 * After the answer, the reservation is settled to the real usage (the unused part is given back).
 * Reserving the worst case refuses a request that would have fitted near the end of the day; the
 * alternative, check-then-add, lets concurrent requests overspend together.
 * A day's map stays in the shared state (a few fields a day).
 */
import type { SharedState } from "../shared-state/index.ts";
import { costUsd, type Prices, type TokenUsage } from "./cost.ts";

/** Money is counted in nano-USD: integer counters, exact sums, prices of 1e-7 USD a token still count. */
const NANO = 1e9;

export interface BudgetLimits {
	usdPerDay: number;
	/** 0 = no token cap. */
	tokensPerDay: number;
}

export interface Reservation {
	day: string;
	nanoUsd: number;
	tokens: number;
}

export type Counter = "requests" | "cacheHits" | "fallbacks" | "failures" | "budgetRefusals";

export interface DayUsage {
	day: string;
	requests: number;
	promptTokens: number;
	completionTokens: number;
	costUsd: number;
	/** Spent plus reserved by requests in flight. */
	committedUsd: number;
	committedTokens: number;
	cacheHits: number;
	fallbacks: number;
	failures: number;
	budgetRefusals: number;
}

export class LlmBudget {
	readonly #state: SharedState;
	readonly limits: BudgetLimits;
	readonly prices: Prices;
	readonly #now: () => number;

	constructor(state: SharedState, limits: BudgetLimits, prices: Prices, now: () => number = Date.now) {
		this.#state = state;
		this.limits = limits;
		this.prices = prices;
		this.#now = now;
	}

	today(): string {
		return new Date(this.#now()).toISOString().slice(0, 10);
	}

	#key(day: string): string {
		return `llm:day:${day}`;
	}

	/** Reserve the worst case of one request; a string says why it was refused. */
	async reserve(bound: TokenUsage): Promise<Reservation | string> {
		const day = this.today();
		const key = this.#key(day);
		const nanoUsd = Math.ceil(costUsd(bound, this.prices) * NANO);
		const tokens = bound.promptTokens + bound.completionTokens;
		const usd = await this.#state.hincr(key, "committedNanoUsd", nanoUsd);
		const tok = await this.#state.hincr(key, "committedTokens", tokens);
		const overUsd = usd > Math.round(this.limits.usdPerDay * NANO);
		const overTokens = this.limits.tokensPerDay > 0 && tok > this.limits.tokensPerDay;
		if (!overUsd && !overTokens) return { day, nanoUsd, tokens };
		await Promise.all([
			this.#state.hincr(key, "committedNanoUsd", -nanoUsd),
			this.#state.hincr(key, "committedTokens", -tokens),
			this.#state.hincr(key, "budgetRefusals", 1),
		]);
		return overUsd
			? `daily LLM budget of $${this.limits.usdPerDay} reached ($${((usd - nanoUsd) / NANO).toFixed(6)} committed, this request may cost up to $${(nanoUsd / NANO).toFixed(6)})`
			: `daily LLM token cap of ${this.limits.tokensPerDay} reached (${tok - tokens} committed, this request may use up to ${tokens})`;
	}

	/** Replace a reservation by what the request really used (null: nothing was charged). */
	async settle(r: Reservation, used: TokenUsage | null): Promise<void> {
		const key = this.#key(r.day);
		const nanoUsd = used ? Math.ceil(costUsd(used, this.prices) * NANO) : 0;
		const tokens = used ? used.promptTokens + used.completionTokens : 0;
		const writes = [
			this.#state.hincr(key, "committedNanoUsd", nanoUsd - r.nanoUsd),
			this.#state.hincr(key, "committedTokens", tokens - r.tokens),
		];
		if (used) {
			writes.push(
				this.#state.hincr(key, "spentNanoUsd", nanoUsd),
				this.#state.hincr(key, "promptTokens", used.promptTokens),
				this.#state.hincr(key, "completionTokens", used.completionTokens),
			);
		}
		await Promise.all(writes);
	}

	async count(counter: Counter, by = 1): Promise<void> {
		await this.#state.hincr(this.#key(this.today()), counter, by);
	}

	async usage(day = this.today()): Promise<DayUsage> {
		const m = await this.#state.hgetall(this.#key(day));
		const n = (f: string) => m[f] ?? 0;
		return {
			day,
			requests: n("requests"),
			promptTokens: n("promptTokens"),
			completionTokens: n("completionTokens"),
			costUsd: n("spentNanoUsd") / NANO,
			committedUsd: n("committedNanoUsd") / NANO,
			committedTokens: n("committedTokens"),
			cacheHits: n("cacheHits"),
			fallbacks: n("fallbacks"),
			failures: n("failures"),
			budgetRefusals: n("budgetRefusals"),
		};
	}
}
