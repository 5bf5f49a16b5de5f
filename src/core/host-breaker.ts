/**
 * The per-host circuit breaker of a `HostPolicy` (src/core/host-policy.ts), kept in the shared state
 * so the whole cluster sees one breaker per host.
 *
 * Outcomes are counted per fixed window; an error storm (at least `minRequests` outcomes, a failure
 * share of `failureRate` or more) opens the breaker for `openMs`. After that one trial request, the
 * node that wins a shared lease, decides between closing it and opening it again; the other nodes
 * poll until it has.
 *
 * Keys (under the policy's `host:<name>:`): `breaker` (the open record, kept past its end so the
 * half-open state stays visible), `breaker-trial` (the trial lease), `ok:<bucket>`, `fail:<bucket>`.
 */
import type { SharedState } from "../shared-state/index.ts";

export interface HostBreakerOptions {
	/** Failures are judged per fixed window of this length. */
	windowMs: number;
	/** Outcomes in the window before the failure rate is judged. */
	minRequests: number;
	/** Failure share (0..1] that opens the breaker. */
	failureRate: number;
	/** How long the breaker stays open before a trial request. */
	openMs: number;
}

export type BreakerState = "closed" | "open" | "half-open";

export interface BreakerRecord {
	openedAt: number;
	until: number;
	reason: string;
}

export const DEFAULT_BREAKER: HostBreakerOptions = {
	windowMs: 60_000,
	minRequests: 10,
	failureRate: 0.5,
	openMs: 30_000,
};

export interface HostBreakerWiring {
	/** The policy's shared-state key of a part (`host:<name>:<part>`). */
	key: (part: string) => string;
	/** Holder written in the trial lease. */
	nodeId: string;
	/** How long a trial lease and an ended open record are kept (the policy's longest wait). */
	holdMs: number;
	/** Told each change of this process's view of the breaker. */
	onState: (state: BreakerState) => void;
}

export class HostBreaker {
	readonly options: HostBreakerOptions;
	readonly #state: SharedState;
	readonly #wiring: HostBreakerWiring;
	#last: BreakerState = "closed";

	constructor(
		state: SharedState,
		options: Partial<HostBreakerOptions> | undefined,
		wiring: HostBreakerWiring,
	) {
		this.options = { ...DEFAULT_BREAKER, ...options };
		if (!(this.options.failureRate > 0 && this.options.failureRate <= 1)) {
			throw new RangeError("breaker.failureRate must be in (0, 1]");
		}
		this.#state = state;
		this.#wiring = wiring;
	}

	#key(part: string): string {
		return this.#wiring.key(part);
	}

	/** The key of the open record (read by the policy together with its other flags). */
	get recordKey(): string {
		return this.#key("breaker");
	}

	/** The state a stored record means at `now`. */
	static stateOf(record: BreakerRecord | undefined, now: number): BreakerState {
		return !record ? "closed" : now < record.until ? "open" : "half-open";
	}

	/**
	 * Whether a request may go given the stored record: a wait while open; in half-open, only the node
	 * that wins the trial lease goes on (`holdingTrial`: this request already holds it).
	 */
	async admit(
		record: BreakerRecord | undefined,
		holdingTrial: boolean,
	): Promise<{ waitMs: number; trial: boolean; why?: string }> {
		const now = Date.now();
		if (!record) {
			this.#setState("closed");
			return { waitMs: 0, trial: false };
		}
		if (now < record.until) {
			this.#setState("open");
			return { waitMs: record.until - now, trial: false, why: `the host breaker is open (${record.reason})` };
		}
		this.#setState("half-open");
		if (holdingTrial) return { waitMs: 0, trial: true };
		const won = await this.#state.setIfAbsent(
			this.#key("breaker-trial"),
			this.#wiring.nodeId,
			this.#wiring.holdMs,
		);
		// Losers poll: the trial's outcome closes or re-opens the breaker soon.
		return won
			? { waitMs: 0, trial: true }
			: { waitMs: Math.min(1000, this.options.openMs / 4), trial: false };
	}

	/** Give the trial lease back undecided (the trial said nothing about the host). */
	async releaseTrial(): Promise<void> {
		await this.#state.del(this.#key("breaker-trial"));
	}

	/** Count one outcome; a trial's outcome closes or re-opens the breaker. */
	async record(ok: boolean, trial: boolean, reason: string): Promise<void> {
		if (trial) {
			await this.releaseTrial();
			if (ok) {
				await this.#state.del(this.#key("breaker"));
				this.#setState("closed");
			} else {
				await this.open(`trial failed: ${reason}`, this.options.openMs);
			}
			return;
		}
		const { windowMs, minRequests, failureRate, openMs } = this.options;
		const bucket = Math.floor(Date.now() / windowMs);
		const ttl = 2 * windowMs;
		const okKey = this.#key(`ok:${bucket}`);
		const failKey = this.#key(`fail:${bucket}`);
		if (ok) {
			await this.#state.incr(okKey, 1, ttl);
			return;
		}
		const failed = await this.#state.incr(failKey, 1, ttl);
		const succeeded = Number((await this.#state.get<number>(okKey)) ?? 0);
		const total = failed + succeeded;
		if (total >= minRequests && failed / total >= failureRate) {
			const existing = await this.#state.get<BreakerRecord>(this.#key("breaker"));
			if (!existing) {
				await this.open(`${failed}/${total} failures in ${windowMs} ms, last: ${reason}`, openMs);
				// A fresh window after the breaker closes: the storm that opened it is judged once.
				await Promise.all([this.#state.del(okKey), this.#state.del(failKey)]);
			}
		}
	}

	async open(reason: string, openMs: number): Promise<void> {
		const now = Date.now();
		const record: BreakerRecord = { openedAt: now, until: now + openMs, reason };
		// Kept past `until` so the half-open state is visible until a trial decides it.
		await this.#state.set(this.#key("breaker"), record, openMs + this.#wiring.holdMs);
		this.#setState("open");
	}

	/** Remove the breaker and its trial lease (an operator resumed the host). */
	async reset(): Promise<void> {
		await Promise.all(["breaker", "breaker-trial"].map((part) => this.#state.del(this.#key(part))));
		this.#setState("closed");
	}

	/** The keys of the current window's counts. */
	windowKeys(now: number): [ok: string, failed: string] {
		const bucket = Math.floor(now / this.options.windowMs);
		return [this.#key(`ok:${bucket}`), this.#key(`fail:${bucket}`)];
	}

	#setState(state: BreakerState) {
		if (state === this.#last) return;
		this.#last = state;
		this.#wiring.onState(state);
	}
}
