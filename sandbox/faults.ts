/**
 * Fault knobs shared by every sandbox simulator.
 *
 * One knob type for all simulators, so a test flips the same fields whatever it talks to:
 *
 * | knob            | effect                                                                      |
 * |-----------------|-----------------------------------------------------------------------------|
 * | `latency`       | every answer waits a uniform `minMs..maxMs` before it is written            |
 * | `errorRate`     | share (0..1) of requests answered with a status drawn from `errorStatuses`  |
 * | `rateLimit`     | per client: past `limit` admitted requests in any `windowMs`, answer 429     |
 * |                 | with `Retry-After` (`retryAfterS`, or the seconds until the window frees)   |
 * | `malformedRate` | share (0..1) of successful answers whose body is truncated or garbled      |
 *
 * Knobs are plain mutable data on a `FaultInjector`: tests change them at run time with `set()`, and
 * each simulator exposes them on `GET|POST /__sandbox/faults`. Decisions draw from a seeded RNG so a
 * run with the same seed and the same request order gets the same faults.
 */

import { Rng } from "./rng.ts";

export { hashString, mulberry32, Rng } from "./rng.ts";

export interface LatencyKnob {
	/** Lower bound of the added delay, ms. */
	minMs: number;
	/** Upper bound of the added delay, ms (uniform between min and max). */
	maxMs: number;
}

export interface RateLimitKnob {
	/** Requests admitted per client within any window of `windowMs`. */
	limit: number;
	windowMs: number;
	/** Fixed Retry-After seconds; when absent, the seconds until the client's window frees a slot. */
	retryAfterS?: number;
}

export interface FaultKnobs {
	latency: LatencyKnob;
	/** Share of requests (0..1) answered with one of `errorStatuses` instead of the real answer. */
	errorRate: number;
	/** Statuses drawn (uniformly) for injected errors. */
	errorStatuses: number[];
	/** `null` = no rate limit. */
	rateLimit: RateLimitKnob | null;
	/** Share of successful answers (0..1) whose body is truncated or garbled. */
	malformedRate: number;
}

export type FaultDecision =
	| { kind: "ok"; delayMs: number }
	| { kind: "rate-limited"; delayMs: number; retryAfterS: number }
	| { kind: "error"; delayMs: number; status: number }
	| { kind: "malformed"; delayMs: number };

/** The knobs of a well-behaved server. */
export function defaultFaultKnobs(): FaultKnobs {
	return {
		latency: { minMs: 0, maxMs: 0 },
		errorRate: 0,
		errorStatuses: [500, 502, 503],
		rateLimit: null,
		malformedRate: 0,
	};
}

/** Merges `partial` over `base` and validates, so a bad knob fails loudly instead of silently. */
export function mergeFaultKnobs(base: FaultKnobs, partial: Partial<FaultKnobs> = {}): FaultKnobs {
	const knobs: FaultKnobs = {
		latency: { ...(partial.latency ?? base.latency) },
		errorRate: partial.errorRate ?? base.errorRate,
		errorStatuses: [...(partial.errorStatuses ?? base.errorStatuses)],
		rateLimit:
			partial.rateLimit === undefined
				? base.rateLimit && { ...base.rateLimit }
				: partial.rateLimit && { ...partial.rateLimit },
		malformedRate: partial.malformedRate ?? base.malformedRate,
	};
	validateFaultKnobs(knobs);
	return knobs;
}

export function validateFaultKnobs(k: FaultKnobs): void {
	const isRate = (x: unknown) => typeof x === "number" && x >= 0 && x <= 1;
	if (!isRate(k.errorRate)) throw new RangeError(`errorRate must be in 0..1, got ${k.errorRate}`);
	if (!isRate(k.malformedRate)) throw new RangeError(`malformedRate must be in 0..1, got ${k.malformedRate}`);
	const { minMs, maxMs } = k.latency;
	if (!(Number.isFinite(minMs) && Number.isFinite(maxMs) && minMs >= 0 && maxMs >= minMs)) {
		throw new RangeError(`latency must satisfy 0 <= minMs <= maxMs, got ${JSON.stringify(k.latency)}`);
	}
	if (
		k.errorStatuses.length === 0 ||
		!k.errorStatuses.every((s) => Number.isInteger(s) && s >= 400 && s <= 599)
	) {
		throw new RangeError(`errorStatuses must be a non-empty list of 4xx/5xx, got ${k.errorStatuses}`);
	}
	if (k.rateLimit) {
		const { limit, windowMs, retryAfterS } = k.rateLimit;
		if (!(Number.isInteger(limit) && limit >= 0 && windowMs > 0)) {
			throw new RangeError(
				`rateLimit needs an integer limit >= 0 and windowMs > 0, got ${JSON.stringify(k.rateLimit)}`,
			);
		}
		if (retryAfterS !== undefined && !(retryAfterS >= 0))
			throw new RangeError("rateLimit.retryAfterS must be >= 0");
	}
}

/**
 * Decides, per request, which fault (if any) a simulator applies. Holds the mutable knobs, the seeded
 * RNG and the per-client rate-limit windows.
 */
export class FaultInjector {
	knobs: FaultKnobs;
	readonly rng: Rng;
	/** Admitted request times per client, oldest first (only kept while a rate limit is set). */
	readonly #admitted = new Map<string, number[]>();

	constructor(knobs: Partial<FaultKnobs> = {}, seed = 1) {
		this.knobs = mergeFaultKnobs(defaultFaultKnobs(), knobs);
		this.rng = new Rng(seed);
	}

	/** Changes some knobs at run time; the others keep their value. */
	set(partial: Partial<FaultKnobs>): FaultKnobs {
		this.knobs = mergeFaultKnobs(this.knobs, partial);
		return this.knobs;
	}

	/** Back to a well-behaved server, rate-limit history forgotten. */
	reset(): void {
		this.knobs = defaultFaultKnobs();
		this.#admitted.clear();
	}

	decide(client: string, now: number = Date.now()): FaultDecision {
		const k = this.knobs;
		const delayMs = k.latency.maxMs > 0 ? Math.round(this.rng.range(k.latency.minMs, k.latency.maxMs)) : 0;

		if (k.rateLimit) {
			const { limit, windowMs, retryAfterS } = k.rateLimit;
			let times = this.#admitted.get(client);
			if (!times) {
				times = [];
				this.#admitted.set(client, times);
			}
			while (times.length > 0 && times[0]! <= now - windowMs) times.shift();
			if (times.length >= limit) {
				const freeAt = (times[0] ?? now) + windowMs;
				const wait = retryAfterS ?? Math.max(1, Math.ceil((freeAt - now) / 1000));
				return { kind: "rate-limited", delayMs, retryAfterS: wait };
			}
			times.push(now);
		}
		if (this.rng.chance(k.errorRate))
			return { kind: "error", delayMs, status: this.rng.pick(k.errorStatuses) };
		if (this.rng.chance(k.malformedRate)) return { kind: "malformed", delayMs };
		return { kind: "ok", delayMs };
	}
}

/**
 * Spoils a body so that a strict parser rejects it: either a truncated prefix (what a dropped
 * connection behind a CDN looks like) or a NUL byte spliced in (invalid anywhere in JSON).
 */
export function malformBody(body: string, rng: Rng): string {
	if (body.length < 2) return "{";
	if (rng.chance(0.5)) return body.slice(0, Math.max(1, Math.floor(body.length * rng.range(0.2, 0.9))));
	const at = rng.int(1, body.length - 1);
	return `${body.slice(0, at)}\u0000\uFFFD${body.slice(at)}`;
}
