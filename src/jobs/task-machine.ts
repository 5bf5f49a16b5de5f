/**
 * The task state machine, pure: every transition returns a new task and never touches I/O, so the
 * orchestrator's rules (who may be dispatched, when a failure retries or becomes a dead letter, when
 * a job is finished) are unit-tested apart from the broker.
 *
 *   pending --lease--> leased --complete--> done
 *      ^                 |--fail (attempts left)--> pending (notBefore = now + backoff)
 *      |                 |--fail (no attempts left / permanent)--> dead
 *      +--lease lost-----+ (holder died: re-dispatch, counted as an attempt)
 *   pending | leased --cancel--> cancelled
 */
import { backoffMs as backoff } from "../utils/backoff.ts";
import {
	type DeadLetter,
	type Job,
	type JobStatus,
	MAX_FAILED_RECORDS_PER_JOB,
	MAX_LISTED_DEAD_LETTERS,
	type Task,
	type TaskAttemptError,
	type TaskCounts,
} from "./types.ts";

export interface RetryPolicy {
	maxAttempts: number;
	backoffBaseMs: number;
	backoffMaxMs: number;
}

/** A failed task's wait before attempt `attempt + 1` (src/utils/backoff.ts); `random` in [0, 1). */
export function backoffMs(attempt: number, policy: RetryPolicy, random: number): number {
	return backoff(attempt, { baseMs: policy.backoffBaseMs, maxMs: policy.backoffMaxMs }, random);
}

export function isDispatchable(task: Task, now: number): boolean {
	return task.state === "pending" && task.notBefore <= now;
}

export function lease(task: Task, token: string, now: number): Task {
	if (task.state !== "pending") throw new Error(`task ${task.id} is ${task.state}, not pending`);
	return {
		...task,
		state: "leased",
		attempts: task.attempts + 1,
		leaseToken: token,
		node: null,
		startedAt: task.startedAt ?? now,
	};
}

export function complete(task: Task, counts: TaskCounts, now: number): Task {
	return { ...task, state: "done", leaseToken: null, finishedAt: now, counts };
}

export interface FailureInfo {
	message: string;
	retryable: boolean;
	/** A failure no retry can fix (bad input, source refuses): dead letter at once. */
	permanent: boolean;
	/**
	 * Something the task needs is down (the store): the attempt is given back, not used up, and the
	 * task waits with a growing backoff for as long as it takes.
	 */
	dependency?: boolean;
	node: string | null;
}

/** A failed attempt: back to pending after a backoff, or a dead letter when attempts are used up. */
export function fail(task: Task, info: FailureInfo, now: number, policy: RetryPolicy, random: number): Task {
	const error: TaskAttemptError = {
		attempt: task.attempts,
		at: new Date(now).toISOString(),
		node: info.node,
		message: info.message,
		retryable: info.retryable,
	};
	// Keep the reasons bounded: a task that failed many times keeps its last few.
	const errors = [...task.errors, error].slice(-10);
	if (info.dependency) {
		const deferrals = (task.deferrals ?? 0) + 1;
		return {
			...task,
			state: "pending",
			leaseToken: null,
			notBefore: now + backoffMs(deferrals, policy, random),
			errors,
			deferrals,
		};
	}
	if (info.permanent || task.attempts - (task.deferrals ?? 0) >= policy.maxAttempts) {
		return { ...task, state: "dead", leaseToken: null, finishedAt: now, errors };
	}
	// A node that died is not the task's fault: re-dispatch soon, elsewhere.
	const wait = info.retryable
		? Math.min(policy.backoffBaseMs, 1000)
		: backoffMs(task.attempts, policy, random);
	return { ...task, state: "pending", leaseToken: null, notBefore: now + wait, errors };
}

export function cancel(task: Task, now: number): Task {
	if (task.state === "done" || task.state === "dead" || task.state === "cancelled") return task;
	return { ...task, state: "cancelled", leaseToken: null, finishedAt: now };
}

/** A dead letter back to pending with a fresh attempt budget (the `retry` action). */
export function revive(task: Task): Task {
	if (task.state !== "dead") return task;
	return { ...task, state: "pending", attempts: 0, notBefore: 0, finishedAt: null };
}

export function isSettled(task: Task): boolean {
	return task.state === "done" || task.state === "dead" || task.state === "cancelled";
}

export function deadLetterOf(task: Task): DeadLetter {
	return {
		taskId: task.id,
		source: task.source,
		zip: task.zip,
		attempts: task.attempts,
		reasons: task.errors.map((e) => `attempt ${e.attempt}${e.node ? ` on ${e.node}` : ""}: ${e.message}`),
	};
}

/**
 * The job's status once its tasks are known: running while any task is unsettled; then completed,
 * completed_with_errors (some dead letters, or records a done task could not collect) or failed
 * (nothing succeeded).
 */
export function jobOutcome(job: Job, tasks: Task[]): JobStatus {
	if (job.status === "cancelling") {
		return tasks.some((t) => t.state === "leased") ? "cancelling" : "cancelled";
	}
	if (job.status !== "running") return job.status;
	if (!tasks.every(isSettled)) return "running";
	const dead = tasks.filter((t) => t.state === "dead").length;
	if (dead === tasks.length && dead > 0) return "failed";
	// Never a false "completed": a record a task could not collect is an error of the job too.
	const recordFailures = tasks.some((t) => (t.counts?.failures ?? 0) > 0);
	return dead === 0 && !recordFailures ? "completed" : "completed_with_errors";
}

/**
 * Enrichment tasks wait until every collect task of the job has settled; photos tasks until the
 * other sources' tasks of their ZIP have (the photos are those of the listings just collected).
 */
export function phaseOpen(task: Task, tasks: Task[]): boolean {
	if (task.kind === "collect" && task.source === "photos") {
		return tasks.every(
			(t) => t.kind !== "collect" || t.source === "photos" || t.zip !== task.zip || isSettled(t),
		);
	}
	if (task.kind !== "enrich") return true;
	return tasks.every((t) => t.kind !== "collect" || isSettled(t));
}

/** The job record of a job that ended: its status, dead letters and failed records (bounded lists). */
export function finishJob(job: Job, tasks: Task[], outcome: JobStatus, now: number, leader: string): void {
	job.status = outcome;
	job.finishedAt = now;
	job.leader = leader;
	const dead = tasks.filter((t) => t.state === "dead");
	job.deadLetters = dead.slice(0, MAX_LISTED_DEAD_LETTERS).map(deadLetterOf);
	job.deadLetterCount = dead.length;
	job.failedRecords = tasks
		.flatMap((t) =>
			(t.failedRecords ?? []).map((f) => ({ ...f, taskId: t.id, source: t.source, zip: t.zip })),
		)
		.slice(0, MAX_FAILED_RECORDS_PER_JOB);
	job.taskCount = tasks.length;
}
