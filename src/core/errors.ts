/**
 * Errors that carry their retry meaning across layers (as Crawlee's do), so the code that catches
 * them needs no knowledge of where they came from.
 */
import moleculer from "moleculer";

/**
 * Something a task depends on (the store) cannot be reached. The task stops at once — going on
 * record by record would only fail each record — and is retried later, without using up an attempt
 * (the orchestrator waits for the dependency with a growing backoff).
 */
export class DependencyUnavailableError extends Error {
	readonly dependency: string;
	constructor(dependency: string, message: string) {
		super(`${dependency} unavailable: ${message}`);
		this.name = "DependencyUnavailableError";
		this.dependency = dependency;
	}
}

/**
 * The bus error of an error whose meaning is shared by every service, or null for the caller's
 * own translation: a DependencyUnavailableError answers 503 `<DEPENDENCY>_UNAVAILABLE`, which the
 * orchestrator reads as "wait for it" (see DEPENDENCY_DOWN_TYPES in src/jobs/orchestrator.ts).
 */
export function sharedServiceError(err: unknown, message: string): Error | null {
	if (err instanceof DependencyUnavailableError) {
		return new moleculer.Errors.MoleculerRetryableError(
			message,
			503,
			`${err.dependency.toUpperCase()}_UNAVAILABLE`,
			{ dependency: err.dependency },
		);
	}
	return null;
}
