/**
 * The orchestrator's actions and the job ledger's records they answer with (a job, its tasks, its
 * progress: the same records live in SharedState, src/jobs/types.ts re-exports them), with a typed
 * `callOrchestrator` (the REPL, the API, the scheduler's fire).
 */
import { type Action, callerOf } from "./call.ts";

export type JobStatus =
	| "running"
	| "cancelling"
	| "completed"
	| "completed_with_errors"
	| "failed"
	| "cancelled";

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
	/** Store round trips the task's writes took (batched writes: a few per page). */
	storeRoundTrips: number;
	/** Records stored with a gap the source could not fill (e.g. a parcel with no property type). */
	gaps: number;
}

/**
 * What a paged source reported on the first page of a ZIP: the ZIP's records and pages. The
 * orchestrator plans the other pages from it and counts per-record progress against it.
 */
export interface ZipExpectation {
	items: number;
	pages: number;
}

/** A record a task could not collect (a parcel, a listing), and why. */
export interface FailedRecord {
	id: string;
	reason: string;
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
	/** 1-based page of the ZIP for paged sources; page 1 reports the ZIP's size (`expect`). */
	page: number;
	state: TaskState;
	attempts: number;
	/** Attempts given back because a dependency was down (they do not count toward the limit). */
	deferrals?: number;
	/** Epoch ms before which a pending task is not dispatched (retry backoff). */
	notBefore: number;
	/** Node the current/last call went to. */
	node: string | null;
	/** Lease token of the in-flight call: results are written only by the lease holder. */
	leaseToken: string | null;
	startedAt: number | null;
	finishedAt: number | null;
	counts: TaskCounts | null;
	/** Set on page 1 of a paged source once done. */
	expect: ZipExpectation | null;
	/** Records the source could not collect, with reasons (the first few; `counts.failures` is exact). */
	failedRecords: FailedRecord[];
	errors: TaskAttemptError[];
}

export interface JobSpec {
	/** Every ZIP of the county when the job asked for `county`. */
	zips: string[];
	county: boolean;
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
	/** Tasks in the job (their ids are kept apart: a county job has thousands). */
	taskCount: number;
	/** Dead letters (at most MAX_LISTED_DEAD_LETTERS listed; `deadLetterCount` is exact). */
	deadLetters: DeadLetter[];
	deadLetterCount: number;
	/** Records that done tasks could not collect (the first MAX_FAILED_RECORDS_PER_JOB). */
	failedRecords: (FailedRecord & { taskId: string; source: string; zip: string })[];
	/** Orchestrator node leading when the job was last written. */
	leader: string | null;
	/** Progress as the leader last computed it (what `status` and `list` answer). */
	summary: JobProgress | null;
}

export type StateCounts = Record<TaskState, number>;

export interface SourceProgress {
	tasks: StateCounts;
	counts: TaskCounts;
	/** Records the source expects for the job (ZIPs not sized yet are estimated); null = unknown. */
	expectedItems: number | null;
}

export interface JobProgress {
	jobId: string;
	status: JobStatus;
	tasks: StateCounts & { total: number };
	/** Records collected (collect tasks) and expected over the job; expected null while unknown. */
	items: { done: number; expected: number | null };
	/** Share done, 0..1: by records once the sources have sized their ZIPs, else by tasks settled. */
	fraction: number;
	/** What the collect tasks did to records (enrichment is counted apart, in `enriched`). */
	counts: TaskCounts;
	/** What the enrichment tasks did (properties looked at, enriched anew, ...); null without any. */
	enriched: TaskCounts | null;
	bySource: Record<string, SourceProgress>;
	byZip: Record<string, StateCounts>;
	/** Records per second over the job so far. */
	itemsPerS: number;
	/** Seconds left, null while unknown (nothing finished yet and no rate budget). */
	etaS: number | null;
	elapsedS: number;
}

export interface JobStatusView {
	job: Job;
	progress: JobProgress;
	/** Present when asked for (`status({id, tasks: true})`): unsettled first, at most MAX_SHOWN_TASKS. */
	tasks?: Task[];
}

export interface CollectParams {
	zips?: string[];
	county?: boolean;
	sources?: string[];
	enrich?: boolean;
	photos?: boolean;
	priority?: number;
	jobId?: string;
	origin?: string;
}

/** The catalog (a type alias, not an interface: only aliases fit `ActionCatalog`). */
export type OrchestratorActions = {
	"orchestrator.collect": Action<CollectParams, JobStatusView>;
	"orchestrator.status": Action<{ id: string; tasks?: boolean }, JobStatusView>;
	"orchestrator.list": Action<{ limit?: number }, JobProgress[]>;
	"orchestrator.cancel": Action<{ id: string }, JobStatusView>;
	"orchestrator.retry": Action<{ id: string }, JobStatusView>;
};

/** `callOrchestrator(broker, "orchestrator.status", { id })`: an orchestrator call typed by its action. */
export const callOrchestrator = callerOf<OrchestratorActions>();
