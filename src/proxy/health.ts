/**
 * Health scoring of one proxy from its outcomes (active checks and what callers report). Pure:
 * the pool stores the record in the shared state so every node scores from the same history.
 */

export interface HealthRecord {
	successes: number;
	failures: number;
	/** Failures since the last success; `deadAfter` of them in a row mark the proxy dead. */
	consecutiveFailures: number;
	/** Exponentially weighted success rate, 0..1 (starts optimistic at 1). */
	successRate: number;
	/** Exponentially weighted latency of successful requests, ms; null before the first one. */
	latencyMs: number | null;
	lastOkAt: number | null;
	lastFailAt: number | null;
	/** Last failure reason (never carries credentials: callers pass redacted messages). */
	lastError: string | null;
}

export type HealthState = "unknown" | "healthy" | "degraded" | "dead";

export interface Outcome {
	ok: boolean;
	latencyMs?: number;
	error?: string;
}

export interface HealthOptions {
	/** Consecutive failures that mark a proxy dead. */
	deadAfter: number;
	/** A dead proxy is given one trial again this long after its last failure (half-open). */
	deadRetryMs: number;
	/** Weight of the newest sample in the moving averages. */
	alpha: number;
}

export const defaultHealthOptions: HealthOptions = { deadAfter: 3, deadRetryMs: 60_000, alpha: 0.3 };

export function emptyHealth(): HealthRecord {
	return {
		successes: 0,
		failures: 0,
		consecutiveFailures: 0,
		successRate: 1,
		latencyMs: null,
		lastOkAt: null,
		lastFailAt: null,
		lastError: null,
	};
}

export function applyOutcome(
	prev: HealthRecord | undefined,
	outcome: Outcome,
	now: number,
	alpha = defaultHealthOptions.alpha,
): HealthRecord {
	const rec = { ...(prev ?? emptyHealth()) };
	rec.successRate = rec.successRate * (1 - alpha) + (outcome.ok ? 1 : 0) * alpha;
	if (outcome.ok) {
		rec.successes++;
		rec.consecutiveFailures = 0;
		rec.lastOkAt = now;
		if (outcome.latencyMs !== undefined && outcome.latencyMs >= 0) {
			rec.latencyMs =
				rec.latencyMs === null ? outcome.latencyMs : rec.latencyMs * (1 - alpha) + outcome.latencyMs * alpha;
		}
	} else {
		rec.failures++;
		rec.consecutiveFailures++;
		rec.lastFailAt = now;
		rec.lastError = (outcome.error ?? "failed").slice(0, 200);
	}
	return rec;
}

/**
 * `applyOutcome` for several successes in a row (their latencies in order, the last at `lastAt`), with
 * one copy of the record rather than one per success: the same record as applying them one by one.
 */
export function applySuccesses(
	prev: HealthRecord | undefined,
	latencies: readonly (number | undefined)[],
	lastAt: number,
	alpha = defaultHealthOptions.alpha,
): HealthRecord {
	const rec = { ...(prev ?? emptyHealth()) };
	if (latencies.length === 0) return rec;
	for (const latencyMs of latencies) {
		rec.successRate = rec.successRate * (1 - alpha) + alpha;
		if (latencyMs !== undefined && latencyMs >= 0) {
			rec.latencyMs = rec.latencyMs === null ? latencyMs : rec.latencyMs * (1 - alpha) + latencyMs * alpha;
		}
	}
	rec.successes += latencies.length;
	rec.consecutiveFailures = 0;
	rec.lastOkAt = lastAt;
	return rec;
}

export function healthState(
	rec: HealthRecord | undefined,
	opts: HealthOptions = defaultHealthOptions,
): HealthState {
	if (!rec || rec.successes + rec.failures === 0) return "unknown";
	if (rec.consecutiveFailures >= opts.deadAfter) return "dead";
	if (rec.consecutiveFailures > 0 || rec.successRate < 0.7) return "degraded";
	return "healthy";
}

/** Dead proxies are skipped, except for one trial once `deadRetryMs` has passed since they last failed. */
export function isUsable(
	rec: HealthRecord | undefined,
	now: number,
	opts: HealthOptions = defaultHealthOptions,
): boolean {
	if (healthState(rec, opts) !== "dead") return true;
	return now - (rec?.lastFailAt ?? 0) >= opts.deadRetryMs;
}

/**
 * Selection weight for the weighted strategy: success rate squared (a flaky proxy loses fast)
 * over latency (a proxy twice as slow gets about half the traffic). Unknown proxies get a neutral
 * weight so new ones are tried.
 */
export function healthWeight(rec: HealthRecord | undefined): number {
	if (!rec) return 1 / 0.3;
	const latency = rec.latencyMs ?? 300;
	const rate = Math.max(0.01, rec.successRate);
	return (rate * rate) / ((latency + 50) / 1000);
}
