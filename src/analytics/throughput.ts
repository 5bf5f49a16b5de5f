/**
 * Throughput over time, kept by the api service in a small ring buffer (one hour in 10 s steps by
 * default), so the dashboard and `/api/analytics/throughput` can draw records/s and requests/s per
 * source and requests/min per site without a metrics server.
 *
 * Fed by what other services already answer or broadcast:
 * - a job's progress (the orchestrator's `job.progress` event, and `orchestrator.list` sampled now and
 *   then so a job's last counts are not missed): its per-source counts are cumulative, so each sighting
 *   adds the difference from the previous one to the current step;
 * - each site's host status (`maricopa.status`, `mls.status`, `llm.status`): the outcomes counted in the
 *   breaker's current window (`window.ok + window.failed`), whose growth between two samples is the
 *   requests sent meanwhile (when the window rolls over the count starts again: the new count is taken).
 * Pure bookkeeping: the caller passes the clock.
 */

export interface ProgressLike {
	jobId: string;
	status: string;
	elapsedS?: number | null;
	bySource: Record<string, { counts: { items: number; requests: number } }>;
}

export interface HostStatusLike {
	host: string;
	window: { ok: number; failed: number };
	budget: { points: number; durationMs: number };
}

export interface ThroughputSnapshot {
	/** Seconds per step. */
	stepS: number;
	windowS: number;
	/** Start of each step (epoch seconds), oldest first; the last step is the current, partial one. */
	t: number[];
	/** Per source: records/s and requests/s in each step. */
	sources: Record<string, { recordsPerS: number[]; requestsPerS: number[] }>;
	/** Per site: requests/min in each step, and the site's budget in requests/min. */
	hosts: Record<string, { requestsPerMin: number[]; limitPerMin: number; lastMinute: number }>;
	/** Totals over the window. */
	totals: Record<string, { records: number; requests: number }>;
}

/** A job first seen this far into its run is not counted from zero (its past is not in the window). */
const FRESH_JOB_S = 30;

export class ThroughputRecorder {
	readonly stepS: number;
	readonly windowS: number;
	readonly #steps: number;
	/** Step index (epoch s / stepS) -> series -> amount added in that step. */
	readonly #buckets = new Map<number, Map<string, number>>();
	/** Job -> source -> last cumulative counts seen. */
	readonly #jobs = new Map<
		string,
		{ seenAt: number; bySource: Map<string, { items: number; requests: number }> }
	>();
	/** Host -> last outcome count seen, budget per minute. */
	readonly #hosts = new Map<string, { count: number; limitPerMin: number }>();
	readonly #sources = new Set<string>();
	#firstStep: number | null = null;

	constructor(stepS = 10, windowS = 3600) {
		this.stepS = stepS;
		this.windowS = windowS;
		this.#steps = Math.ceil(windowS / stepS);
	}

	#add(nowMs: number, series: string, amount: number): void {
		if (!(amount > 0)) return;
		const step = Math.floor(nowMs / 1000 / this.stepS);
		let bucket = this.#buckets.get(step);
		if (!bucket) {
			bucket = new Map();
			this.#buckets.set(step, bucket);
			for (const old of this.#buckets.keys()) if (old <= step - this.#steps) this.#buckets.delete(old);
		}
		bucket.set(series, (bucket.get(series) ?? 0) + amount);
	}

	#touch(nowMs: number): void {
		if (this.#firstStep === null) this.#firstStep = Math.floor(nowMs / 1000 / this.stepS);
	}

	/** A job's progress (an event or a list row): what it did since the last sighting. */
	observeJob(progress: ProgressLike, nowMs: number): void {
		this.#touch(nowMs);
		let seen = this.#jobs.get(progress.jobId);
		// A job first seen late is taken as it is (baseline); one seen early, or seen before, counts from zero.
		const baselineOnly = !seen && (progress.elapsedS ?? Number.POSITIVE_INFINITY) > FRESH_JOB_S;
		if (!seen) {
			seen = { seenAt: nowMs, bySource: new Map() };
			this.#jobs.set(progress.jobId, seen);
		}
		seen.seenAt = nowMs;
		for (const [source, s] of Object.entries(progress.bySource ?? {})) {
			const items = Number(s?.counts?.items ?? 0);
			const requests = Number(s?.counts?.requests ?? 0);
			this.#sources.add(source);
			const last = seen.bySource.get(source) ?? (baselineOnly ? null : { items: 0, requests: 0 });
			if (last) {
				this.#add(nowMs, `records:${source}`, items - last.items);
				this.#add(nowMs, `requests:${source}`, requests - last.requests);
			}
			seen.bySource.set(source, {
				items: Math.max(items, last?.items ?? 0),
				requests: Math.max(requests, last?.requests ?? 0),
			});
		}
		// Jobs not seen for the whole window are forgotten.
		for (const [id, j] of this.#jobs) if (nowMs - j.seenAt > this.windowS * 1000) this.#jobs.delete(id);
	}

	/** Each site's host status: requests sent since the last sample. */
	observeHosts(statuses: HostStatusLike[], nowMs: number): void {
		this.#touch(nowMs);
		for (const h of statuses) {
			if (!h || typeof h.host !== "string") continue;
			const count = Number(h.window?.ok ?? 0) + Number(h.window?.failed ?? 0);
			const durationMs = Number(h.budget?.durationMs ?? 0);
			const limitPerMin = durationMs > 0 ? (Number(h.budget?.points ?? 0) * 60_000) / durationMs : 0;
			const last = this.#hosts.get(h.host);
			// First seen: what its current window counted happened within the last window; take it now.
			this.#add(nowMs, `host:${h.host}`, last && count >= last.count ? count - last.count : count);
			this.#hosts.set(h.host, { count, limitPerMin });
		}
	}

	snapshot(nowMs: number): ThroughputSnapshot {
		const nowStep = Math.floor(nowMs / 1000 / this.stepS);
		const first = Math.max(nowStep - this.#steps + 1, this.#firstStep ?? nowStep);
		const t: number[] = [];
		for (let s = first; s <= nowStep; s++) t.push(s * this.stepS);
		// The current step has run only part of its length: rates over the part that ran.
		const spanS = (step: number) =>
			step === nowStep ? Math.max(1, nowMs / 1000 - step * this.stepS) : this.stepS;
		const series = (name: string, perMin = false) =>
			t.map((_, i) => {
				const step = first + i;
				const v = this.#buckets.get(step)?.get(name) ?? 0;
				return round((v / spanS(step)) * (perMin ? 60 : 1));
			});
		const sum = (name: string, fromStep = first) => {
			let total = 0;
			for (const [step, b] of this.#buckets)
				if (step >= fromStep && step <= nowStep) total += b.get(name) ?? 0;
			return total;
		};
		const sources: ThroughputSnapshot["sources"] = {};
		const totals: ThroughputSnapshot["totals"] = {};
		for (const source of [...this.#sources].sort()) {
			sources[source] = {
				recordsPerS: series(`records:${source}`),
				requestsPerS: series(`requests:${source}`),
			};
			totals[source] = { records: sum(`records:${source}`), requests: sum(`requests:${source}`) };
		}
		const hosts: ThroughputSnapshot["hosts"] = {};
		const minuteAgo = Math.floor((nowMs - 60_000) / 1000 / this.stepS) + 1;
		for (const [host, h] of [...this.#hosts].sort(([a], [b]) => a.localeCompare(b))) {
			hosts[host] = {
				requestsPerMin: series(`host:${host}`, true),
				limitPerMin: round(h.limitPerMin),
				lastMinute: sum(`host:${host}`, minuteAgo),
			};
		}
		return { stepS: this.stepS, windowS: this.windowS, t, sources, hosts, totals };
	}
}

function round(n: number): number {
	return Math.round(n * 100) / 100;
}
