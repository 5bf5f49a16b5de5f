/**
 * The job ledger's records. A job is a collection request (ZIPs x sources); its tasks are the units
 * leased to one node at a time: a page of a ZIP (at most about 1,000 records) for sources that page,
 * the whole ZIP for the others. These records live in SharedState, never in one process's memory,
 * so any orchestrator instance can carry a job on.
 */

// The records cross the bus (orchestrator status/list): their types are the orchestrator's contract.
import type { JobStatus, TaskCounts } from "../contracts/orchestrator.ts";

export type {
	DeadLetter,
	FailedRecord,
	Job,
	JobProgress,
	JobSpec,
	JobStatus,
	SourceProgress,
	StateCounts,
	Task,
	TaskAttemptError,
	TaskCounts,
	TaskKind,
	TaskState,
	ZipExpectation,
} from "../contracts/orchestrator.ts";

export const TERMINAL_JOB_STATUSES: readonly JobStatus[] = [
	"completed",
	"completed_with_errors",
	"failed",
	"cancelled",
];

/** Failed records kept per task, and per job (the counts stay exact). */
export const MAX_FAILED_RECORDS_PER_TASK = 20;
export const MAX_FAILED_RECORDS_PER_JOB = 100;

export const EMPTY_COUNTS: TaskCounts = {
	items: 0,
	new: 0,
	updated: 0,
	unchanged: 0,
	requests: 0,
	failures: 0,
	storeRoundTrips: 0,
	gaps: 0,
};

/** Dead letters listed on a job record; the rest are counted (a county job may have many). */
export const MAX_LISTED_DEAD_LETTERS = 100;
