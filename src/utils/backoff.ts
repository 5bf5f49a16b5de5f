/**
 * The one backoff: how long to wait before trying again. Two shapes, each with its jitter so many
 * failing callers do not come back in lockstep:
 * - `backoffMs`: exponential retries of something that failed (a host request, a task) — doubling
 *   from `baseMs`, capped at `maxMs`, "equal jitter" (uniform in [cap/2, cap]);
 * - `contentionMs`: short waits between attempts at something contended (a lost optimistic write,
 *   a held lock) — growing linearly per attempt, capped, times a random factor.
 * `random` in [0, 1) is a parameter so tests and pure state machines can fix it.
 */

export interface BackoffOptions {
	/** Wait before the first retry (before jitter). */
	baseMs: number;
	maxMs: number;
}

/** Wait before retry number `n` (1-based): min(maxMs, baseMs * 2^(n-1)), equal jitter. */
export function backoffMs(n: number, opts: BackoffOptions, random = Math.random()): number {
	const cap = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.max(0, n - 1));
	return Math.round(cap / 2 + (cap / 2) * random);
}

export interface ContentionOptions {
	/** Wait at attempt 0 before jitter. */
	baseMs: number;
	/** Added per attempt. */
	stepMs: number;
	maxMs: number;
	/** The jitter factor is uniform in [minFactor, minFactor + 1). */
	minFactor: number;
}

/** A racing writer's wait after losing (store merges): up to min(50, 2 * attempt) ms. */
export const WRITE_CONTENTION: ContentionOptions = { baseMs: 0, stepMs: 2, maxMs: 50, minFactor: 0 };
/** A lock poll's wait (store key locks): around min(25, 1 + attempt) ms. */
export const LOCK_CONTENTION: ContentionOptions = { baseMs: 1, stepMs: 1, maxMs: 25, minFactor: 0.5 };

/** Wait before attempt `attempt + 1` at something contended: min(maxMs, baseMs + stepMs * attempt), jittered. */
export function contentionMs(attempt: number, opts: ContentionOptions, random = Math.random()): number {
	return Math.min(opts.maxMs, opts.baseMs + opts.stepMs * attempt) * (opts.minFactor + random);
}
