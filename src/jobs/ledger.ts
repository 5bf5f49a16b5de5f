/**
 * The job ledger in SharedState (Redis in a cluster, memory when embedded). Keys:
 *   jobs:job:<id>      the job          jobs:task:<taskId>  one task
 *   jobs:active:<id>   marker of an unfinished job (the leader's work list)
 *   jobs:cancel:<id>   cancel flag (sources poll it)   jobs:retry:<id>  retry-dead-letters request
 * Task and job records are written by the orchestrator leader only (the single writer), except at
 * creation; other nodes raise flags that the leader applies, so no record is read-modified-written
 * by two processes at once.
 */
import type { SharedState } from "../shared-state/index.ts";
import { cancelKey } from "./source-contract.ts";
import type { Job, Task } from "./types.ts";

const jobKey = (id: string) => `jobs:job:${id}`;
const taskKey = (id: string) => `jobs:task:${id}`;
const activeKey = (id: string) => `jobs:active:${id}`;
const retryKey = (id: string) => `jobs:retry:${id}`;
/** Lease key of a task's in-flight call (SharedState.acquire namespaces it). */
export const taskLeaseKey = (id: string) => `jobs:task:${id}`;
export const LEADER_LEASE_KEY = "jobs:leader";

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
		// Tasks first: a leader that sees the job marker must find its tasks.
		for (const t of tasks) await this.state.set(taskKey(t.id), t);
		if (!(await this.state.setIfAbsent(jobKey(job.id), job))) return false;
		await this.state.set(activeKey(job.id), job.createdAt);
		return true;
	}

	get(id: string): Promise<Job | undefined> {
		return this.state.get<Job>(jobKey(id));
	}

	task(id: string): Promise<Task | undefined> {
		return this.state.get<Task>(taskKey(id));
	}

	/** Drop a work-list marker whose job record is gone (expired). */
	async forget(id: string): Promise<void> {
		await this.state.del(activeKey(id));
	}

	async tasks(job: Job): Promise<Task[]> {
		const found = await this.state.getMany<Task>(job.taskIds.map(taskKey));
		return found.filter((t): t is Task => t !== undefined);
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
		for (const t of tasks) await this.state.set(taskKey(t.id), t, this.retentionMs);
		await this.state.del(activeKey(job.id));
		await this.state.del(retryKey(job.id));
	}

	/** Put a finished job back on the work list (retry of its dead letters). */
	async reactivate(job: Job): Promise<void> {
		await this.state.set(activeKey(job.id), job.createdAt);
	}

	async activeIds(): Promise<string[]> {
		const keys = await this.state.keys("jobs:active:");
		return keys.map((k) => k.slice("jobs:active:".length));
	}

	async list(): Promise<Job[]> {
		const keys = await this.state.keys("jobs:job:");
		const jobs = await this.state.getMany<Job>(keys);
		return jobs.filter((j): j is Job => j !== undefined).sort((a, b) => b.createdAt - a.createdAt);
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
}
