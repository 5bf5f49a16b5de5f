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
import type { JobStatusView } from "../contracts/orchestrator.ts";
import { errorKindOf, NotFoundError, PERMANENT_KINDS } from "../core/errors.ts";
import type { Lease, SharedState } from "../shared-state/index.ts";
import { JobLedger, LEADER_LEASE_KEY, taskLeaseKey } from "./ledger.ts";
import { type CollectRequest, newJobId, PlanError, pageTasks, planJob, validateRequest } from "./plan.ts";
import { type JobProgress, jobProgress, type SourceThroughput } from "./progress.ts";
import {
	abandonKey,
	type PartialProgress,
	parseSourceResult,
	partialKey,
	resultKey,
	type SourceResult,
} from "./source-contract.ts";
import {
	cancel,
	complete,
	deadLetterOf,
	type FailureInfo,
	fail,
	isDispatchable,
	isSettled,
	jobOutcome,
	lease as leaseTask,
	phaseOpen,
	type RetryPolicy,
	revive,
} from "./task-machine.ts";
import {
	EMPTY_COUNTS,
	type Job,
	MAX_FAILED_RECORDS_PER_JOB,
	MAX_LISTED_DEAD_LETTERS,
	type Task,
	TERMINAL_JOB_STATUSES,
} from "./types.ts";

/** No such job (never created, or expired after the retention): a 404, not bad input. */
export class JobNotFoundError extends NotFoundError {
	readonly jobId: string;
	constructor(jobId: string) {
		super(`no job '${jobId}'`, { type: "NOT_FOUND", data: { id: jobId } });
		this.jobId = jobId;
	}
}

export interface OrchestratorSettings extends RetryPolicy {
	taskLeaseMs: number;
	taskTimeoutMs: number;
	leaderTtlMs: number;
	tickMs: number;
	retentionMs: number;
	/** Tasks of a source running at once per node offering it (the cluster cap grows with nodes). */
	concurrency(source: string): number;
	/** The ZIPs of a `county` collection. */
	countyZips: readonly string[];
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
	/** The region of a node (REGION in its metadata), null when it has none (issue 15). */
	regionOf?(nodeId: string): string | null;
	/** Whether a node's region suits a source's tasks (e.g. mls needs a proxy pool there). Default: yes. */
	suits?(source: string, nodeId: string): boolean;
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

export type { JobStatusView } from "../contracts/orchestrator.ts";

/** A job's tasks as the leader holds them between ticks (it is their only writer). */
interface LoadedJob {
	job: Job;
	tasks: Task[];
	/** Summary last written to the job record (JSON), to write it only when it changed. */
	written: string;
}

/** Requests a task is guessed to need before any of its source finished: a GIS page and its details. */
const TASK_REQUESTS_GUESS = 1000;

/** Tasks a status answer lists at most (a county job has thousands; answers cross the bus). */
const MAX_SHOWN_TASKS = 500;

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
	/** Unfinished jobs and their tasks, loaded once per leadership (the leader is their only writer). */
	readonly #loaded = new Map<string, LoadedJob>();
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
			this.#deps.settings.countyZips,
		);
		const now = this.#now();
		const id = req.jobId ?? newJobId(now, randomUUID().slice(0, 8));
		const existing = await this.ledger.get(id);
		if (existing) return this.status(id);
		const { job, tasks } = planJob(id, spec, now, req.origin ?? "api");
		job.summary = this.#progress(job, tasks);
		await this.ledger.create(job, tasks);
		this.#deps.logger.info(`Job ${id} planned: ${tasks.length} task(s).`, {
			zips: spec.county ? `county (${spec.zips.length} ZIPs)` : spec.zips,
			sources: spec.sources,
		});
		return this.status(id);
	}

	/** One record read: the leader keeps the job's progress on it. */
	async status(id: string, withTasks = false): Promise<JobStatusView> {
		const job = await this.ledger.get(id);
		if (!job) throw new JobNotFoundError(id);
		const progress = job.summary ?? this.#progress(job, await this.ledger.tasks(job));
		// The summary is the answer's `progress`: not twice.
		const view = { ...job, summary: null };
		if (!withTasks) return { job: view, progress };
		const tasks = await this.ledger.tasks(job);
		const shown = [...tasks.filter((t) => !isSettled(t)), ...tasks.filter(isSettled)].slice(
			0,
			MAX_SHOWN_TASKS,
		);
		return { job: view, progress, tasks: shown };
	}

	async list(limit: number): Promise<JobProgress[]> {
		const out: JobProgress[] = [];
		for (const job of await this.ledger.list(limit)) {
			out.push(job.summary ?? this.#progress(job, await this.ledger.tasks(job)));
		}
		return out;
	}

	async cancel(id: string): Promise<JobStatusView> {
		const job = await this.ledger.get(id);
		if (!job) throw new JobNotFoundError(id);
		if (!TERMINAL_JOB_STATUSES.includes(job.status)) await this.ledger.requestCancel(id);
		return this.status(id);
	}

	async retry(id: string): Promise<JobStatusView> {
		const job = await this.ledger.get(id);
		if (!job) throw new JobNotFoundError(id);
		if ((job.deadLetterCount ?? job.deadLetters.length) === 0)
			throw new PlanError([`job '${id}' has no dead letters to retry`]);
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

	#progress(job: Job, tasks: Task[], partials?: ReadonlyMap<string, PartialProgress>): JobProgress {
		const { concurrency, requestsPerSecond } = this.#deps.settings;
		return jobProgress(
			job,
			tasks,
			this.#now(),
			(source): SourceThroughput => ({
				concurrency: concurrency(source),
				requestsPerSecond: requestsPerSecond(source),
			}),
			partials,
		);
	}

	/** What the running attempts of these tasks have reported so far (by task id). */
	async #partials(tasks: Task[]): Promise<Map<string, PartialProgress>> {
		const running = tasks.filter((t) => t.state === "leased" && t.leaseToken);
		const out = new Map<string, PartialProgress>();
		if (running.length === 0) return out;
		const values = await this.#deps.state
			.getMany<PartialProgress>(running.map((t) => partialKey(t.leaseToken as string)))
			.catch(() => []);
		running.forEach((t, i) => {
			const v = values[i];
			if (v?.counts) out.set(t.id, v);
		});
		return out;
	}

	// ---- the leader loop ----

	/** One round: hold or take the leadership, then advance every unfinished job. */
	async tick(): Promise<void> {
		const { state, settings, logger, nodeId } = this.#deps;
		if (this.#leader && !(await this.#leader.extend(settings.leaderTtlMs))) {
			logger.warn(`Orchestrator on ${nodeId} lost the leadership.`);
			this.#leader = null;
			// Another node led first after a Redis wipe: it found no ledger, so write it back for it.
			await this.#restoreIfLedgerLost();
			// Another leader writes the ledger now: what this one held in memory is stale.
			this.#loaded.clear();
			// Calls in flight keep their task leases; their results are still written if the leases hold.
		}
		if (!this.#leader) {
			this.#leader = await state.acquire(LEADER_LEASE_KEY, settings.leaderTtlMs);
			if (!this.#leader) return;
			this.#loaded.clear();
			logger.info(`Orchestrator on ${nodeId} is the leader.`);
		}
		// A Redis restarted without persistence keeps this leader leading (its lease is re-taken) but
		// empties the ledger under it.
		await this.#restoreIfLedgerLost();

		const active = await this.ledger.activeIds();
		for (const id of this.#loaded.keys()) if (!active.includes(id)) this.#loaded.delete(id);
		const loaded: LoadedJob[] = [];
		for (const id of active) {
			let entry = this.#loaded.get(id);
			if (!entry) {
				const job = await this.ledger.get(id);
				if (!job) {
					await this.ledger.forget(id);
					continue;
				}
				entry = { job, tasks: await this.ledger.tasks(job), written: "" };
				this.#loaded.set(id, entry);
			}
			loaded.push(entry);
		}
		for (const entry of loaded) await this.#housekeep(entry);
		await this.#dispatch(loaded);
		for (const entry of loaded) await this.#conclude(entry);
	}

	/**
	 * The shared state lost the ledger (Redis restarted without persistence): none of the jobs this
	 * node held is there any more. Write them back from memory, so no job vanishes. The attempts it
	 * runs keep running: their leases are re-taken (same tokens) before the ledger reappears, so no
	 * leader mistakes them for orphans and runs them twice. Other leased tasks are queued again (their
	 * attempts are told to stop); done ones stay done.
	 */
	async #restoreIfLedgerLost(): Promise<void> {
		if (this.#loaded.size === 0) return;
		const ids = [...this.#loaded.keys()];
		const found = await this.ledger.jobs(ids).catch(() => null);
		if (!found || found.some((j) => j !== undefined)) return;
		const now = this.#now();
		const running = new Set<string>();
		for (const flight of this.#inflight.values()) {
			if (flight.settled) continue;
			if (await flight.lease.extend(this.#deps.settings.taskLeaseMs).catch(() => false)) {
				running.add(flight.lease.token);
				continue;
			}
			flight.settled = true;
			clearInterval(flight.timer);
			this.#inflight.delete(flight.taskId);
			await this.#abandon(flight);
		}
		for (const { job, tasks } of this.#loaded.values()) {
			const restored: Task[] = [];
			for (const t of tasks) {
				if (t.state !== "leased" || (t.leaseToken && running.has(t.leaseToken))) {
					restored.push(t);
					continue;
				}
				if (t.leaseToken) await this.#abandonAttempt(t.leaseToken, t.id);
				restored.push({ ...t, state: "pending", leaseToken: null, notBefore: now });
			}
			await this.ledger.create(job, restored);
		}
		this.#deps.logger.error(
			`The job ledger was lost (Redis restarted without persistence? run it with AOF): ${ids.length} job(s) written back from memory; ${running.size} running attempt(s) kept.`,
			{ jobs: ids },
		);
		this.#deps.broadcast("jobs.ledgerRestored", { jobs: ids });
	}

	/** Apply flags (retry, cancel) and take back tasks whose lease holder is gone. */
	async #housekeep(entry: LoadedJob): Promise<void> {
		const now = this.#now();
		const { job } = entry;
		if (await this.ledger.takeRetry(job.id)) {
			entry.tasks = await this.#rewrite(entry.tasks, (t) => (t.state === "dead" ? revive(t) : t));
			job.status = "running";
			job.finishedAt = null;
			job.deadLetters = [];
			job.deadLetterCount = 0;
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
		// lease can be taken, the holder is gone: count the attempt and queue it again. The probe is
		// held until the task is rewritten: it is the fence that keeps a late result of the old holder
		// (whose extend now fails) from landing beside the retry.
		let stale = false;
		for (const [i, t] of entry.tasks.entries()) {
			if (t.state !== "leased" || this.#inflight.has(t.id)) continue;
			const probe = await this.#deps.state.acquire(taskLeaseKey(t.id), this.#deps.settings.taskLeaseMs);
			if (!probe) continue;
			try {
				// A former leader may have settled it a moment ago (and released its lease): the ledger
				// says what happened, not this leader's copy.
				const fresh = await this.ledger.task(t.id);
				if (fresh?.state !== "leased" || fresh.leaseToken !== t.leaseToken) {
					stale = true;
					continue;
				}
				// The attempt may still run on its worker (its leader died, not the worker): stop it there
				// before its retry starts, so the site never sees the same page twice at once.
				if (t.leaseToken) await this.#abandonAttempt(t.leaseToken, t.id);
				const info: FailureInfo = {
					message: "lease expired (the caller or the worker died)",
					retryable: true,
					permanent: false,
					node: t.node,
				};
				const next =
					job.status === "cancelling" ? cancel(t, now) : fail(t, info, now, this.#deps.settings, 0);
				await this.ledger.saveTask(next);
				entry.tasks[i] = next;
				this.#deps.logger.warn(`Task ${t.id}: lease expired, re-queued.`, { node: t.node });
			} finally {
				await probe.release();
			}
		}
		// Written by another node (a former leader settling its calls, planning pages): read it again.
		if (stale) entry.tasks = await this.ledger.tasks(job);
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
	async #dispatch(loaded: LoadedJob[]): Promise<void> {
		const now = this.#now();
		const busy = new Map<string, number>();
		for (const { tasks } of loaded) {
			for (const t of tasks) if (t.state === "leased") busy.set(t.source, (busy.get(t.source) ?? 0) + 1);
		}
		const caps = new Map<string, number>();
		const capOf = (t: Task) => {
			if (!caps.has(t.source)) caps.set(t.source, this.#capOf(t, loaded));
			return caps.get(t.source)!;
		};
		const order = loaded
			.filter(({ job }) => job.status === "running")
			.sort((a, b) => b.job.spec.priority - a.job.spec.priority || a.job.createdAt - b.job.createdAt);
		for (const entry of order) {
			for (const [i, t] of entry.tasks.entries()) {
				if (!isDispatchable(t, now) || !phaseOpen(t, entry.tasks)) continue;
				if ((busy.get(t.source) ?? 0) >= capOf(t)) continue;
				const node = this.#pickNode(ACTION_OF(t), t.source);
				if (!node) continue;
				const started = await this.#start(t, node);
				if (!started) continue;
				entry.tasks[i] = started;
				busy.set(t.source, (busy.get(t.source) ?? 0) + 1);
			}
		}
	}

	/**
	 * Tasks of a source in flight at once: ORCHESTRATOR_CONCURRENCY_PER_SOURCE per node offering it,
	 * but no more than the source's request budget can serve. Tasks share the budget: past that
	 * many, each one only runs slower (and long enough, past its timeout), so the rest wait queued,
	 * where a node that joins or a budget that is raised picks them up.
	 */
	#capOf(t: Task, loaded: LoadedJob[]): number {
		const { settings } = this.#deps;
		const nodes = Math.max(1, this.#deps.endpoints(ACTION_OF(t)).length);
		const byNodes = settings.concurrency(t.source) * nodes;
		const rps = settings.requestsPerSecond(t.source);
		if (!rps) return byNodes;
		const done = loaded.flatMap((e) =>
			e.tasks.filter((x) => x.source === t.source && x.state === "done" && x.counts),
		);
		const perTask =
			done.length > 0
				? Math.max(1, done.reduce((sum, x) => sum + (x.counts?.requests ?? 0), 0) / done.length)
				: TASK_REQUESTS_GUESS;
		// Each task should get enough of the budget to finish within half its timeout.
		const byBudget = Math.floor((rps * settings.taskTimeoutMs) / 1000 / (2 * perTask));
		return Math.max(1, Math.min(byNodes, byBudget));
	}

	/**
	 * The least busy node offering the action (ties: round robin). Chosen here rather than by the
	 * broker because the registry prefers local endpoints, which would pin every task to the
	 * leader's own node whenever it also runs the source. With regions, only nodes whose region
	 * suits the source are candidates, and the least busy region (tasks in flight per node) goes
	 * first, so a county job is spread over the regions.
	 */
	#pickNode(action: string, source: string): string | null {
		const suits = this.#deps.suits ?? (() => true);
		const nodes = this.#deps.endpoints(action).filter((n) => suits(source, n));
		if (nodes.length === 0) return null;
		const load = (n: string) => [...this.#inflight.values()].filter((f) => f.node === n).length;
		const region = (n: string) => this.#deps.regionOf?.(n) ?? "";
		const regionLoad = new Map<string, number>();
		for (const r of new Set(nodes.map(region))) {
			const members = nodes.filter((n) => region(n) === r);
			regionLoad.set(r, members.reduce((sum, n) => sum + load(n), 0) / members.length);
		}
		const score = (n: string) => regionLoad.get(region(n))! * 1e6 + load(n);
		const cursor = (this.#cursor.get(action) ?? 0) + 1;
		this.#cursor.set(action, cursor);
		const rotated = nodes.map((_, i) => nodes[(i + cursor) % nodes.length]);
		return rotated.reduce((best, n) => (score(n) < score(best) ? n : best), rotated[0]);
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
				? { zip: task.zip, page: task.page, jobId: task.jobId, taskId: task.id, attempt: lease.token }
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
		// The worker finished but its reply was lost (a NATS restart drops requests in flight): the
		// result it left in the shared state settles the task.
		const stored = await this.#deps.state.get(resultKey(flight.lease.token)).catch(() => undefined);
		if (stored !== undefined) {
			this.#deps.logger.info(`Task ${flight.taskId}: reply lost in transit; settled from the stored result.`);
			await this.#settle(flight, { result: stored });
			return;
		}
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
		await this.#abandonAttempt(flight.lease.token, flight.taskId);
	}

	async #abandonAttempt(token: string, taskId: string): Promise<void> {
		await this.#deps.state
			.set(abandonKey(token), true, ABANDON_FLAG_TTL_MS)
			.catch((err: unknown) => this.#deps.logger.warn(`Task ${taskId}: abandon flag not set.`, err));
	}

	#settle(flight: InFlight, answer: { result?: unknown; error?: unknown }): Promise<void> {
		return this.#exclusive(async () => {
			if (flight.settled) return;
			flight.settled = true;
			clearInterval(flight.timer);
			this.#inflight.delete(flight.taskId);
			let outcome = answer;
			if (outcome.error !== undefined) {
				// A call that failed here (timed out, transport gone) may have finished there.
				const stored = await this.#deps.state.get(resultKey(flight.lease.token)).catch(() => undefined);
				if (stored !== undefined) outcome = { result: stored };
			}
			await this.#deps.state.del(resultKey(flight.lease.token)).catch(() => undefined);
			// What the attempt stored before it stopped: a cancelled task keeps it as its counts.
			const partial = await this.#deps.state
				.get<PartialProgress>(partialKey(flight.lease.token))
				.catch(() => undefined);
			await this.#deps.state.del(partialKey(flight.lease.token)).catch(() => undefined);
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
			const entry = this.#loaded.get(flight.jobId);
			const job = entry?.job ?? (await this.ledger.get(flight.jobId));
			const now = this.#now();
			let next: Task;
			if (outcome.error === undefined) {
				const parsed = this.#resultOf(task, outcome.result);
				if (typeof parsed === "string") {
					next = fail(
						task,
						{ message: parsed, retryable: false, permanent: false, node: flight.node },
						now,
						settings,
						this.#random(),
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
						await this.#addPages(job, next, parsed.expect.pages);
					}
				}
			} else if (
				job?.status === "cancelling" ||
				// The worker saw the cancel flag before this leader did: cancelled, not failed.
				(job && (await this.ledger.cancelRequested(job.id)))
			) {
				next = { ...cancel(task, now), ...(partial?.counts ? { counts: partial.counts } : {}) };
			} else {
				next = fail(task, classify(outcome.error, flight.node), now, settings, this.#random());
				logger.warn(`Task ${task.id} attempt ${task.attempts} failed on ${flight.node}.`, {
					error: errorMessage(outcome.error),
					next: next.state,
				});
			}
			await this.ledger.saveTask(next);
			if (entry) {
				const i = entry.tasks.findIndex((t) => t.id === next.id);
				if (i >= 0) entry.tasks[i] = next;
			}
			await flight.lease.release();
		});
	}

	async #addPages(job: Job, first: Task, pages: number): Promise<void> {
		const entry = this.#loaded.get(job.id);
		const knownIds = entry ? entry.tasks.map((t) => t.id) : await this.ledger.taskIds(job.id);
		const fresh = await this.ledger.addTasks(job, pageTasks(first, pages), knownIds);
		if (fresh.length === 0) return;
		job.taskCount = knownIds.length + fresh.length;
		if (entry) {
			// Enrichment tasks stay last, so the pages of a ZIP are dispatched before them.
			const known = new Set(knownIds);
			entry.tasks.push(...fresh.filter((t) => !known.has(t.id)));
		}
		await this.ledger.saveJob(job);
		this.#deps.logger.debug(`Job ${job.id}: ${first.source} ${first.zip} has ${pages} pages.`);
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

	/** Finish jobs whose tasks have all settled; keep the job's summary current; publish progress. */
	async #conclude(entry: LoadedJob): Promise<void> {
		const { job } = entry;
		let outcome = jobOutcome(job, entry.tasks);
		if (outcome !== "running" && outcome !== "cancelling") {
			// Before ending a job, its tasks as the ledger has them: a former leader still settling its
			// calls may have planned pages this leader's copy lacks.
			entry.tasks = await this.ledger.tasks(job);
			outcome = jobOutcome(job, entry.tasks);
		}
		const { tasks } = entry;
		const now = this.#now();
		if (outcome === "running" || outcome === "cancelling") {
			const last = this.#lastProgress.get(job.id) ?? 0;
			if (now - last >= 1000) {
				this.#lastProgress.set(job.id, now);
				// Running attempts' records count as they are stored, not only when a task ends.
				const progress = this.#progress(job, tasks, await this.#partials(tasks));
				const written = JSON.stringify({ ...progress, etaS: null, elapsedS: null, itemsPerS: null });
				if (written !== entry.written) {
					job.summary = progress;
					job.taskCount = tasks.length;
					await this.ledger.saveJob(job);
					entry.written = written;
				}
				this.#deps.broadcast("job.progress", { ...progress });
			}
			return;
		}
		job.status = outcome;
		job.finishedAt = now;
		job.leader = this.#deps.nodeId;
		const dead = tasks.filter((t) => t.state === "dead");
		job.deadLetters = dead.slice(0, MAX_LISTED_DEAD_LETTERS).map(deadLetterOf);
		job.deadLetterCount = dead.length;
		job.failedRecords = tasks
			.flatMap((t) =>
				(t.failedRecords ?? []).map((f) => ({ ...f, taskId: t.id, source: t.source, zip: t.zip })),
			)
			.slice(0, MAX_FAILED_RECORDS_PER_JOB);
		job.taskCount = tasks.length;
		job.summary = this.#progress(job, tasks);
		await this.ledger.finish(job, tasks);
		this.#loaded.delete(job.id);
		this.#lastProgress.delete(job.id);
		const progress = job.summary;
		this.#deps.logger.info(`Job ${job.id} ${outcome}.`, {
			counts: progress.counts,
			...(progress.enriched ? { enriched: progress.enriched } : {}),
			deadLetters: job.deadLetterCount,
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
 * A failed attempt by the kind of its error (src/core/errors.ts, `errorKindOf`). Node gone
 * (rejected, not available, left the cluster) or a retryable answer: re-dispatch soon. A dependency
 * of the worker down (the store): wait with backoff, as long as it takes, without using up attempts.
 * A permanent kind (a refusal, bad input, not found, not configured): dead letter at once. Anything
 * else: retry with backoff. A timeout is never re-dispatched at once (it would only time out again).
 */
export function classify(err: unknown, node: string | null): FailureInfo {
	const kind = errorKindOf(err);
	if (kind === "dependency") {
		return { message: errorMessage(err), retryable: false, permanent: false, dependency: true, node };
	}
	const e = (err ?? {}) as { name?: string; retryable?: boolean };
	return {
		message: errorMessage(err),
		retryable: (kind === "transient" || e.retryable === true) && e.name !== "RequestTimeoutError",
		permanent: kind !== null && PERMANENT_KINDS.has(kind),
		node,
	};
}
