/**
 * The job ledger in SharedState (Redis in a cluster, memory when embedded). Keys:
 *   jobs:job:<id>       the job record, with its progress summary (what `status` and `list` read)
 *   jobs:taskids:<id>   the ids of its tasks        jobs:task:<taskId>  one task
 *   jobs:index          map job id -> created at (every retained job: `list`)
 *   jobs:active         map job id -> created at (unfinished jobs: the leader's work list)
 *   jobs:cancel:<id>    cancel flag (sources poll it)   jobs:retry:<id>  retry-dead-letters request
 * The two maps are the ledger's own indexes, so nothing scans the keyspace. Task and job records
 * are written by the orchestrator leader only (the single writer), except at creation; other nodes
 * raise flags that the leader applies, so no record is read-modified-written by two processes.
 */
import type { SharedState } from "../shared-state/index.ts";
import { cancelKey } from "./source-contract.ts";
import type { Job, Task } from "./types.ts";

const jobKey = (id: string) => `jobs:job:${id}`;
const taskKey = (id: string) => `jobs:task:${id}`;
const taskIdsKey = (id: string) => `jobs:taskids:${id}`;
const retryKey = (id: string) => `jobs:retry:${id}`;
const INDEX_KEY = "jobs:index";
const ACTIVE_KEY = "jobs:active";
/** Lease key of a task's in-flight call (SharedState.acquire namespaces it). */
export const taskLeaseKey = (id: string) => `jobs:task:${id}`;
export const LEADER_LEASE_KEY = "jobs:leader";
/** Keys read or written in one round trip (Redis MGET/pipeline sizes stay moderate). */
const CHUNK = 500;

export class JobLedger {
	readonly state: SharedState;
	/** How long a finished job stays listed. */
	readonly retentionMs: number;

	constructor(state: SharedState, retentionMs: number) {
		this.state = state;
		this.retentionMs = retentionMs;
	}

	/** Store a new job; false when a job with this id exists already (idempotent submission). */
	async create(job: Job, tasks: Task[]): Promise<boolean> {
		// Tasks first: a leader that sees the job on its work list must find its tasks.
		await this.#saveTasks(tasks);
		await this.state.set(
			taskIdsKey(job.id),
			tasks.map((t) => t.id),
		);
		if (!(await this.state.setIfAbsent(jobKey(job.id), job))) return false;
		await this.state.hincr(INDEX_KEY, job.id, job.createdAt);
		await this.state.hincr(ACTIVE_KEY, job.id, job.createdAt);
		return true;
	}

	get(id: string): Promise<Job | undefined> {
		return this.state.get<Job>(jobKey(id));
	}

	/** Several jobs in one read (undefined where absent). */
	jobs(ids: string[]): Promise<(Job | undefined)[]> {
		return this.state.getMany<Job>(ids.map(jobKey));
	}

	task(id: string): Promise<Task | undefined> {
		return this.state.get<Task>(taskKey(id));
	}

	/** Drop index entries whose job record is gone (expired after the retention). */
	async forget(id: string): Promise<void> {
		await this.state.hdel(ACTIVE_KEY, id);
		await this.state.hdel(INDEX_KEY, id);
	}

	async taskIds(jobId: string): Promise<string[]> {
		return (await this.state.get<string[]>(taskIdsKey(jobId))) ?? [];
	}

	async tasks(job: Job): Promise<Task[]> {
		const ids = await this.taskIds(job.id);
		const out: Task[] = [];
		for (let i = 0; i < ids.length; i += CHUNK) {
			const found = await this.state.getMany<Task>(ids.slice(i, i + CHUNK).map(taskKey));
			for (const t of found) if (t) out.push(t);
		}
		return out;
	}

	/**
	 * Add tasks planned while the job runs (the pages a paged source reported). Leader only. Task
	 * records already present are kept as they are, so a replayed plan changes nothing.
	 */
	async addTasks(job: Job, tasks: Task[], knownIds: readonly string[]): Promise<Task[]> {
		const fresh: Task[] = [];
		for (const t of tasks) if (await this.state.setIfAbsent(taskKey(t.id), t)) fresh.push(t);
		const ids = [...new Set([...knownIds, ...tasks.map((t) => t.id)])];
		await this.state.set(taskIdsKey(job.id), ids);
		return fresh;
	}

	async saveTask(task: Task, finished = false): Promise<void> {
		await this.state.set(taskKey(task.id), task, finished ? this.retentionMs : undefined);
	}

	async saveJob(job: Job): Promise<void> {
		await this.state.set(jobKey(job.id), job);
	}

	/** A finished job leaves the work list and expires with its tasks after the retention. */
	async finish(job: Job, tasks: Task[]): Promise<void> {
		await this.state.set(jobKey(job.id), job, this.retentionMs);
		await this.#saveTasks(tasks, this.retentionMs);
		await this.state.set(
			taskIdsKey(job.id),
			tasks.map((t) => t.id),
			this.retentionMs,
		);
		await this.state.hdel(ACTIVE_KEY, job.id);
		await this.state.del(retryKey(job.id));
	}

	/** Put a finished job back on the work list (retry of its dead letters). */
	async reactivate(job: Job): Promise<void> {
		await this.state.hdel(ACTIVE_KEY, job.id);
		await this.state.hincr(ACTIVE_KEY, job.id, job.createdAt);
	}

	async activeIds(): Promise<string[]> {
		const active = await this.state.hgetall(ACTIVE_KEY);
		return Object.entries(active)
			.sort((a, b) => a[1] - b[1])
			.map(([id]) => id);
	}

	/** The newest `limit` jobs (their records: summaries, never their tasks). */
	async list(limit: number): Promise<Job[]> {
		const index = Object.entries(await this.state.hgetall(INDEX_KEY)).sort((a, b) => b[1] - a[1]);
		const out: Job[] = [];
		for (let i = 0; i < index.length && out.length < limit; i += CHUNK) {
			const ids = index.slice(i, i + CHUNK).map(([id]) => id);
			const jobs = await this.state.getMany<Job>(ids.map(jobKey));
			for (const [j, job] of jobs.entries()) {
				if (job) out.push(job);
				else await this.forget(ids[j]!);
			}
		}
		return out.slice(0, limit);
	}

	async requestCancel(id: string): Promise<void> {
		await this.state.set(cancelKey(id), Date.now(), this.retentionMs);
	}

	async cancelRequested(id: string): Promise<boolean> {
		return (await this.state.get(cancelKey(id))) !== undefined;
	}

	async requestRetry(id: string): Promise<void> {
		await this.state.set(retryKey(id), Date.now());
	}

	/** Consume a retry request: true once per request. */
	async takeRetry(id: string): Promise<boolean> {
		if ((await this.state.get(retryKey(id))) === undefined) return false;
		await this.state.del(retryKey(id));
		return true;
	}

	async #saveTasks(tasks: Task[], ttlMs?: number): Promise<void> {
		// One at a time would be thousands of round trips for a county job: write in parallel chunks.
		for (let i = 0; i < tasks.length; i += CHUNK) {
			await Promise.all(tasks.slice(i, i + CHUNK).map((t) => this.state.set(taskKey(t.id), t, ttlMs)));
		}
	}
}
