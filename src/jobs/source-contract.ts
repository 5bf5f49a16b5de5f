/**
 * The contract between the orchestrator and a source (maricopa, mls, any service with a
 * `collectZip` action), so the orchestrator works with whichever sources the cluster runs:
 *
 *   <source>.collectZip({ zip, jobId?, taskId?, attempt? }) -> { parcels | listings | items, new,
 *                                                   updated, unchanged, requests, failures }
 *
 * - Idempotent: a re-dispatched task runs again (at-least-once), so writes are upserts keyed by
 *   (source, sourceId) / property key.
 * - Cancellable: while it works, a source checks `taskCancelSignal(state, params)` between records
 *   and stops (rejecting) once it aborts, leaving only whole records behind. It aborts when the job
 *   is cancelled, or when the orchestrator gave this attempt up (timed out, lease taken over), so an
 *   abandoned attempt never runs on beside its retry.
 */
import type { SharedState } from "../shared-state/index.ts";
import { ZIP_SHAPE } from "./plan.ts";
import type { TaskCounts } from "./types.ts";

export interface CollectZipParams {
	zip: string;
	jobId?: string;
	taskId?: string;
	/** This attempt's id (its lease token): the orchestrator may abandon it. */
	attempt?: string;
}

/** fastest-validator params for a source's `collectZip` action. */
export const collectZipParams = {
	zip: { type: "string", pattern: ZIP_SHAPE },
	jobId: { type: "string", optional: true, max: 200 },
	taskId: { type: "string", optional: true, max: 400 },
	attempt: { type: "string", optional: true, max: 200 },
} as const;

/** The cluster-wide cancel flag of a job (set by `orchestrator.cancel`, read by sources). */
export const cancelKey = (jobId: string) => `jobs:cancel:${jobId}`;

/** The flag of an attempt the orchestrator gave up (set on timeout or lost lease, read by sources). */
export const abandonKey = (attempt: string) => `jobs:abandon:${attempt}`;

/** Validate what a source returned; a string names what is wrong. */
export function parseSourceResult(value: unknown): TaskCounts | string {
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
	};
	const bad = Object.values(fields).filter((x): x is string => typeof x === "string");
	if (bad.length > 0) return `malformed source result: ${bad.join(", ")}`;
	return fields as TaskCounts;
}

/**
 * An AbortSignal that aborts once the task's job is cancelled anywhere in the cluster, or this
 * attempt was abandoned by the orchestrator (polls the flags: cancellation must reach a worker even
 * when the orchestrator that took the request has died). Call `dispose()` when the task ends.
 */
export function taskCancelSignal(
	state: SharedState,
	task: { jobId?: string; attempt?: string },
	pollMs = 500,
): { signal: AbortSignal; dispose(): void } {
	const controller = new AbortController();
	const { jobId, attempt } = task;
	const flags = [
		...(jobId ? [{ key: cancelKey(jobId), error: () => new JobCancelledError(jobId) }] : []),
		...(attempt ? [{ key: abandonKey(attempt), error: () => new TaskAbandonedError(attempt) }] : []),
	];
	if (flags.length === 0) return { signal: controller.signal, dispose() {} };
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
	return { signal: controller.signal, dispose: () => clearInterval(timer) };
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
