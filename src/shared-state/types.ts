/**
 * Cluster-wide state: everything several nodes must agree on (rate budgets, leases, bans, scores,
 * progress counters, breaker states) goes through this interface. `RedisSharedState` backs a
 * cluster; `MemorySharedState` backs the embedded single process. Both pass the same contract suite
 * (test/integration/shared-state.test.ts).
 */

/**
 * `points` operations per `durationMs` (whole seconds), shared by every caller using the same key.
 * Windows are fixed: to stay under N per minute in *any* sliding minute, spread the budget
 * (e.g. 1 point per 1000 ms rather than 60 per 60000 ms).
 */
export interface RateBudget {
	points: number;
	durationMs: number;
}

export interface ConsumeResult {
	allowed: boolean;
	/** Points left in the current window (0 when refused). */
	remaining: number;
	/** When refused: how long until a point may be available. 0 when allowed. */
	waitMs: number;
}

/** A lock held until released or until its time-to-live runs out (its holder died). */
export interface Lease {
	readonly key: string;
	/** Unique per acquisition: proves who holds the lease. */
	readonly token: string;
	/**
	 * Push the expiry to now + ttlMs; false when the lease was lost (expired and taken by another).
	 * A lease that expired or vanished (Redis restarted) but was not taken is re-taken with its token.
	 */
	extend(ttlMs: number): Promise<boolean>;
	/** Give the lease up early; harmless if it already expired. */
	release(): Promise<void>;
}

export interface SharedState {
	readonly kind: "memory" | "redis";

	/** Take `points` from the budget of `key`; never blocks. */
	consume(key: string, budget: RateBudget, points?: number): Promise<ConsumeResult>;

	/** Try to take the lease on `key` for `ttlMs`; null when someone else holds it. Never blocks. */
	acquire(key: string, ttlMs: number): Promise<Lease | null>;

	/** Atomically add `by` to a counter (created at 0); optional expiry set when created. */
	incr(key: string, by?: number, ttlMs?: number): Promise<number>;
	/**
	 * Atomically raise a counter to at least `floor`, then add one; returns the new value. Callers that
	 * race past the floor get distinct values (slot claims after an idle spell).
	 */
	incrAtLeast(key: string, floor: number, ttlMs?: number): Promise<number>;
	/** Atomically add `by` to one field of a counter map. */
	hincr(key: string, field: string, by?: number): Promise<number>;
	/** All fields of a counter map ({} when absent). */
	hgetall(key: string): Promise<Record<string, number>>;
	/** Remove one field of a counter map (an index entry). */
	hdel(key: string, field: string): Promise<void>;

	/** JSON-serializable values with optional time-to-live. */
	get<T>(key: string): Promise<T | undefined>;
	getMany<T>(keys: string[]): Promise<(T | undefined)[]>;
	set<T>(key: string, value: T, ttlMs?: number): Promise<void>;
	/** Set only when absent; true when this call set it. Atomic across the cluster. */
	setIfAbsent<T>(key: string, value: T, ttlMs?: number): Promise<boolean>;
	del(key: string): Promise<void>;
	/**
	 * Read and delete in one step: of callers racing for the same key, exactly one gets the value
	 * (a lease released twice is released once).
	 */
	getAndDelete<T>(key: string): Promise<T | undefined>;
	/** Delete only while the key still holds `value` (a slot that expired may be someone else's now). */
	deleteIfEquals<T>(key: string, value: T): Promise<boolean>;
	/** Remaining time-to-live in ms; -1 without expiry; -2 when absent. */
	ttl(key: string): Promise<number>;
	/** Keys that start with `prefix` (for listings such as the bans of a domain). */
	keys(prefix: string): Promise<string[]>;

	close(): Promise<void>;
}
