/**
 * How the orchestrator judges a failed attempt: by the kind of its error (src/core/errors.ts).
 */
import { errorKindOf, PERMANENT_KINDS } from "../core/errors.ts";
import type { FailureInfo } from "./task-machine.ts";

export function errorMessage(err: unknown): string {
	if (err instanceof Error) return `${err.name}: ${err.message}`;
	return String(err);
}

/** Whether an error object says it may be retried (`retryable: true`, as Moleculer's errors do). */
function saysRetryable(err: unknown): boolean {
	return typeof err === "object" && err !== null && "retryable" in err && err.retryable === true;
}

function nameOf(err: unknown): unknown {
	return typeof err === "object" && err !== null && "name" in err ? err.name : undefined;
}

/**
 * A failed attempt by the kind of its error (src/core/errors.ts, `errorKindOf`). Node gone
 * (rejected, not available, left the cluster) or a retryable answer: re-dispatch soon. A dependency
 * of the worker down (the store): wait with backoff, as long as it takes, without using up attempts.
 * A permanent kind (a refusal, bad input, not found, not configured): dead letter at once. Anything
 * else: retry with backoff. A timeout is never re-dispatched at once (it would only time out again).
 */
export function classify(err: unknown, node: string | null): FailureInfo {
	const kind = errorKindOf(err);
	if (kind === "dependency") {
		return { message: errorMessage(err), retryable: false, permanent: false, dependency: true, node };
	}
	const timedOut = nameOf(err) === "RequestTimeoutError";
	return {
		message: errorMessage(err),
		retryable: (kind === "transient" || saysRetryable(err)) && !timedOut,
		permanent: kind !== null && PERMANENT_KINDS.has(kind),
		node,
	};
}
