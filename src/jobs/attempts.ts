/**
 * The attempts this orchestrator runs: a task leased to a node and called there. While the call
 * runs, its lease is extended; when it ends (an answer, an error, a reply lost in transit, the node
 * gone), the result is acknowledged in the ledger, by the lease holder only (the fence): a leader
 * that lost the lease cannot overwrite a newer attempt. Attempts given up are flagged so their
 * sources stop (`abandonKey`).
 */
import type { Lease } from "../shared-state/index.ts";
import { classify, errorMessage } from "./failures.ts";
import type { JobLedger } from "./ledger.ts";
import { taskLeaseKey } from "./ledger.ts";
import {
	ACTION_OF,
	type LoadedJob,
	type OrchestratorDeps,
	type OrchestratorSettings,
} from "./orchestrator-deps.ts";
import {
	type AttemptClaim,
	abandonKey,
	CLAIM_TTL_MS,
	claimKey,
	type PartialProgress,
	parseSourceResult,
	partialKey,
	resultKey,
	type SourceResult,
} from "./source-contract.ts";
import { cancel, complete, fail, lease as leaseTask } from "./task-machine.ts";
import { EMPTY_COUNTS, type Job, type Task } from "./types.ts";

/** How long an abandoned attempt's flag is kept: longer than any source keeps running unawares. */
const ABANDON_FLAG_TTL_MS = 24 * 3_600_000;

/**
 * How long a dispatched call may go unclaimed by its worker before it is presumed lost in transit:
 * a lease period, and never under 10 s (a loaded worker, its state store a round trip away).
 */
export const dispatchGraceMs = (settings: OrchestratorSettings) =>
	settings.dispatchGraceMs ?? Math.max(10_000, settings.taskLeaseMs);

interface InFlight {
	taskId: string;
	jobId: string;
	source: string;
	node: string;
	lease: Lease;
	timer: NodeJS.Timeout;
	settled: boolean;
	dispatchedAt: number;
	/** Its worker claimed it (see `claimKey`): from then on only the task's timeout bounds it. */
	claimed: boolean;
}

/** What the attempts need of the orchestrator that runs them. */
export interface AttemptHost {
	readonly deps: OrchestratorDeps;
	readonly ledger: JobLedger;
	now(): number;
	random(): number;
	/** Runs `fn` after every ledger write of this process queued before it. */
	exclusive<T>(fn: () => Promise<T>): Promise<T>;
	/** The leader's copy of a job, when it leads and holds it. */
	loaded(jobId: string): LoadedJob | undefined;
	/** Page 1 sized its ZIP: plan the other pages. */
	addPages(job: Job, first: Task, pages: number): Promise<void>;
}

export class Attempts {
	readonly #host: AttemptHost;
	readonly #inflight = new Map<string, InFlight>();

	constructor(host: AttemptHost) {
		this.#host = host;
	}

	/** Whether this process runs an attempt of the task. */
	has(taskId: string): boolean {
		return this.#inflight.has(taskId);
	}

	/** Attempts this process runs on `node`. */
	loadOf(node: string): number {
		let n = 0;
		for (const f of this.#inflight.values()) if (f.node === node) n++;
		return n;
	}

	/**
	 * After the shared state lost its keys (Redis restarted empty): re-take each running attempt's
	 * lease with its token. Answers the tokens kept; the others are given up (flagged to stop).
	 */
	async retake(): Promise<Set<string>> {
		const kept = new Set<string>();
		for (const flight of [...this.#inflight.values()]) {
			if (flight.settled) continue;
			if (await flight.lease.extend(this.#host.deps.settings.taskLeaseMs).catch(() => false)) {
				kept.add(flight.lease.token);
				// Its worker's claim was wiped too: this running attempt must not be judged lost for that.
				flight.claimed = true;
				continue;
			}
			this.#drop(flight);
			await this.#abandon(flight);
		}
		return kept;
	}

	/** Stop extending every attempt and release their leases (another leader takes over at once). */
	async releaseAll(): Promise<void> {
		for (const f of [...this.#inflight.values()]) {
			this.#drop(f);
			await f.lease.release().catch(() => undefined);
		}
	}

	#drop(flight: InFlight): void {
		flight.settled = true;
		clearInterval(flight.timer);
		this.#inflight.delete(flight.taskId);
	}

	/** Lease the task and call it on `node`; null when its lease is held elsewhere. */
	async start(task: Task, node: string): Promise<Task | null> {
		const { state, settings } = this.#host.deps;
		const lease = await state.acquire(taskLeaseKey(task.id), settings.taskLeaseMs);
		if (!lease) return null;
		const leased = { ...leaseTask(task, lease.token, this.#host.now()), node };
		await this.#host.ledger.saveTask(leased);
		const flight: InFlight = {
			taskId: task.id,
			jobId: task.jobId,
			source: task.source,
			node,
			lease,
			settled: false,
			dispatchedAt: this.#host.now(),
			claimed: false,
			// The lease outlives a normal task by being extended while the call runs, and stops being
			// extended once the worker has left the cluster.
			timer: setInterval(() => void this.#keepAlive(flight), Math.max(200, settings.taskLeaseMs / 3)),
		};
		this.#inflight.set(task.id, flight);
		// The lease token names this attempt: sources stop if the orchestrator abandons it.
		const params: Record<string, unknown> =
			task.kind === "collect"
				? { zip: task.zip, page: task.page, jobId: task.jobId, taskId: task.id, attempt: lease.token }
				: { zips: [task.zip], jobId: task.jobId, taskId: task.id, attempt: lease.token };
		this.#host.deps.logger.debug(`Task ${task.id} -> ${node} (attempt ${leased.attempts}).`);
		this.#host.deps
			.call(ACTION_OF(task), params, node, settings.taskTimeoutMs)
			.then(
				(result) => this.#settle(flight, { result }),
				(error: unknown) => this.#settle(flight, { error }),
			)
			.catch((err: unknown) => this.#host.deps.logger.error(`Task ${task.id}: settling failed.`, err));
		return leased;
	}

	async #keepAlive(flight: InFlight): Promise<void> {
		if (flight.settled) return;
		// The worker finished but its reply was lost (a NATS restart drops requests in flight): the
		// result it left in the shared state settles the task.
		const stored = await this.#host.deps.state.get(resultKey(flight.lease.token)).catch(() => undefined);
		if (stored !== undefined) {
			this.#host.deps.logger.info(
				`Task ${flight.taskId}: reply lost in transit; settled from the stored result.`,
			);
			await this.#settle(flight, { result: stored });
			return;
		}
		if (!this.#host.deps.nodeAlive(flight.node)) {
			await this.#settle(flight, {
				error: Object.assign(new Error(`node ${flight.node} left the cluster`), { retryable: true }),
			});
			return;
		}
		if (!flight.claimed && (await this.#lostInTransit(flight))) {
			await this.#settle(flight, {
				error: Object.assign(
					new Error(`no worker started the call on ${flight.node}: lost in transit, dispatched again`),
					{ retryable: true },
				),
			});
			return;
		}
		const held = await flight.lease.extend(this.#host.deps.settings.taskLeaseMs).catch(() => false);
		if (!held && !flight.settled) {
			// Someone else took the task over: this call's result must not be written.
			this.#drop(flight);
			await this.#abandon(flight);
			this.#host.deps.logger.warn(`Task ${flight.taskId}: lease lost while running; result will be dropped.`);
		}
	}

	/**
	 * A call the worker never started: NATS delivers at most once, and a request published while a
	 * route or gateway between the servers reconnects is dropped without an error on either side.
	 * Past the grace, the leader claims the attempt as lost; if the worker claimed it first (it runs,
	 * or waits behind its bulkhead), it is left to run.
	 */
	async #lostInTransit(flight: InFlight): Promise<boolean> {
		if (this.#host.now() - flight.dispatchedAt < dispatchGraceMs(this.#host.deps.settings)) return false;
		const won = await this.#host.deps.state
			.setIfAbsent<AttemptClaim>(claimKey(flight.lease.token), "lost", CLAIM_TTL_MS)
			.catch(() => null);
		if (won === false) flight.claimed = true;
		return won === true;
	}

	/**
	 * Tell the worker to stop this attempt: a call that failed here (timed out, node unreachable) may
	 * still be running there, and must not carry on beside its retry. Sources poll the flag.
	 */
	async #abandon(flight: InFlight): Promise<void> {
		await this.abandonAttempt(flight.lease.token, flight.taskId);
	}

	async abandonAttempt(token: string, taskId: string): Promise<void> {
		await this.#host.deps.state
			.set(abandonKey(token), true, ABANDON_FLAG_TTL_MS)
			.catch((err: unknown) => this.#host.deps.logger.warn(`Task ${taskId}: abandon flag not set.`, err));
	}

	#settle(flight: InFlight, answer: { result?: unknown; error?: unknown }): Promise<void> {
		return this.#host.exclusive(async () => {
			if (flight.settled) return;
			this.#drop(flight);
			let outcome = answer;
			if (outcome.error !== undefined) {
				// A call that failed here (timed out, transport gone) may have finished there.
				const stored = await this.#host.deps.state.get(resultKey(flight.lease.token)).catch(() => undefined);
				if (stored !== undefined) outcome = { result: stored };
			}
			await this.#host.deps.state.del(resultKey(flight.lease.token)).catch(() => undefined);
			// What the attempt stored before it stopped: a cancelled task keeps it as its counts.
			const partial = await this.#host.deps.state
				.get<PartialProgress>(partialKey(flight.lease.token))
				.catch(() => undefined);
			await this.#host.deps.state.del(partialKey(flight.lease.token)).catch(() => undefined);
			if (outcome.error !== undefined) await this.#abandon(flight);
			const { settings, logger } = this.#host.deps;
			// The fence: only the lease holder writes the result.
			if (!(await flight.lease.extend(settings.taskLeaseMs).catch(() => false))) {
				logger.warn(`Task ${flight.taskId}: lease lost before its result was written; dropped.`);
				return;
			}
			const task = await this.#host.ledger.task(flight.taskId);
			if (task?.state !== "leased" || task.leaseToken !== flight.lease.token) {
				await flight.lease.release();
				return;
			}
			const entry = this.#host.loaded(flight.jobId);
			const job = entry?.job ?? (await this.#host.ledger.get(flight.jobId));
			const now = this.#host.now();
			let next: Task;
			if (outcome.error === undefined) {
				const parsed = this.#resultOf(task, outcome.result);
				if (typeof parsed === "string") {
					next = fail(
						task,
						{ message: parsed, retryable: false, permanent: false, node: flight.node },
						now,
						settings,
						this.#host.random(),
					);
				} else {
					next = {
						...complete(task, parsed.counts, now),
						expect: parsed.expect,
						failedRecords: parsed.failed,
					};
					// Page 1 sized the ZIP: plan its other pages before the page is acknowledged, so a
					// leader that dies in between plans them again (same ids: nothing twice).
					if (task.page === 1 && parsed.expect && parsed.expect.pages > 1 && job) {
						await this.#host.addPages(job, next, parsed.expect.pages);
					}
				}
			} else if (
				job?.status === "cancelling" ||
				// The worker saw the cancel flag before this leader did: cancelled, not failed.
				(job && (await this.#host.ledger.cancelRequested(job.id)))
			) {
				next = { ...cancel(task, now), ...(partial?.counts ? { counts: partial.counts } : {}) };
			} else {
				next = fail(task, classify(outcome.error, flight.node), now, settings, this.#host.random());
				logger.warn(`Task ${task.id} attempt ${task.attempts} failed on ${flight.node}.`, {
					error: errorMessage(outcome.error),
					next: next.state,
				});
			}
			await this.#host.ledger.saveTask(next);
			if (entry) {
				const i = entry.tasks.findIndex((t) => t.id === next.id);
				if (i >= 0) entry.tasks[i] = next;
			}
			await flight.lease.release();
		});
	}

	#resultOf(task: Task, result: unknown): SourceResult | string {
		const parsed = parseSourceResult(result);
		// Enrichment answers are not collection counts; a well-formed object is enough.
		if (task.kind === "enrich" && typeof parsed === "string") {
			return result && typeof result === "object"
				? { counts: { ...EMPTY_COUNTS }, expect: null, failed: [] }
				: parsed;
		}
		return parsed;
	}
}
