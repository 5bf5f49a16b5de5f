/**
 * Writes the proxies' health records to the shared state, where every node scores from them.
 * Failures are written at once: three in a row mark a proxy dead for the whole cluster. Successes
 * are gathered per proxy for up to `flushMs` and written in one read-modify-write, so a gateway
 * relaying thousands of requests a second does not read and rewrite a record for each of them.
 * A success only confirms a proxy that is already usable, so learning it a moment later changes no
 * choice that matters. This node's writes to one record run one after another, so none of them
 * overwrites another (other nodes' may still race, which the moving averages tolerate).
 */
import type { SharedState } from "../shared-state/index.ts";
import { applyOutcome, applySuccesses, type HealthRecord, type Outcome } from "./health.ts";

/** Seven days: a record outlives any pause of the cluster, not a proxy that is gone for good. */
const RECORD_TTL_MS = 7 * 86_400_000;

interface PendingSuccesses {
	key: string;
	latencies: (number | undefined)[];
	lastAt: number;
}

export class HealthWriter {
	readonly #state: SharedState;
	readonly #alpha: number;
	readonly #now: () => number;
	readonly #flushMs: number;
	readonly #pending = new Map<string, PendingSuccesses>();
	/** The last write started per record, which the next write to it waits for. */
	readonly #writes = new Map<string, Promise<HealthRecord>>();
	#timer: NodeJS.Timeout | null = null;

	constructor(state: SharedState, options: { alpha: number; now: () => number; flushMs: number }) {
		this.#state = state;
		this.#alpha = options.alpha;
		this.#now = options.now;
		this.#flushMs = options.flushMs;
	}

	/** Counts a success of the proxy whose record is at `key`; written within `flushMs`. */
	success(key: string, latencyMs: number | undefined): void {
		if (this.#flushMs <= 0) {
			this.record(key, { ok: true, ...(latencyMs !== undefined ? { latencyMs } : {}) }).catch(
				() => undefined,
			);
			return;
		}
		const now = this.#now();
		const pending = this.#pending.get(key);
		if (pending) {
			pending.latencies.push(latencyMs);
			pending.lastAt = now;
		} else this.#pending.set(key, { key, latencies: [latencyMs], lastAt: now });
		if (!this.#timer) {
			this.#timer = setTimeout(() => {
				this.#timer = null;
				// A write that fails (the state unreachable) loses these samples: the averages carry on
				// from the next ones, as after a lost concurrent update.
				this.flush().catch(() => undefined);
			}, this.#flushMs);
			this.#timer.unref();
		}
	}

	/** Writes one outcome now, after the successes gathered before it (their order is kept). */
	record(key: string, outcome: Outcome): Promise<HealthRecord> {
		const pending = this.#take(key);
		const now = this.#now();
		return this.#write(key, (prev) =>
			applyOutcome(
				pending ? applySuccesses(prev, pending.latencies, pending.lastAt, this.#alpha) : prev,
				outcome,
				now,
				this.#alpha,
			),
		);
	}

	/** Writes every success gathered so far (before a status read, and on shutdown). */
	async flush(): Promise<void> {
		if (this.#timer) {
			clearTimeout(this.#timer);
			this.#timer = null;
		}
		const batches = [...this.#pending.values()];
		this.#pending.clear();
		await Promise.all(
			batches.map(({ key, latencies, lastAt }) =>
				this.#write(key, (prev) => applySuccesses(prev, latencies, lastAt, this.#alpha)),
			),
		);
	}

	/** Read-modify-write of one record, after this node's previous write to it has finished. */
	#write(key: string, change: (prev: HealthRecord | undefined) => HealthRecord): Promise<HealthRecord> {
		const run = (this.#writes.get(key) ?? Promise.resolve())
			.catch(() => undefined)
			.then(async () => {
				const next = change(await this.#state.get<HealthRecord>(key));
				await this.#state.set(key, next, RECORD_TTL_MS);
				return next;
			});
		this.#writes.set(key, run);
		const forget = () => {
			if (this.#writes.get(key) === run) this.#writes.delete(key);
		};
		run.then(forget, forget);
		return run;
	}

	#take(key: string): PendingSuccesses | undefined {
		const pending = this.#pending.get(key);
		if (pending) this.#pending.delete(key);
		return pending;
	}
}
