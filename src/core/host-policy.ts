/**
 * Cluster-wide politeness towards one outside host: every node and process that talks to the host
 * goes through one `HostPolicy` keyed by the host's name, and the shared state makes them behave as
 * one client.
 *
 * - Rate budget with a sliding-window guarantee, used to the last request (src/core/sliding-budget.ts):
 *   requests take numbers from one shared counter, and request k leaves only a window after request
 *   k - points has finished, so no window of `durationMs` ever sees more than `points` requests
 *   arriving at the host, whatever the timers, the network or the machine's load do, and the budget
 *   is lost only for each request's answer time (evenly spaced slots had to leave a worst-case slack
 *   of 250 ms per window unused: 0.80 of a 1 s budget).
 * - A 429's Retry-After pauses the host for every node (shared "pause until" value; slots that fall
 *   inside the pause are given up).
 * - Transient failures are retried with exponential backoff and jitter.
 * - An error storm opens a per-host breaker for the whole cluster; after `openMs` one trial request
 *   (a shared lease) decides between closing it and opening it again.
 * - A fatal answer (revoked token) sets a shared stop flag: every node stops calling the host at
 *   once and callers get a `HostFatalError`; no retry spends the budget.
 *
 * Nodes are expected to share one configuration per host and clocks kept by NTP (the tolerance
 * absorbs a few ms of skew).
 *
 * This module is the wiring and the waits (budget slots, pauses, the stop flag, retries); the breaker
 * is src/core/host-breaker.ts, the outcomes a request can have and the errors a call ends with are
 * src/core/host-outcomes.ts (re-exported here).
 */
import type { SharedState } from "../shared-state/index.ts";
import { backoffMs } from "../utils/backoff.ts";
import { sleep } from "../utils/time.ts";
import { NotConfiguredError } from "./errors.ts";
import {
	type BreakerRecord,
	type BreakerState,
	HostBreaker,
	type HostBreakerOptions,
} from "./host-breaker.ts";
import { type Attempt, HostFatalError, type HostOutcomeKind, HostRequestError } from "./host-outcomes.ts";
import { type BudgetClaim, SlidingBudget } from "./sliding-budget.ts";

export type { BreakerState, HostBreakerOptions } from "./host-breaker.ts";
export { type Attempt, HostFatalError, type HostOutcomeKind, HostRequestError } from "./host-outcomes.ts";

export interface HostRateBudget {
	/** Requests allowed in any window of `durationMs` (sliding). */
	points: number;
	durationMs: number;
}

export interface HostRetryOptions {
	/** Attempts per call, first included. */
	maxAttempts: number;
	/** Backoff before retry n is drawn from [cap/2, cap] with cap = min(maxMs, baseMs * 2^(n-1)). */
	baseMs: number;
	maxMs: number;
}

export interface HostPolicyOptions {
	/** Name of the host in shared-state keys and events, e.g. "maricopa-api". */
	host: string;
	rate: HostRateBudget;
	retry?: Partial<HostRetryOptions>;
	breaker?: Partial<HostBreakerOptions>;
	/**
	 * Added to the window: clock skew between nodes (timer and network jitter need no slack, see
	 * sliding-budget.ts). Default 25.
	 */
	lateToleranceMs?: number;
	/** How long a fatal stop holds cluster-wide unless cleared with `resume()`. Default 6 h. */
	fatalHoldMs?: number;
	/** Longest a call waits for a slot, a pause or an open breaker before failing. Default 10 min. */
	maxWaitMs?: number;
	/** Who set a pause or the fatal flag (shown in status). */
	nodeId?: string;
	onEvent?: (event: HostPolicyEvent) => void;
}

export type HostPolicyEvent =
	| { type: "request"; host: string; label: string; outcome: HostOutcomeKind; reason?: string }
	| { type: "wait"; host: string; ms: number }
	| { type: "breaker"; host: string; state: BreakerState }
	| { type: "pause"; host: string; untilMs: number }
	| { type: "fatal"; host: string; reason: string };

interface FatalRecord {
	reason: string;
	at: number;
	node: string;
}

export interface HostStatus {
	host: string;
	breaker: BreakerState;
	breakerReason: string | null;
	pausedUntil: number | null;
	fatal: FatalRecord | null;
	/** Outcomes counted in the breaker's current window. */
	window: { ok: number; failed: number };
	budget: HostRateBudget & { spacingMs: number };
}

interface Ticket {
	/** This request is the half-open breaker's trial. */
	trial: boolean;
	waitedMs: number;
	/** Its number in the host's budget; marked done when the answer is in. */
	claim: BudgetClaim;
}

const DEFAULT_RETRY: HostRetryOptions = { maxAttempts: 5, baseMs: 500, maxMs: 30_000 };
export class HostPolicy {
	readonly host: string;
	readonly rate: HostRateBudget;
	readonly retry: HostRetryOptions;
	readonly breaker: HostBreakerOptions;
	/** Average time between two requests at the full budget: (window + margin) / points. */
	readonly spacingMs: number;
	readonly #state: SharedState;
	readonly #toleranceMs: number;
	readonly #budget: SlidingBudget;
	readonly #fatalHoldMs: number;
	readonly #maxWaitMs: number;
	readonly #nodeId: string;
	readonly #onEvent: (e: HostPolicyEvent) => void;
	readonly #breaker: HostBreaker;
	/** Aborted by `close()` (the service stops): every wait of every call ends at once. */
	readonly #closing = new AbortController();

	constructor(state: SharedState, opts: HostPolicyOptions) {
		if (!/^[A-Za-z0-9._-]{1,64}$/.test(opts.host)) throw new RangeError(`invalid host name '${opts.host}'`);
		const { points, durationMs } = opts.rate;
		if (!(Number.isInteger(points) && points > 0 && Number.isFinite(durationMs) && durationMs > 0)) {
			throw new RangeError(
				`invalid rate budget ${JSON.stringify(opts.rate)}: integer points > 0, durationMs > 0`,
			);
		}
		this.host = opts.host;
		this.rate = { points, durationMs };
		this.retry = { ...DEFAULT_RETRY, ...opts.retry };
		if (!(this.retry.maxAttempts >= 1)) throw new RangeError("retry.maxAttempts must be >= 1");
		this.#state = state;
		this.#toleranceMs = Math.max(1, opts.lateToleranceMs ?? 25);
		this.spacingMs = (durationMs + this.#toleranceMs) / points;
		this.#budget = new SlidingBudget(state, (part) => this.#key(`budget:${part}`), {
			points,
			windowMs: durationMs,
			marginMs: this.#toleranceMs,
		});
		this.#fatalHoldMs = opts.fatalHoldMs ?? 6 * 3_600_000;
		this.#maxWaitMs = opts.maxWaitMs ?? 600_000;
		this.#nodeId = opts.nodeId ?? `pid-${process.pid}`;
		this.#onEvent = opts.onEvent ?? (() => {});
		this.#breaker = new HostBreaker(state, opts.breaker, {
			key: (part) => this.#key(part),
			nodeId: this.#nodeId,
			holdMs: this.#maxWaitMs,
			onState: (state) => this.#onEvent({ type: "breaker", host: this.host, state }),
		});
		this.breaker = this.#breaker.options;
	}

	#key(part: string): string {
		return `host:${this.host}:${part}`;
	}

	/**
	 * End every wait of this process's calls (the service stops): they reject with the reason given.
	 * Calls made afterwards fail at once.
	 */
	close(
		reason: Error = new HostRequestError(
			this.host,
			"-",
			0,
			"timeout",
			"the service is stopping; retry elsewhere",
		),
	): void {
		if (!this.#closing.signal.aborted) this.#closing.abort(reason);
	}

	/**
	 * Run one logical request: wait for a slot, attempt, classify, retry transient outcomes.
	 * Throws HostFatalError (cluster stopped) or HostRequestError (gave up); never retries a fatal.
	 * `signal` (a cancelled job, a caller that gave up) ends every wait at once with its reason, as
	 * `close()` does; `maxWaitMs` bounds this call's waits for a slot, a pause or an open breaker
	 * (default: the policy's), and a wait known to be longer fails at once, saying why.
	 * A NotConfiguredError thrown by `attempt` is passed through (no retry, not a host failure).
	 */
	async run<T>(
		label: string,
		attempt: () => Promise<Attempt<T>>,
		callerSignal?: AbortSignal,
		opts: { maxWaitMs?: number } = {},
	): Promise<T> {
		const signal = callerSignal
			? AbortSignal.any([callerSignal, this.#closing.signal])
			: this.#closing.signal;
		let lastReason = "no attempt made";
		let lastKind: HostOutcomeKind = "transient";
		let attempts = 0;
		// A 429 is the host asking us to slow down, not a failure of the request: it does not use up
		// an attempt, but a bound keeps a host that only ever answers 429 from holding a call forever.
		let rateLimited = 0;
		while (attempts < this.retry.maxAttempts && rateLimited < this.retry.maxAttempts * 4) {
			const ticket = await this.#acquire(label, signal, opts.maxWaitMs ?? this.#maxWaitMs);
			let result: Attempt<T>;
			this.#budget.sent(ticket.claim);
			try {
				result = await attempt();
			} catch (err) {
				await this.#budget.done(ticket.claim);
				// Cancelled mid-request, or nothing to send it with: neither says anything about the host.
				if (signal.aborted || err instanceof NotConfiguredError) {
					if (ticket.trial) await this.#breaker.releaseTrial();
					throw signal.aborted ? signal.reason : err;
				}
				result = { kind: "transient", reason: `request error: ${(err as Error).message}` };
			}
			await this.#budget.done(ticket.claim);
			this.#onEvent({
				type: "request",
				host: this.host,
				label,
				outcome: result.kind,
				...(result.kind === "ok" ? {} : { reason: result.reason }),
			});
			switch (result.kind) {
				case "ok":
					await this.#breaker.record(true, ticket.trial, "");
					return result.value;
				case "fatal":
					await this.stopCluster(result.reason);
					throw new HostFatalError(this.host, result.reason);
				case "failed":
					// The host answered definitively; release a trial without judging the host by it.
					if (ticket.trial) await this.#breaker.record(true, true, "");
					throw new HostRequestError(this.host, label, attempts + 1, "failed", result.reason);
				case "rate-limited":
					rateLimited++;
					lastKind = "rate-limited";
					lastReason = result.reason;
					await this.pause(result.retryAfterMs);
					if (ticket.trial) await this.#breaker.releaseTrial();
					continue;
				case "rotate":
					// Bounded like 429s: a site that refuses every proxy does not hold a call forever.
					rateLimited++;
					lastKind = "rotate";
					lastReason = result.reason;
					if (ticket.trial) await this.#breaker.releaseTrial();
					continue;
				case "transient": {
					attempts++;
					lastKind = "transient";
					lastReason = result.reason;
					await this.#breaker.record(false, ticket.trial, result.reason);
					if (attempts < this.retry.maxAttempts) await sleep(this.backoffMs(attempts), signal);
				}
			}
		}
		throw new HostRequestError(this.host, label, attempts + rateLimited, lastKind, lastReason);
	}

	/** Backoff before retry number `n` (1-based): exponential, capped, "equal jitter" (src/utils/backoff.ts). */
	backoffMs(n: number): number {
		return backoffMs(n, this.retry);
	}

	/** Pause every node's requests to this host for `ms` (an earlier, longer pause is kept). */
	async pause(ms: number): Promise<void> {
		const until = Date.now() + Math.max(0, ms);
		const current = await this.#state.get<number>(this.#key("pause"));
		if (current !== undefined && current >= until) return;
		await this.#state.set(this.#key("pause"), until, ms + 1000);
		this.#onEvent({ type: "pause", host: this.host, untilMs: until });
	}

	/** Set the cluster-wide stop flag and open the breaker: nobody calls the host any more. */
	async stopCluster(reason: string): Promise<void> {
		const record: FatalRecord = { reason, at: Date.now(), node: this.#nodeId };
		await this.#state.setIfAbsent(this.#key("fatal"), record, this.#fatalHoldMs);
		await this.#breaker.open(`fatal: ${reason}`, this.#fatalHoldMs);
		this.#onEvent({ type: "fatal", host: this.host, reason });
	}

	/** Clear the stop flag, the pause and the breaker (an operator fixed the cause, e.g. a new token). */
	async resume(): Promise<void> {
		await Promise.all([
			...["fatal", "pause"].map((part) => this.#state.del(this.#key(part))),
			this.#breaker.reset(),
		]);
	}

	/** The fatal record when the host is stopped cluster-wide, else null. */
	async fatal(): Promise<FatalRecord | null> {
		return (await this.#state.get<FatalRecord>(this.#key("fatal"))) ?? null;
	}

	async status(): Promise<HostStatus> {
		const now = Date.now();
		const [pause, breaker, fatal, ok, failed] = await this.#state.getMany<unknown>([
			this.#key("pause"),
			this.#breaker.recordKey,
			this.#key("fatal"),
			...this.#breaker.windowKeys(now),
		]);
		const b = breaker as BreakerRecord | undefined;
		return {
			host: this.host,
			breaker: HostBreaker.stateOf(b, now),
			breakerReason: b?.reason ?? null,
			pausedUntil: typeof pause === "number" && pause > now ? pause : null,
			fatal: (fatal as FatalRecord | undefined) ?? null,
			window: { ok: Number(ok ?? 0), failed: Number(failed ?? 0) },
			budget: { ...this.rate, spacingMs: this.spacingMs },
		};
	}

	/** Wait until this process may send one request now. */
	async #acquire(label: string, signal: AbortSignal, maxWaitMs: number): Promise<Ticket> {
		const started = Date.now();
		const deadline = started + maxWaitMs;
		for (;;) {
			signal.throwIfAborted();
			if (Date.now() > deadline) {
				throw new HostRequestError(this.host, label, 0, "timeout", `no request slot within ${maxWaitMs} ms`);
			}
			const gate = await this.#gate();
			if (gate.waitMs > 0) {
				// A pause or an open breaker that outlasts what this call may wait: say so now.
				if (gate.why && Date.now() + gate.waitMs > deadline) {
					throw new HostRequestError(
						this.host,
						label,
						0,
						"timeout",
						`${gate.why} for ${Math.ceil(gate.waitMs / 1000)} s more, longer than this call waits (${Math.round(maxWaitMs / 1000)} s)`,
					);
				}
				await sleep(Math.min(gate.waitMs, Math.max(1, deadline - Date.now())), signal);
				continue;
			}
			const claim = await this.#budget.claim(signal);
			// A pause or a stop set by another node while this request waited for its turn wins.
			let late: { waitMs: number };
			try {
				late = await this.#gate(gate.trial);
			} catch (err) {
				await this.#budget.unused(claim);
				throw err;
			}
			if (late.waitMs > 0) {
				await this.#budget.unused(claim);
				if (gate.trial) await this.#breaker.releaseTrial();
				continue;
			}
			const waitedMs = Date.now() - started;
			this.#onEvent({ type: "wait", host: this.host, ms: waitedMs });
			return { trial: gate.trial, waitedMs, claim };
		}
	}

	/**
	 * Whether the host may be called now: throws when stopped; a wait when paused or the breaker is
	 * open; in half-open, only the node that wins the trial lease goes on.
	 */
	async #gate(holdingTrial = false): Promise<{ waitMs: number; trial: boolean; why?: string }> {
		// Read from the shared state every time (not cached): `resume()` on any node lifts the stop everywhere.
		const [fatal, pause, breaker] = await this.#state.getMany<unknown>([
			this.#key("fatal"),
			this.#key("pause"),
			this.#breaker.recordKey,
		]);
		if (fatal) throw new HostFatalError(this.host, (fatal as FatalRecord).reason);
		const now = Date.now();
		if (typeof pause === "number" && pause > now) {
			return { waitMs: pause - now, trial: false, why: "the host is paused (Retry-After)" };
		}
		return this.#breaker.admit(breaker as BreakerRecord | undefined, holdingTrial);
	}
}
