/**
 * The contract between the orchestrator and a source (maricopa, mls, any service with a
 * `collectZip` action), so the orchestrator works with whichever sources the cluster runs:
 *
 *   <source>.collectZip({ zip, jobId?, taskId? }) -> { parcels | listings | items, new, updated,
 *                                                      unchanged, requests, failures }
 *
 * - Idempotent: a re-dispatched task runs again (at-least-once), so writes are upserts keyed by
 *   (source, sourceId) / property key.
 * - Cancellable: while it works, a source checks `jobCancelSignal(state, jobId)` between records
 *   and stops (rejecting) once it aborts, leaving only whole records behind.
 */
import type { SharedState } from "../shared-state/index.ts";
import { ZIP_SHAPE } from "./plan.ts";
import type { TaskCounts } from "./types.ts";

export interface CollectZipParams {
	zip: string;
	jobId?: string;
	taskId?: string;
}

/** fastest-validator params for a source's `collectZip` action. */
export const collectZipParams = {
	zip: { type: "string", pattern: ZIP_SHAPE },
	jobId: { type: "string", optional: true, max: 200 },
	taskId: { type: "string", optional: true, max: 400 },
} as const;

/** The cluster-wide cancel flag of a job (set by `orchestrator.cancel`, read by sources). */
export const cancelKey = (jobId: string) => `jobs:cancel:${jobId}`;

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
 * An AbortSignal that aborts once the job is cancelled anywhere in the cluster (polls the flag:
 * cancellation must reach a worker even when the orchestrator that took the request has died).
 * Call `dispose()` when the task ends.
 */
export function jobCancelSignal(
	state: SharedState,
	jobId: string | undefined,
	pollMs = 500,
): { signal: AbortSignal; dispose(): void } {
	const controller = new AbortController();
	if (!jobId) return { signal: controller.signal, dispose() {} };
	const check = async () => {
		try {
			if (await state.get(cancelKey(jobId))) controller.abort(new JobCancelledError(jobId));
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
