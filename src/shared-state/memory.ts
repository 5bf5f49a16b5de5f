import { randomUUID } from "node:crypto";
import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
import type { ConsumeResult, Lease, RateBudget, SharedState } from "./types.ts";

interface Entry {
	value: unknown;
	expiresAt: number | null;
}

/** In-process shared state for the embedded single-node mode. Same semantics as the Redis one. */
export class MemorySharedState implements SharedState {
	readonly kind = "memory" as const;
	readonly #entries = new Map<string, Entry>();
	readonly #limiters = new Map<string, RateLimiterMemory>();
	#sweeper: NodeJS.Timeout;

	constructor() {
		// Expired entries are also dropped lazily on read; the sweep only bounds memory.
		this.#sweeper = setInterval(() => this.#sweep(), 30_000);
		this.#sweeper.unref();
	}

	async consume(key: string, budget: RateBudget, points = 1): Promise<ConsumeResult> {
		return consumeWith(
			limiterFor(this.#limiters, budget, (o) => new RateLimiterMemory(o)),
			key,
			points,
		);
	}

	async acquire(key: string, ttlMs: number): Promise<Lease | null> {
		const lockKey = `lease:${key}`;
		if (this.#live(lockKey)) return null;
		const token = randomUUID();
		this.#put(lockKey, token, ttlMs);
		const holds = () => this.#live(lockKey)?.value === token;
		return {
			key,
			token,
			// As in Redis: a lease that ran out but was not taken is the holder's again.
			extend: async (ms: number) => {
				const held = this.#live(lockKey);
				if (held && held.value !== token) return false;
				this.#put(lockKey, token, ms);
				return true;
			},
			release: async () => {
				if (holds()) this.#entries.delete(lockKey);
			},
		};
	}

	async incr(key: string, by = 1, ttlMs?: number): Promise<number> {
		const entry = this.#live(key);
		const next = ((entry?.value as number | undefined) ?? 0) + by;
		if (entry) entry.value = next;
		else this.#put(key, next, ttlMs);
		return next;
	}

	async incrAtLeast(key: string, floor: number, ttlMs?: number): Promise<number> {
		const entry = this.#live(key);
		const next = Math.max((entry?.value as number | undefined) ?? 0, floor) + 1;
		if (entry) entry.value = next;
		else this.#put(key, next, ttlMs);
		return next;
	}

	async hincr(key: string, field: string, by = 1): Promise<number> {
		const entry = this.#live(key);
		const map = (entry?.value as Record<string, number> | undefined) ?? {};
		map[field] = (map[field] ?? 0) + by;
		if (!entry) this.#put(key, map);
		return map[field];
	}

	async hgetall(key: string): Promise<Record<string, number>> {
		return { ...((this.#live(key)?.value as Record<string, number> | undefined) ?? {}) };
	}

	async hdel(key: string, field: string): Promise<void> {
		const map = this.#live(key)?.value as Record<string, number> | undefined;
		if (map) delete map[field];
	}

	async get<T>(key: string): Promise<T | undefined> {
		const entry = this.#live(key);
		return entry ? (copyOf(entry.value) as T) : undefined;
	}

	async getMany<T>(keys: string[]): Promise<(T | undefined)[]> {
		// One promise for the lot (the pool reads a key per proxy on every acquire).
		const out = new Array<T | undefined>(keys.length);
		for (let i = 0; i < keys.length; i++) {
			const entry = this.#live(keys[i]!);
			out[i] = entry ? (copyOf(entry.value) as T) : undefined;
		}
		return out;
	}

	async set<T>(key: string, value: T, ttlMs?: number): Promise<void> {
		this.#put(key, copyOf(value), ttlMs);
	}

	async setIfAbsent<T>(key: string, value: T, ttlMs?: number): Promise<boolean> {
		if (this.#live(key)) return false;
		this.#put(key, copyOf(value), ttlMs);
		return true;
	}

	async del(key: string): Promise<void> {
		this.#entries.delete(key);
	}

	async getAndDelete<T>(key: string): Promise<T | undefined> {
		const entry = this.#live(key);
		if (!entry) return undefined;
		this.#entries.delete(key);
		// The stored copy is nobody else's once deleted: handed over without another copy.
		return entry.value as T;
	}

	async deleteIfEquals<T>(key: string, value: T): Promise<boolean> {
		const entry = this.#live(key);
		if (!entry || !sameValue(entry.value, value)) return false;
		this.#entries.delete(key);
		return true;
	}

	async ttl(key: string): Promise<number> {
		const entry = this.#live(key);
		if (!entry) return -2;
		return entry.expiresAt === null ? -1 : Math.max(0, entry.expiresAt - Date.now());
	}

	async keys(prefix: string): Promise<string[]> {
		this.#sweep();
		return [...this.#entries.keys()].filter((k) => k.startsWith(prefix));
	}

	async close(): Promise<void> {
		clearInterval(this.#sweeper);
	}

	#put(key: string, value: unknown, ttlMs?: number) {
		const expiresAt = ttlMs && ttlMs > 0 ? Date.now() + ttlMs : null;
		// An overwrite (a health record per request) updates the entry rather than allocating one.
		const entry = this.#entries.get(key);
		if (entry) {
			entry.value = value;
			entry.expiresAt = expiresAt;
		} else this.#entries.set(key, { value, expiresAt });
	}

	#live(key: string): Entry | undefined {
		const entry = this.#entries.get(key);
		if (entry && entry.expiresAt !== null && entry.expiresAt <= Date.now()) {
			this.#entries.delete(key);
			return undefined;
		}
		return entry;
	}

	#sweep() {
		for (const key of [...this.#entries.keys()]) this.#live(key);
	}
}

/**
 * What structuredClone(value) gives, without its cost in the common cases: a primitive is its own
 * copy, and a plain object whose values are all primitives (a lease, a health record, a ban) is
 * copied field by field (same keys, same order, getters read once, symbol keys dropped, plain
 * prototype). Anything else (nested values, arrays, dates, maps, class instances) goes through
 * structuredClone, as before. Stored values are never shared with callers either way.
 */
function copyOf(value: unknown): unknown {
	const type = typeof value;
	if (type === "function" || type === "symbol") return structuredClone(value); // throws, as before
	if (type !== "object" || value === null) return value;
	const proto = Object.getPrototypeOf(value);
	if (proto !== Object.prototype && proto !== null) return structuredClone(value);
	const src = value as Record<string, unknown>;
	const out: Record<string, unknown> = {};
	// for-in walks the own enumerable string keys here (a plain or null prototype adds none).
	for (const k in src) {
		if (k === "__proto__") return structuredClone(value); // an own "__proto__" key stays an own key
		const v = src[k];
		const t = typeof v;
		if ((t === "object" && v !== null) || t === "function" || t === "symbol") return structuredClone(value);
		out[k] = v;
	}
	return out;
}

/** Equal as stored values (as Redis compares their JSON): primitives directly, the rest by JSON. */
function sameValue(stored: unknown, value: unknown): boolean {
	if (stored === value) return true;
	return typeof stored === "object" && stored !== null && JSON.stringify(stored) === JSON.stringify(value);
}

type LimiterOptions = { points: number; duration: number; keyPrefix: string };

/** One limiter per distinct budget, so two budgets on the same key never share counters. */
export function limiterFor<L>(cache: Map<string, L>, budget: RateBudget, make: (o: LimiterOptions) => L): L {
	// Whole seconds: rate-limiter-flexible's Redis limiter keeps windows with second-granular expiry.
	if (
		!(
			Number.isInteger(budget.points) &&
			budget.points > 0 &&
			budget.durationMs >= 1000 &&
			budget.durationMs % 1000 === 0
		)
	) {
		throw new RangeError(
			`invalid rate budget ${JSON.stringify(budget)}: points > 0, durationMs whole seconds`,
		);
	}
	const id = `${budget.points}/${budget.durationMs}`;
	let limiter = cache.get(id);
	if (!limiter) {
		limiter = make({ points: budget.points, duration: budget.durationMs / 1000, keyPrefix: `rl:${id}` });
		cache.set(id, limiter);
	}
	return limiter;
}

/** rate-limiter-flexible rejects with a RateLimiterRes; turn both outcomes into a ConsumeResult. */
export async function consumeWith(
	limiter: { consume(key: string, points: number): Promise<RateLimiterRes> },
	key: string,
	points: number,
): Promise<ConsumeResult> {
	try {
		const res = await limiter.consume(key, points);
		return { allowed: true, remaining: res.remainingPoints, waitMs: 0 };
	} catch (err) {
		if (err instanceof RateLimiterRes) {
			return { allowed: false, remaining: 0, waitMs: Math.max(1, err.msBeforeNext) };
		}
		throw err;
	}
}
