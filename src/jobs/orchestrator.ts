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
import { NotFoundError } from "../core/errors.ts";
import type { Lease } from "../shared-state/index.ts";
import { Attempts } from "./attempts.ts";
import { JobLedger, LEADER_LEASE_KEY, taskLeaseKey } from "./ledger.ts";
import { restoreLostLedger } from "./ledger-restore.ts";
import { NodePicker, sourceCap } from "./node-choice.ts";
import { ACTION_OF, type LoadedJob, type OrchestratorDeps } from "./orchestrator-deps.ts";
import { type CollectRequest, newJobId, PlanError, pageTasks, planJob, validateRequest } from "./plan.ts";
import { type JobProgress, jobProgress, type SourceThroughput } from "./progress.ts";
import { type PartialProgress, partialKey } from "./source-contract.ts";
import {
	cancel,
	type FailureInfo,
	fail,
	finishJob,
	isDispatchable,
	isSettled,
	jobOutcome,
	phaseOpen,
	revive,
} from "./task-machine.ts";
import { type Job, type Task, TERMINAL_JOB_STATUSES } from "./types.ts";

export { classify } from "./failures.ts";
export type { OrchestratorDeps, OrchestratorSettings } from "./orchestrator-deps.ts";

/** No such job (never created, or expired after the retention): a 404, not bad input. */
export class JobNotFoundError extends NotFoundError {
	readonly jobId: string;
	constructor(jobId: string) {
		super(`no job '${jobId}'`, { type: "NOT_FOUND", data: { id: jobId } });
		this.jobId = jobId;
	}
}

export type { JobStatusView } from "../contracts/orchestrator.ts";

/** Tasks a status answer lists at most (a county job has thousands; answers cross the bus). */
const MAX_SHOWN_TASKS = 500;

export class Orchestrator {
	readonly ledger: JobLedger;
	readonly #deps: OrchestratorDeps;
	readonly #attempts: Attempts;
	readonly #picker: NodePicker;
	#leader: Lease | null = null;
	#loop: NodeJS.Timeout | null = null;
	#stopped = true;
	/** Serializes every ledger write of this process (tick and call settlements). */
	#queue: Promise<unknown> = Promise.resolve();
	readonly #lastProgress = new Map<string, number>();
	/** Unfinished jobs and their tasks, loaded once per leadership (the leader is their only writer). */
	readonly #loaded = new Map<string, LoadedJob>();

	constructor(deps: OrchestratorDeps) {
		this.#deps = deps;
		this.ledger = new JobLedger(deps.state, deps.settings.retentionMs);
		this.#picker = new NodePicker(deps);
		this.#attempts = new Attempts({
			deps,
			ledger: this.ledger,
			now: () => this.#now(),
			random: () => this.#random(),
			exclusive: (fn) => this.#exclusive(fn),
			loaded: (jobId) => this.#loaded.get(jobId),
			addPages: (job, first, pages) => this.#addPages(job, first, pages),
		});
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
			await this.#attempts.releaseAll();
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

	/** Redis restarted without persistence: write the ledger back from this node's memory. */
	async #restoreIfLedgerLost(): Promise<void> {
		const restored = await restoreLostLedger(this.#loaded, this.ledger, this.#attempts, this.#now());
		if (!restored) return;
		this.#deps.logger.error(
			`The job ledger was lost (Redis restarted without persistence? run it with AOF): ${restored.jobs.length} job(s) written back from memory; ${restored.kept} running attempt(s) kept.`,
			{ jobs: restored.jobs },
		);
		this.#deps.broadcast("jobs.ledgerRestored", { jobs: restored.jobs });
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
			if (t.state !== "leased" || this.#attempts.has(t.id)) continue;
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
				if (t.leaseToken) await this.#attempts.abandonAttempt(t.leaseToken, t.id);
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
			if (!caps.has(t.source)) caps.set(t.source, sourceCap(t, loaded, this.#deps));
			return caps.get(t.source)!;
		};
		const order = loaded
			.filter(({ job }) => job.status === "running")
			.sort((a, b) => b.job.spec.priority - a.job.spec.priority || a.job.createdAt - b.job.createdAt);
		for (const entry of order) {
			for (const [i, t] of entry.tasks.entries()) {
				if (!isDispatchable(t, now) || !phaseOpen(t, entry.tasks)) continue;
				if ((busy.get(t.source) ?? 0) >= capOf(t)) continue;
				const node = this.#picker.pick(ACTION_OF(t), t.source, (n) => this.#attempts.loadOf(n));
				if (!node) continue;
				const started = await this.#attempts.start(t, node);
				if (!started) continue;
				entry.tasks[i] = started;
				busy.set(t.source, (busy.get(t.source) ?? 0) + 1);
			}
		}
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
		finishJob(job, tasks, outcome, now, this.#deps.nodeId);
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
