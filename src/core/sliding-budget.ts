/**
 * A host's request budget — at most `points` requests in any sliding window of `windowMs`, for the
 * whole cluster — used to the last request.
 *
 * Requests take consecutive numbers from one shared counter. Request k may leave only once request
 * k - points has *finished* (its answer came back, it failed, or it was given up) and a window has
 * passed since: `send(k) >= done(k - points) + windowMs`. The requests with the same number modulo
 * `points` form a chain in which each one leaves a window after the previous one's answer, so each
 * chain has at most one request in any window, and the `points` chains at most `points` — measured
 * by the host, on arrival: a request arrives after it leaves and before its answer comes back, so no
 * allowance for timer lateness, network delays or a loaded machine is needed, only for clock skew
 * between nodes (`marginMs`). The budget is lost only for the answer time of each request, not for a
 * worst-case slack: ~0.97-0.99 of the budget with a 1 s window on loopback, where evenly spaced slots
 * with a 250 ms slack gave 0.80.
 *
 * A number taken and not used (a pause or breaker met after taking it, a cancelled call) is marked
 * done with the finish time its own predecessor gave it, so its successor is held exactly as long
 * as it was. A holder that dies stops refreshing its `pending` record; once that has expired, its
 * successor counts it as finished at that moment (if it had sent anything, the host had it by then).
 */
import type { SharedState } from "../shared-state/index.ts";
import { sleep } from "../utils/time.ts";

interface Pending {
	/** Earliest time this request may leave, once known (0 while its predecessor runs). */
	sendAt: number;
}

export interface BudgetClaim {
	index: number;
	/** Finish time of the predecessor this claim waited for (what an unused claim passes on). */
	after: number;
	/** When it may leave, once known (kept in its pending record for its successor). */
	sendAt: number;
	sentAt: number | null;
	heartbeat: NodeJS.Timeout;
	settled: boolean;
}

export interface SlidingBudgetOptions {
	points: number;
	windowMs: number;
	/** Added to the window: clock skew between nodes. */
	marginMs: number;
	/** How long a silent holder's number stays pending (its heartbeat refreshes it). Default 5 s. */
	pendingTtlMs?: number;
}

export class SlidingBudget {
	readonly #state: SharedState;
	readonly #key: (part: string) => string;
	readonly #points: number;
	readonly #windowMs: number;
	readonly #marginMs: number;
	readonly #pendingTtlMs: number;
	readonly #doneTtlMs: number;
	readonly #pollMs: number;

	constructor(state: SharedState, key: (part: string) => string, opts: SlidingBudgetOptions) {
		this.#state = state;
		this.#key = key;
		this.#points = opts.points;
		this.#windowMs = opts.windowMs;
		this.#marginMs = Math.max(1, opts.marginMs);
		this.#pendingTtlMs = opts.pendingTtlMs ?? 5000;
		// A finish time is read by its successor soon after it is written; kept a while longer for safety.
		this.#doneTtlMs = 2 * this.#windowMs + 10 * this.#pendingTtlMs + 60_000;
		// Polling while a predecessor's answer is awaited: its cost is this much of the budget at most.
		this.#pollMs = Math.min(250, Math.max(5, Math.round(this.#windowMs / 200)));
	}

	/** Takes the next number and waits until it may leave. Throws the signal's reason when aborted. */
	async claim(signal?: AbortSignal): Promise<BudgetClaim> {
		const index = await this.#state.incr(this.#key("seq"));
		const claim: BudgetClaim = {
			index,
			after: 0,
			sendAt: 0,
			sentAt: null,
			settled: false,
			heartbeat: setInterval(
				() => {
					if (!claim.settled) void this.#pending(claim).catch(() => undefined);
				},
				Math.max(100, this.#pendingTtlMs / 3),
			),
		};
		claim.heartbeat.unref();
		try {
			await this.#pending(claim);
			claim.after = await this.#predecessorDone(index - this.#points, signal);
			if (claim.after > 0) {
				claim.sendAt = claim.after + this.#windowMs + this.#marginMs;
				await this.#pending(claim);
				const wait = claim.sendAt - Date.now();
				if (wait > 0) await sleep(wait, signal);
			}
			return claim;
		} catch (err) {
			// Aborted while waiting: nothing was sent; the successor waits from now (its predecessor's
			// finish time may not be known yet).
			await this.#settle(claim, Date.now());
			throw err;
		}
	}

	/** The request is leaving now. */
	sent(claim: BudgetClaim): void {
		claim.sentAt = Date.now();
	}

	/** The request's answer came back (or it failed, or was given up after it left). */
	async done(claim: BudgetClaim): Promise<void> {
		await this.#settle(claim, Date.now());
	}

	/** The number was not used (nothing sent): its successor is held as long as it was. */
	async unused(claim: BudgetClaim): Promise<void> {
		await this.#settle(claim, claim.sentAt === null ? claim.after : Date.now());
	}

	#pending(claim: BudgetClaim): Promise<void> {
		return this.#state.set<Pending>(
			this.#key(`pending:${claim.index}`),
			{ sendAt: claim.sendAt },
			this.#pendingTtlMs,
		);
	}

	async #settle(claim: BudgetClaim, finishedAt: number): Promise<void> {
		if (claim.settled) return;
		claim.settled = true;
		clearInterval(claim.heartbeat);
		// 0 would mean "free": a claim that inherits "free" passes on a time long past instead.
		await this.#state.set(this.#key(`done:${claim.index}`), Math.max(1, finishedAt), this.#doneTtlMs);
		await this.#state.del(this.#key(`pending:${claim.index}`));
	}

	/** When request `index` finished (0: no such request); waits for it while it runs. */
	async #predecessorDone(index: number, signal?: AbortSignal): Promise<number> {
		if (index < 1) return 0;
		const started = Date.now();
		for (;;) {
			signal?.throwIfAborted();
			const [done, pending] = await this.#state.getMany<unknown>([
				this.#key(`done:${index}`),
				this.#key(`pending:${index}`),
			]);
			if (typeof done === "number") return done;
			const now = Date.now();
			if (pending === undefined) {
				// Neither finished nor pending: its holder died (its heartbeat stopped), or the record is older
				// than any window (a long idle spell). Either way the host has had whatever it sent by now.
				// A grace period covers the moment between a number being taken and its record written.
				if (now - started > this.#pendingTtlMs / 2) {
					await this.#state.setIfAbsent(this.#key(`done:${index}`), now, this.#doneTtlMs);
					const settled = await this.#state.get<number>(this.#key(`done:${index}`));
					return settled ?? now;
				}
				await sleep(this.#pollMs, signal);
				continue;
			}
			// It cannot finish before it leaves: sleep until then (less polling of the shared state).
			const sendAt = (pending as Pending).sendAt;
			const until = sendAt > now ? sendAt : now + this.#pollMs;
			await sleep(Math.max(1, until - now), signal);
		}
	}
}
