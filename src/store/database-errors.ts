/**
 * A database the store cannot reach, answered the same way by every action of the store's
 * services: a retryable 503 marked `upstream`.
 */
import type { Context } from "moleculer";
import { DependencyUnavailableError } from "../core/errors.ts";

/** Backend failures that mean "the store cannot be reached now": the whole call is retryable. */
export function unavailable(err: unknown): boolean {
	const name = (err as { name?: string } | null)?.name ?? "";
	return /^Mongo.*(Network|ServerSelection|TopologyClosed|NotConnected|PoolCleared|Timeout)/.test(name);
}

/**
 * The database behind the store is unreachable: a retryable 503 marked `upstream`, so callers'
 * breakers do not take this healthy node out (they would keep calls away after the database is
 * back; see countsAsBreakerFailure in moleculer.config.ts), and collectors wait for the store.
 */
export function databaseUnreachable(err: unknown): Error {
	return new DependencyUnavailableError("store", `its database is not reachable: ${(err as Error).message}`, {
		upstream: true,
	});
}

/** Every action of the store's services: database outages answered as `databaseUnreachable`. */
export const storeErrorHooks = {
	error: {
		"*"(_ctx: Context, err: Error) {
			throw unavailable(err) ? databaseUnreachable(err) : err;
		},
	},
};
