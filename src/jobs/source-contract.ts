/**
 * The contract between the orchestrator and a source (maricopa, mls, any service with a
 * `collectZip` action), so the orchestrator works with whichever sources the cluster runs:
 *
 *   <source>.collectZip({ zip, page?, jobId?, taskId?, attempt? }) -> { parcels | listings | items,
 *       new, updated, unchanged, requests, failures, storeRoundTrips?, gaps?, expect? }
 *
 * - Paged: a source that splits a ZIP into pages (at most about 1,000 records each) collects only
 *   `page` when it is given, and answers page 1 with `expect: { items, pages }` (the whole ZIP);
 *   the orchestrator then plans pages 2..pages as tasks of their own, so N workers share one ZIP
 *   and a lost task redoes one page. Without `page` it collects the whole ZIP. A source that does
 *   not page ignores `page` and answers no `expect`: its one task is the whole ZIP.
 * - Idempotent: a re-dispatched task runs again (at-least-once), so writes are upserts keyed by
 *   (source, sourceId) / property key.
 * - Cancellable: while it works, a source checks `taskCancelSignal(state, params)` between records
 *   and stops (rejecting) once it aborts, leaving only whole records behind. It aborts when the job
 *   is cancelled, or when the orchestrator gave this attempt up (timed out, lease taken over), so an
 *   abandoned attempt never runs on beside its retry.
 * - Claimed: the same signal claims the attempt when the source starts it (`claimKey`), so the
 *   orchestrator can tell a call lost in transit (never claimed) from a long one, and dispatch it
 *   again without waiting for the task's timeout.
 */
import type { SharedState } from "../shared-state/index.ts";
import { ZIP_PARAM } from "./plan.ts";
import {
	type FailedRecord,
	MAX_FAILED_RECORDS_PER_TASK,
	type TaskCounts,
	type ZipExpectation,
} from "./types.ts";

export interface CollectZipParams {
	zip: string;
	/** 1-based page of the ZIP (paged sources); absent = the whole ZIP. */
	page?: number;
	jobId?: string;
	taskId?: string;
	/** This attempt's id (its lease token): the orchestrator may abandon it. */
	attempt?: string;
}

/** fastest-validator params for a source's `collectZip` action. */
export const collectZipParams = {
	zip: ZIP_PARAM,
	page: { type: "number", integer: true, min: 1, max: 100_000, optional: true, convert: true },
	jobId: { type: "string", optional: true, max: 200 },
	taskId: { type: "string", optional: true, max: 400 },
	attempt: { type: "string", optional: true, max: 200 },
} as const;

/** The cluster-wide cancel flag of a job (set by `orchestrator.cancel`, read by sources). */
export const cancelKey = (jobId: string) => `jobs:cancel:${jobId}`;

/** The flag of an attempt the orchestrator gave up (set on timeout or lost lease, read by sources). */
export const abandonKey = (attempt: string) => `jobs:abandon:${attempt}`;

/**
 * Who got to an attempt first: the source that started it ("started"), or the orchestrator that
 * waited too long for that and declared its call lost in transit ("lost"). Both set it only when
 * absent, so exactly one wins: a call that arrives after being declared lost never starts, and an
 * attempt that started is never declared lost.
 */
export const claimKey = (attempt: string) => `jobs:claim:${attempt}`;
export type AttemptClaim = "started" | "lost";
/** As long as an abandoned attempt's flag: a late call still finds the verdict. */
export const CLAIM_TTL_MS = 24 * 3_600_000;

/**
 * Where a source leaves an attempt's result: a reply lost in transit (a NATS restart drops the
 * requests in flight) is found here by the orchestrator, which deletes it once the task is settled.
 */
export const resultKey = (attempt: string) => `jobs:result:${attempt}`;
/** A result nobody collected (its orchestrator and job are gone) does not stay for ever. */
const RESULT_TTL_MS = 24 * 3_600_000;

/**
 * Where a source leaves what an attempt has stored so far (`PartialProgress`), while it runs: the
 * leader shows it in the job's progress, and a cancelled task keeps it as its counts.
 */
export const partialKey = (attempt: string) => `jobs:partial:${attempt}`;

/** What an attempt has done so far: counts of stored records, and the records it expects in all. */
export interface PartialProgress {
	counts: TaskCounts;
	/** Records the attempt expects to see (e.g. listings found by the search), when known. */
	expectItems: number | null;
}

/** A source's progress report: the counts so far (same fields as its result), and what it expects. */
export type ReportProgress = (
	counts: Partial<Record<keyof TaskCounts, number>>,
	expectItems?: number | null,
) => void;

/** Partial progress is written at most this often per attempt (and once more when it stops). */
const PARTIAL_EVERY_MS = 1000;

/**
 * Run one attempt of a task on a source: `work` gets the task's cancel/abandon signal and a
 * `report` for its progress so far (kept under `partialKey`), and its result is also kept in the
 * shared state under the attempt (see `resultKey`).
 */
export async function runSourceTask<T>(
	state: SharedState,
	task: { jobId?: string; attempt?: string },
	work: (signal: AbortSignal, report: ReportProgress) => Promise<T>,
	pollMs?: number,
): Promise<T> {
	const cancel = taskCancelSignal(state, task, pollMs);
	const attempt = task.attempt;
	// An attempt the orchestrator declared lost before it got here does nothing at all.
	await cancel.claimed;
	if (cancel.signal.aborted) {
		cancel.dispose();
		throw cancel.signal.reason;
	}
	let latest: PartialProgress | null = null;
	let written: PartialProgress | null = null;
	let timer: NodeJS.Timeout | null = null;
	const flush = async () => {
		if (!attempt || !latest || latest === written) return;
		written = latest;
		await state.set(partialKey(attempt), latest, RESULT_TTL_MS).catch(() => undefined);
	};
	const report: ReportProgress = (counts, expectItems) => {
		latest = {
			counts: {
				items: counts.items ?? 0,
				new: counts.new ?? 0,
				updated: counts.updated ?? 0,
				unchanged: counts.unchanged ?? 0,
				requests: counts.requests ?? 0,
				failures: counts.failures ?? 0,
				storeRoundTrips: counts.storeRoundTrips ?? 0,
				gaps: counts.gaps ?? 0,
			},
			expectItems: expectItems ?? latest?.expectItems ?? null,
		};
		if (!timer && attempt) {
			timer = setTimeout(() => {
				timer = null;
				void flush();
			}, PARTIAL_EVERY_MS);
			timer.unref();
		}
	};
	try {
		const result = await work(cancel.signal, report);
		// Best effort: the reply usually arrives; the shared state being away must not fail the task.
		if (attempt) await state.set(resultKey(attempt), result, RESULT_TTL_MS).catch(() => undefined);
		return result;
	} catch (err) {
		// Stopped (cancelled, abandoned, failed): what it stored so far is kept for the orchestrator.
		await flush();
		throw err;
	} finally {
		if (timer) clearTimeout(timer);
		cancel.dispose();
	}
}

export interface SourceResult {
	counts: TaskCounts;
	expect: ZipExpectation | null;
	failed: FailedRecord[];
}

/** The first failed records a source listed (`failed: [{apn | mlsId | key | id, reason}]`), bounded. */
function failedOf(value: unknown): FailedRecord[] {
	if (!Array.isArray(value)) return [];
	return value.slice(0, MAX_FAILED_RECORDS_PER_TASK).map((f) => {
		const x = (f && typeof f === "object" ? f : {}) as Record<string, unknown>;
		const id = x.apn ?? x.mlsId ?? x.key ?? x.id ?? "?";
		return { id: String(id).slice(0, 100), reason: String(x.reason ?? "").slice(0, 300) };
	});
}

/** Validate what a source returned; a string names what is wrong. */
export function parseSourceResult(value: unknown): SourceResult | string {
	if (value === null || typeof value !== "object") return `source answered ${typeof value}, not an object`;
	const v = value as Record<string, unknown>;
	const num = (name: string, required: boolean): number | string => {
		const x = v[name];
		if (x === undefined && !required) return 0;
		if (typeof x !== "number" || !Number.isInteger(x) || x < 0) return `'${name}' is ${JSON.stringify(x)}`;
		return x;
	};
	const itemField = ["parcels", "listings", "items"].find((f) => v[f] !== undefined) ?? "items";
	const fields = {
		items: num(itemField, false),
		new: num("new", true),
		updated: num("updated", true),
		unchanged: num("unchanged", true),
		requests: num("requests", false),
		failures: num("failures", false),
		storeRoundTrips: num("storeRoundTrips", false),
		gaps: num("gaps", false),
	};
	const bad = Object.values(fields).filter((x): x is string => typeof x === "string");
	let expect: ZipExpectation | null = null;
	if (v.expect !== undefined && v.expect !== null) {
		const e = v.expect as Record<string, unknown>;
		const ok = (x: unknown) => typeof x === "number" && Number.isInteger(x) && x >= 0;
		if (typeof e !== "object" || !ok(e.items) || !ok(e.pages) || (e.pages as number) > 100_000) {
			bad.push(`'expect' is ${JSON.stringify(v.expect).slice(0, 100)}`);
		} else {
			expect = { items: e.items as number, pages: e.pages as number };
		}
	}
	if (bad.length > 0) return `malformed source result: ${bad.join(", ")}`;
	return { counts: fields as TaskCounts, expect, failed: failedOf(v.failed) };
}

/**
 * Claim the attempt for this worker (see `claimKey`); false when the orchestrator declared it lost.
 * The state store being away does not stop it: the abandon flag, polled, still does.
 */
async function claimAttempt(state: SharedState, attempt: string): Promise<boolean> {
	try {
		if (await state.setIfAbsent<AttemptClaim>(claimKey(attempt), "started", CLAIM_TTL_MS)) return true;
		// Already "started": the same call delivered again (a retry of the dispatch), not a verdict.
		return (await state.get<AttemptClaim>(claimKey(attempt))) !== "lost";
	} catch {
		return true;
	}
}

/**
 * An AbortSignal that aborts once the task's job is cancelled anywhere in the cluster, or this
 * attempt was abandoned by the orchestrator (polls the flags: cancellation must reach a worker even
 * when the orchestrator that took the request has died). It claims the attempt first: `claimed`
 * settles once that is done (aborted already when the orchestrator had declared the call lost).
 * Call `dispose()` when the task ends.
 */
export function taskCancelSignal(
	state: SharedState,
	task: { jobId?: string; attempt?: string },
	pollMs = 500,
): { signal: AbortSignal; claimed: Promise<void>; dispose(): void } {
	const controller = new AbortController();
	const { jobId, attempt } = task;
	const flags = [
		...(jobId ? [{ key: cancelKey(jobId), error: () => new JobCancelledError(jobId) }] : []),
		...(attempt ? [{ key: abandonKey(attempt), error: () => new TaskAbandonedError(attempt) }] : []),
	];
	const claimed = attempt
		? claimAttempt(state, attempt).then((ok) => {
				if (!ok) controller.abort(new TaskAbandonedError(attempt));
			})
		: Promise.resolve();
	if (flags.length === 0) return { signal: controller.signal, claimed, dispose() {} };
	const check = async () => {
		try {
			const values = await state.getMany(flags.map((f) => f.key));
			const raised = flags.find((_, i) => values[i]);
			if (raised) controller.abort(raised.error());
		} catch {
			// The state store being briefly away must not fail the task; the next poll retries.
		}
	};
	void check();
	const timer = setInterval(() => void check(), pollMs);
	timer.unref();
	controller.signal.addEventListener("abort", () => clearInterval(timer), { once: true });
	return { signal: controller.signal, claimed, dispose: () => clearInterval(timer) };
}

export class JobCancelledError extends Error {
	readonly jobId: string;
	constructor(jobId: string) {
		super(`job ${jobId} was cancelled`);
		this.name = "JobCancelledError";
		this.jobId = jobId;
	}
}

export class TaskAbandonedError extends Error {
	readonly attempt: string;
	constructor(attempt: string) {
		super("the orchestrator gave this attempt up (timed out or taken over); its retry carries on");
		this.name = "TaskAbandonedError";
		this.attempt = attempt;
	}
}
