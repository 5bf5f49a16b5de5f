/**
 * The job ledger's records. A job is a collection request (ZIPs x sources); its tasks are the units
 * leased to one node at a time. These records live in SharedState, never in one process's memory,
 * so any orchestrator instance can carry a job on.
 */

export type JobStatus =
	| "running"
	| "cancelling"
	| "completed"
	| "completed_with_errors"
	| "failed"
	| "cancelled";

export const TERMINAL_JOB_STATUSES: readonly JobStatus[] = [
	"completed",
	"completed_with_errors",
	"failed",
	"cancelled",
];

/**
 * pending: waiting to be dispatched (possibly until `notBefore`); leased: a call is in flight;
 * done: acknowledged; dead: gave up after too many failures (dead letter); cancelled.
 */
export type TaskState = "pending" | "leased" | "done" | "dead" | "cancelled";

/** "collect" calls `<source>.collectZip`; "enrich" runs after every collect task has settled. */
export type TaskKind = "collect" | "enrich";

/** What a source's `collectZip` reports (the source contract, see src/jobs/source-contract.ts). */
export interface TaskCounts {
	/** Parcels or listings seen. */
	items: number;
	new: number;
	updated: number;
	unchanged: number;
	requests: number;
	failures: number;
}

export interface TaskAttemptError {
	attempt: number;
	at: string;
	node: string | null;
	message: string;
	/** True when the error said another node could have served it (node died, not reachable). */
	retryable: boolean;
}

export interface Task {
	id: string;
	jobId: string;
	kind: TaskKind;
	source: string;
	zip: string;
	state: TaskState;
	attempts: number;
	/** Epoch ms before which a pending task is not dispatched (retry backoff). */
	notBefore: number;
	/** Node the current/last call went to. */
	node: string | null;
	/** Lease token of the in-flight call: results are written only by the lease holder. */
	leaseToken: string | null;
	startedAt: number | null;
	finishedAt: number | null;
	counts: TaskCounts | null;
	errors: TaskAttemptError[];
}

export interface JobSpec {
	zips: string[];
	sources: string[];
	enrich: boolean;
	/** Higher first; 0 default. */
	priority: number;
}

export interface DeadLetter {
	taskId: string;
	source: string;
	zip: string;
	attempts: number;
	reasons: string[];
}

export interface Job {
	id: string;
	spec: JobSpec;
	status: JobStatus;
	createdAt: number;
	finishedAt: number | null;
	/** Who asked: "repl", "api", "schedule:<name>"... */
	origin: string;
	taskIds: string[];
	deadLetters: DeadLetter[];
	/** Orchestrator node leading when the job was last written. */
	leader: string | null;
}

export const EMPTY_COUNTS: TaskCounts = {
	items: 0,
	new: 0,
	updated: 0,
	unchanged: 0,
	requests: 0,
	failures: 0,
};
