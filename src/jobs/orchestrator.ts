/**
 * The orchestrator engine: one leader at a time (a lease with expiry in SharedState) advances every
 * unfinished job of the ledger: it leases tasks, dispatches them to source nodes, extends the lease
 * while a call runs, acknowledges results, retries with backoff, dead-letters, and finishes jobs.
 *
 * Durability rests on three rules:
 * - The ledger is in SharedState, so a new leader carries on where a dead one stopped.
 * - A task's result is written only by the holder of its lease (checked by extending the lease
 *   right before the write), so a leader that lost its lease cannot overwrite a newer attempt.
 * - A leased task whose lease expired (its caller died) or whose worker left the cluster is
 *   dispatched again; sources write idempotently, so running a task twice has one effect.
 *
 * The engine knows the broker only through `OrchestratorDeps`, so it stays testable and thin.
 */
import { randomUUID } from "node:crypto";
import type { Lease, SharedState } from "../shared-state/index.ts";
import { JobLedger, LEADER_LEASE_KEY, taskLeaseKey } from "./ledger.ts";
import { type CollectRequest, newJobId, PlanError, planJob, validateRequest } from "./plan.ts";
import { type JobProgress, jobProgress, type SourceThroughput } from "./progress.ts";
import { abandonKey, parseSourceResult } from "./source-contract.ts";
import {
	cancel,
	complete,
	deadLetterOf,
	type FailureInfo,
	fail,
	isDispatchable,
	jobOutcome,
	lease as leaseTask,
	phaseOpen,
	type RetryPolicy,
	revive,
} from "./task-machine.ts";
import { EMPTY_COUNTS, type Job, type Task, type TaskCounts, TERMINAL_JOB_STATUSES } from "./types.ts";

export interface OrchestratorSettings extends RetryPolicy {
	taskLeaseMs: number;
	taskTimeoutMs: number;
	leaderTtlMs: number;
	tickMs: number;
	retentionMs: number;
	concurrency(source: string): number;
	requestsPerSecond(source: string): number | null;
}

export interface DispatchedCall {
	promise: Promise<unknown>;
}

export interface OrchestratorDeps {
	state: SharedState;
	nodeId: string;
	settings: OrchestratorSettings;
	/** Nodes currently offering an action (available ones only). */
	endpoints(action: string): string[];
	/** Call `action` on node `nodeId`, no framework retries (the orchestrator retries). */
	call(action: string, params: Record<string, unknown>, nodeId: string, timeoutMs: number): Promise<unknown>;
	nodeAlive(nodeId: string): boolean;
	/** Sources with a collectZip action anywhere in the cluster; whether an llm enricher runs. */
	availableSources(): string[];
	enrichAvailable(): boolean;
	broadcast(event: string, payload: Record<string, unknown>): void;
	logger: {
		info(...args: unknown[]): void;
		warn(...args: unknown[]): void;
		error(...args: unknown[]): void;
		debug(...args: unknown[]): void;
	};
	now?: () => number;
	random?: () => number;
}

interface InFlight {
	taskId: string;
	jobId: string;
	source: string;
	node: string;
	lease: Lease;
	timer: NodeJS.Timeout;
	settled: boolean;
}

export interface JobStatusView {
	job: Job;
	progress: JobProgress;
	/** Present when asked for (`status({id, tasks: true})`). */
	tasks?: Task[];
}

/** How long an abandoned attempt's flag is kept: longer than any source keeps running unawares. */
const ABANDON_FLAG_TTL_MS = 24 * 3_600_000;

const ACTION_OF = (t: Task) => (t.kind === "collect" ? `${t.source}.collectZip` : "llm.enrichPending");

export class Orchestrator {
	readonly ledger: JobLedger;
	readonly #deps: OrchestratorDeps;
	readonly #inflight = new Map<string, InFlight>();
	#leader: Lease | null = null;
	#loop: NodeJS.Timeout | null = null;
	#stopped = true;
	/** Serializes every ledger write of this process (tick and call settlements). */
	#queue: Promise<unknown> = Promise.resolve();
	readonly #lastProgress = new Map<string, number>();
	/** Round-robin cursor per action, to break ties between equally loaded nodes. */
	readonly #cursor = new Map<string, number>();

	constructor(deps: OrchestratorDeps) {
		this.#deps = deps;
		this.ledger = new JobLedger(deps.state, deps.settings.retentionMs);
	}

	get isLeader(): boolean {
		return this.#leader !== null;
	}

	#now(): number {
		return (this.#deps.now ?? Date.now)();
	}

	#random(): number {
		return (this.#deps.random ?? Math.random)();
	}

	#exclusive<T>(fn: () => Promise<T>): Promise<T> {
		const run = this.#queue.then(fn, fn);
		this.#queue = run.catch(() => undefined);
		return run;
	}

	start(): void {
		this.#stopped = false;
		const loop = async () => {
			if (this.#stopped) return;
			try {
				await this.#exclusive(() => this.tick());
			} catch (err) {
				this.#deps.logger.warn("Orchestrator tick failed; retrying on the next tick.", err);
			}
			if (!this.#stopped) this.#loop = setTimeout(loop, this.#deps.settings.tickMs);
		};
		this.#loop = setTimeout(loop, 0);
	}

	/**
	 * Stop leading: release the leader lease and the leases of in-flight calls, so another instance
	 * takes over at once instead of waiting for the expiries. Results that arrive later are dropped.
	 */
	async stop(): Promise<void> {
		this.#stopped = true;
		if (this.#loop) clearTimeout(this.#loop);
		await this.#exclusive(async () => {
			for (const f of this.#inflight.values()) {
				f.settled = true;
				clearInterval(f.timer);
				await f.lease.release().catch(() => undefined);
			}
			this.#inflight.clear();
			await this.#leader?.release().catch(() => undefined);
			this.#leader = null;
		});
	}

	// ---- actions (any instance) ----

	async collect(req: CollectRequest & { jobId?: string; origin?: string }): Promise<JobStatusView> {
		const spec = validateRequest(
			req,
			this.#deps.availableSources(),
			this.#deps.availableSources(),
			this.#deps.enrichAvailable(),
		);
		const now = this.#now();
		const id = req.jobId ?? newJobId(now, randomUUID().slice(0, 8));
		const existing = await this.ledger.get(id);
		if (existing) return this.status(id);
		const { job, tasks } = planJob(id, spec, now, req.origin ?? "api");
		await this.ledger.create(job, tasks);
		this.#deps.logger.info(`Job ${id} planned: ${tasks.length} task(s).`, {
			zips: spec.zips,
			sources: spec.sources,
		});
		return this.status(id);
	}

	async status(id: string, withTasks = false): Promise<JobStatusView> {
		const job = await this.ledger.get(id);
		if (!job) throw new PlanError([`no job '${id}'`]);
		const tasks = await this.ledger.tasks(job);
		return { job, progress: this.#progress(job, tasks), ...(withTasks ? { tasks } : {}) };
	}

	async list(limit: number): Promise<JobProgress[]> {
		const jobs = (await this.ledger.list()).slice(0, limit);
		const out: JobProgress[] = [];
		for (const job of jobs) out.push(this.#progress(job, await this.ledger.tasks(job)));
		return out;
	}

	async cancel(id: string): Promise<JobStatusView> {
		const job = await this.ledger.get(id);
		if (!job) throw new PlanError([`no job '${id}'`]);
		if (!TERMINAL_JOB_STATUSES.includes(job.status)) await this.ledger.requestCancel(id);
		return this.status(id);
	}

	async retry(id: string): Promise<JobStatusView> {
		const job = await this.ledger.get(id);
		if (!job) throw new PlanError([`no job '${id}'`]);
		if (job.deadLetters.length === 0) throw new PlanError([`job '${id}' has no dead letters to retry`]);
		if (job.status === "cancelled") throw new PlanError([`job '${id}' was cancelled`]);
		// The job is off the leader's work list while finished, so writing it here races no one; the
		// leader revives the dead tasks when it sees the request.
		job.status = "running";
		job.finishedAt = null;
		await this.ledger.saveJob(job);
		await this.ledger.requestRetry(id);
		await this.ledger.reactivate(job);
		return this.status(id);
	}

	#progress(job: Job, tasks: Task[]): JobProgress {
		const { concurrency, requestsPerSecond } = this.#deps.settings;
		return jobProgress(
			job,
			tasks,
			this.#now(),
			(source): SourceThroughput => ({
				concurrency: concurrency(source),
				requestsPerSecond: requestsPerSecond(source),
			}),
		);
	}

	// ---- the leader loop ----

	/** One round: hold or take the leadership, then advance every unfinished job. */
	async tick(): Promise<void> {
		const { state, settings, logger, nodeId } = this.#deps;
		if (this.#leader && !(await this.#leader.extend(settings.leaderTtlMs))) {
			logger.warn(`Orchestrator on ${nodeId} lost the leadership.`);
			this.#leader = null;
			// Calls in flight keep their task leases; their results are still written if the leases hold.
		}
		if (!this.#leader) {
			this.#leader = await state.acquire(LEADER_LEASE_KEY, settings.leaderTtlMs);
			if (!this.#leader) return;
			logger.info(`Orchestrator on ${nodeId} is the leader.`);
		}

		const loaded: { job: Job; tasks: Task[] }[] = [];
		for (const id of await this.ledger.activeIds()) {
			const job = await this.ledger.get(id);
			if (!job) {
				await this.ledger.forget(id);
				continue;
			}
			loaded.push({ job, tasks: await this.ledger.tasks(job) });
		}
		for (const entry of loaded) await this.#housekeep(entry);
		await this.#dispatch(loaded);
		for (const entry of loaded) await this.#conclude(entry);
	}

	/** Apply flags (retry, cancel) and take back tasks whose lease holder is gone. */
	async #housekeep(entry: { job: Job; tasks: Task[] }): Promise<void> {
		const now = this.#now();
		const { job } = entry;
		if (await this.ledger.takeRetry(job.id)) {
			entry.tasks = await this.#rewrite(entry.tasks, (t) => (t.state === "dead" ? revive(t) : t));
			job.status = "running";
			job.finishedAt = null;
			job.deadLetters = [];
			await this.ledger.saveJob(job);
			this.#deps.logger.info(`Job ${job.id}: dead letters back in the queue.`);
		}
		if (job.status === "running" && (await this.ledger.cancelRequested(job.id))) {
			job.status = "cancelling";
			await this.ledger.saveJob(job);
			this.#deps.logger.info(`Job ${job.id}: cancelling.`);
		}
		if (job.status === "cancelling") {
			entry.tasks = await this.#rewrite(entry.tasks, (t) => (t.state === "pending" ? cancel(t, now) : t));
		}
		// A leased task that this leader is not running belongs to a dead or former caller. If its
		// lease can be taken, the holder is gone: count the attempt and queue it again.
		for (const [i, t] of entry.tasks.entries()) {
			if (t.state !== "leased" || this.#inflight.has(t.id)) continue;
			const probe = await this.#deps.state.acquire(taskLeaseKey(t.id), 1000);
			if (!probe) continue;
			await probe.release();
			const info: FailureInfo = {
				message: "lease expired (the caller or the worker died)",
				retryable: true,
				permanent: false,
				node: t.node,
			};
			const next = job.status === "cancelling" ? cancel(t, now) : fail(t, info, now, this.#deps.settings, 0);
			await this.ledger.saveTask(next);
			entry.tasks[i] = next;
			this.#deps.logger.warn(`Task ${t.id}: lease expired, re-queued.`, { node: t.node });
		}
	}

	async #rewrite(tasks: Task[], change: (t: Task) => Task): Promise<Task[]> {
		const out: Task[] = [];
		for (const t of tasks) {
			const next = change(t);
			if (next !== t) await this.ledger.saveTask(next);
			out.push(next);
		}
		return out;
	}

	/** Lease and start pending tasks, higher priority and older jobs first, within each source's cap. */
	async #dispatch(loaded: { job: Job; tasks: Task[] }[]): Promise<void> {
		const now = this.#now();
		const busy = new Map<string, number>();
		for (const { tasks } of loaded) {
			for (const t of tasks) if (t.state === "leased") busy.set(t.source, (busy.get(t.source) ?? 0) + 1);
		}
		const order = loaded
			.filter(({ job }) => job.status === "running")
			.sort((a, b) => b.job.spec.priority - a.job.spec.priority || a.job.createdAt - b.job.createdAt);
		for (const entry of order) {
			for (const [i, t] of entry.tasks.entries()) {
				if (!isDispatchable(t, now) || !phaseOpen(t, entry.tasks)) continue;
				if ((busy.get(t.source) ?? 0) >= this.#deps.settings.concurrency(t.source)) continue;
				const node = this.#pickNode(ACTION_OF(t));
				if (!node) continue;
				const started = await this.#start(t, node);
				if (!started) continue;
				entry.tasks[i] = started;
				busy.set(t.source, (busy.get(t.source) ?? 0) + 1);
			}
		}
	}

	/**
	 * The least busy node offering the action (ties: round robin). Chosen here rather than by the
	 * broker because the registry prefers local endpoints, which would pin every task to the
	 * leader's own node whenever it also runs the source.
	 */
	#pickNode(action: string): string | null {
		const nodes = this.#deps.endpoints(action);
		if (nodes.length === 0) return null;
		const load = (n: string) => [...this.#inflight.values()].filter((f) => f.node === n).length;
		const cursor = (this.#cursor.get(action) ?? 0) + 1;
		this.#cursor.set(action, cursor);
		const rotated = nodes.map((_, i) => nodes[(i + cursor) % nodes.length]);
		return rotated.reduce((best, n) => (load(n) < load(best) ? n : best), rotated[0]);
	}

	async #start(task: Task, node: string): Promise<Task | null> {
		const { state, settings } = this.#deps;
		const lease = await state.acquire(taskLeaseKey(task.id), settings.taskLeaseMs);
		if (!lease) return null;
		const leased = { ...leaseTask(task, lease.token, this.#now()), node };
		await this.ledger.saveTask(leased);
		const flight: InFlight = {
			taskId: task.id,
			jobId: task.jobId,
			source: task.source,
			node,
			lease,
			settled: false,
			// The lease outlives a normal task by being extended while the call runs, and stops being
			// extended once the worker has left the cluster.
			timer: setInterval(() => void this.#keepAlive(flight), Math.max(200, settings.taskLeaseMs / 3)),
		};
		this.#inflight.set(task.id, flight);
		// The lease token names this attempt: sources stop if the orchestrator abandons it.
		const params: Record<string, unknown> =
			task.kind === "collect"
				? { zip: task.zip, jobId: task.jobId, taskId: task.id, attempt: lease.token }
				: { zips: [task.zip], jobId: task.jobId, taskId: task.id, attempt: lease.token };
		this.#deps.logger.debug(`Task ${task.id} -> ${node} (attempt ${leased.attempts}).`);
		this.#deps
			.call(ACTION_OF(task), params, node, settings.taskTimeoutMs)
			.then(
				(result) => this.#settle(flight, { result }),
				(error: unknown) => this.#settle(flight, { error }),
			)
			.catch((err: unknown) => this.#deps.logger.error(`Task ${task.id}: settling failed.`, err));
		return leased;
	}

	async #keepAlive(flight: InFlight): Promise<void> {
		if (flight.settled) return;
		if (!this.#deps.nodeAlive(flight.node)) {
			await this.#settle(flight, {
				error: Object.assign(new Error(`node ${flight.node} left the cluster`), { retryable: true }),
			});
			return;
		}
		const held = await flight.lease.extend(this.#deps.settings.taskLeaseMs).catch(() => false);
		if (!held && !flight.settled) {
			// Someone else took the task over: this call's result must not be written.
			flight.settled = true;
			clearInterval(flight.timer);
			this.#inflight.delete(flight.taskId);
			await this.#abandon(flight);
			this.#deps.logger.warn(`Task ${flight.taskId}: lease lost while running; result will be dropped.`);
		}
	}

	/**
	 * Tell the worker to stop this attempt: a call that failed here (timed out, node unreachable) may
	 * still be running there, and must not carry on beside its retry. Sources poll the flag.
	 */
	async #abandon(flight: InFlight): Promise<void> {
		await this.#deps.state
			.set(abandonKey(flight.lease.token), true, ABANDON_FLAG_TTL_MS)
			.catch((err: unknown) => this.#deps.logger.warn(`Task ${flight.taskId}: abandon flag not set.`, err));
	}

	#settle(flight: InFlight, outcome: { result?: unknown; error?: unknown }): Promise<void> {
		return this.#exclusive(async () => {
			if (flight.settled) return;
			flight.settled = true;
			clearInterval(flight.timer);
			this.#inflight.delete(flight.taskId);
			if (outcome.error !== undefined) await this.#abandon(flight);
			const { settings, logger } = this.#deps;
			// The fence: only the lease holder writes the result.
			if (!(await flight.lease.extend(settings.taskLeaseMs).catch(() => false))) {
				logger.warn(`Task ${flight.taskId}: lease lost before its result was written; dropped.`);
				return;
			}
			const task = await this.ledger.task(flight.taskId);
			if (task?.state !== "leased" || task.leaseToken !== flight.lease.token) {
				await flight.lease.release();
				return;
			}
			const job = await this.ledger.get(flight.jobId);
			const now = this.#now();
			let next: Task;
			if (outcome.error === undefined) {
				const counts = this.#countsOf(task, outcome.result);
				next =
					typeof counts === "string"
						? fail(
								task,
								{ message: counts, retryable: false, permanent: false, node: flight.node },
								now,
								settings,
								this.#random(),
							)
						: complete(task, counts, now);
			} else if (job?.status === "cancelling") {
				next = cancel(task, now);
			} else {
				next = fail(task, classify(outcome.error, flight.node), now, settings, this.#random());
				logger.warn(`Task ${task.id} attempt ${task.attempts} failed on ${flight.node}.`, {
					error: errorMessage(outcome.error),
					next: next.state,
				});
			}
			await this.ledger.saveTask(next);
			await flight.lease.release();
		});
	}

	#countsOf(task: Task, result: unknown): TaskCounts | string {
		const counts = parseSourceResult(result);
		// Enrichment answers are not collection counts; a well-formed object is enough.
		if (task.kind === "enrich" && typeof counts === "string") {
			return result && typeof result === "object" ? { ...EMPTY_COUNTS } : counts;
		}
		return counts;
	}

	/** Finish jobs whose tasks have all settled; publish progress. */
	async #conclude(entry: { job: Job; tasks: Task[] }): Promise<void> {
		const { job } = entry;
		const tasks = await this.ledger.tasks(job);
		const outcome = jobOutcome(job, tasks);
		const now = this.#now();
		if (outcome === "running" || outcome === "cancelling") {
			const last = this.#lastProgress.get(job.id) ?? 0;
			if (now - last >= 1000) {
				this.#lastProgress.set(job.id, now);
				this.#deps.broadcast("job.progress", { ...this.#progress(job, tasks) });
			}
			return;
		}
		job.status = outcome;
		job.finishedAt = now;
		job.leader = this.#deps.nodeId;
		job.deadLetters = tasks.filter((t) => t.state === "dead").map(deadLetterOf);
		await this.ledger.finish(job, tasks);
		this.#lastProgress.delete(job.id);
		const progress = this.#progress(job, tasks);
		this.#deps.logger.info(`Job ${job.id} ${outcome}.`, {
			counts: progress.counts,
			...(progress.enriched ? { enriched: progress.enriched } : {}),
			deadLetters: job.deadLetters.length,
		});
		const event =
			outcome === "failed" ? "job.failed" : outcome === "cancelled" ? "job.cancelled" : "job.completed";
		this.#deps.broadcast(event, { ...progress, deadLetters: job.deadLetters });
	}
}

function errorMessage(err: unknown): string {
	if (err instanceof Error) return `${err.name}: ${err.message}`;
	return String(err);
}

/**
 * Node gone (rejected, not available, left the cluster): re-dispatch soon. Bad input or a refusal
 * (4xx other than 408/429): dead letter at once. Anything else: retry with backoff.
 */
export function classify(err: unknown, node: string | null): FailureInfo {
	const e = (err ?? {}) as { name?: string; code?: number; retryable?: boolean };
	const nodeGone = ["RequestRejectedError", "ServiceNotAvailableError", "ServiceNotFoundError"].includes(
		e.name ?? "",
	);
	const code = typeof e.code === "number" ? e.code : 500;
	const permanent = code >= 400 && code < 500 && code !== 408 && code !== 429 && !nodeGone;
	return {
		message: errorMessage(err),
		retryable: nodeGone || (e.retryable === true && e.name !== "RequestTimeoutError"),
		permanent,
		node,
	};
}
