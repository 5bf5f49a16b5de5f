import { Redis } from "ioredis";
import { RateLimiterRedis } from "rate-limiter-flexible";
import Redlock from "redlock";
import { consumeWith, limiterFor } from "./memory.ts";
import type { ConsumeResult, Lease, RateBudget, SharedState } from "./types.ts";

/**
 * Redis-backed shared state. Rate budgets use rate-limiter-flexible's Redis limiter and leases use
 * redlock (single instance), both well-kept libraries. The scripts here are `incrAtLeast` (Redis has
 * no atomic "max, then increment", and no library offers one), a lease extend that survives a
 * Redis restart (`EXTEND_OR_RECLAIM`) and a compare-and-delete (`DELETE_IF_EQUALS`).
 */

/** KEYS[1] counter; ARGV[1] floor, ARGV[2] ttl in ms (0 = none, set only on creation). */
const INCR_AT_LEAST = `
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
local created = current < 0
local floor = tonumber(ARGV[1])
if current < floor then current = floor end
current = current + 1
redis.call('SET', KEYS[1], current, 'KEEPTTL')
if created and tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return current`;

/**
 * KEYS[1] lease key; ARGV[1] token, ARGV[2] ttl in ms. 1: extended; 2: the key was gone and is the
 * holder's again; 0: someone else holds it. Redlock's extend fails on a missing key, which a Redis
 * restarted without persistence turns into "every lease lost": the running attempts would be dropped
 * and run again, so an absent key is re-taken with the same token instead (nobody else took it).
 */
const EXTEND_OR_RECLAIM = `
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not held then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0`;

/** KEYS[1] key; ARGV[1] the value (JSON) it must hold to be deleted. 1: deleted; 0: not. */
const DELETE_IF_EQUALS = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

type RedisWithScripts = Redis & {
	incrAtLeast(key: string, floor: number, ttlMs: number): Promise<number>;
	extendOrReclaim(key: string, token: string, ttlMs: number): Promise<number>;
	deleteIfEquals(key: string, value: string): Promise<number>;
};
export class RedisSharedState implements SharedState {
	readonly kind = "redis" as const;
	readonly redis: Redis;
	readonly #prefix: string;
	readonly #limiters = new Map<string, RateLimiterRedis>();
	readonly #redlock: Redlock;

	constructor(url: string, namespace = "saguaro") {
		this.#prefix = `${namespace}:`;
		this.redis = new Redis(url, {
			keyPrefix: this.#prefix,
			// Ride out a short outage (a restart, a failover: ~10 s of reconnect attempts at ioredis'
			// default backoff), then fail the call instead of queueing it forever; callers see the error.
			maxRetriesPerRequest: 20,
			enableOfflineQueue: true,
			lazyConnect: false,
			// Commands issued in the same tick (a lease's counters, a gateway's concurrent requests) go
			// out in one write and come back in one read rather than a round of syscalls each.
			enableAutoPipelining: true,
		});
		this.redis.defineCommand("incrAtLeast", { numberOfKeys: 1, lua: INCR_AT_LEAST });
		this.redis.defineCommand("extendOrReclaim", { numberOfKeys: 1, lua: EXTEND_OR_RECLAIM });
		this.redis.defineCommand("deleteIfEquals", { numberOfKeys: 1, lua: DELETE_IF_EQUALS });
		this.#redlock = new Redlock([this.redis as never], { retryCount: 0, driftFactor: 0.01 });
		// Without a listener ioredis would print every reconnect error; callers see failures anyway.
		this.redis.on("error", () => {});
	}

	async consume(key: string, budget: RateBudget, points = 1): Promise<ConsumeResult> {
		const limiter = limiterFor(
			this.#limiters,
			budget,
			(o) => new RateLimiterRedis({ ...o, storeClient: this.redis, useRedisPackage: false }),
		);
		return consumeWith(limiter, key, points);
	}

	async acquire(key: string, ttlMs: number): Promise<Lease | null> {
		let lock: Redlock.Lock;
		try {
			lock = await this.#redlock.lock(`lease:${key}`, ttlMs);
		} catch (err) {
			if (err instanceof Redlock.LockError) return null;
			throw err;
		}
		const redis = this.redis as RedisWithScripts;
		return {
			key,
			token: lock.value,
			extend: async (ms: number) => (await redis.extendOrReclaim(`lease:${key}`, lock.value, ms)) > 0,
			// Redlock's unlock deletes the key only while it still holds this token.
			release: async () => {
				await lock.unlock().catch(() => undefined);
			},
		};
	}

	async incr(key: string, by = 1, ttlMs?: number): Promise<number> {
		const value = await this.redis.incrby(key, by);
		if (ttlMs && value === by) await this.redis.pexpire(key, ttlMs);
		return value;
	}

	async incrAtLeast(key: string, floor: number, ttlMs?: number): Promise<number> {
		return Number(await (this.redis as RedisWithScripts).incrAtLeast(key, floor, ttlMs ?? 0));
	}

	async hincr(key: string, field: string, by = 1): Promise<number> {
		return this.redis.hincrby(key, field, by);
	}

	async hgetall(key: string): Promise<Record<string, number>> {
		const raw = await this.redis.hgetall(key);
		return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
	}

	async hdel(key: string, field: string): Promise<void> {
		await this.redis.hdel(key, field);
	}

	async get<T>(key: string): Promise<T | undefined> {
		return decode<T>(await this.redis.get(key));
	}

	async getMany<T>(keys: string[]): Promise<(T | undefined)[]> {
		if (keys.length === 0) return [];
		return (await this.redis.mget(...keys)).map((v) => decode<T>(v));
	}

	async set<T>(key: string, value: T, ttlMs?: number): Promise<void> {
		if (ttlMs && ttlMs > 0) await this.redis.set(key, JSON.stringify(value), "PX", ttlMs);
		else await this.redis.set(key, JSON.stringify(value));
	}

	async setIfAbsent<T>(key: string, value: T, ttlMs?: number): Promise<boolean> {
		const res =
			ttlMs && ttlMs > 0
				? await this.redis.set(key, JSON.stringify(value), "PX", ttlMs, "NX")
				: await this.redis.set(key, JSON.stringify(value), "NX");
		return res === "OK";
	}

	async del(key: string): Promise<void> {
		await this.redis.del(key);
	}

	async getAndDelete<T>(key: string): Promise<T | undefined> {
		return decode<T>(await this.redis.getdel(key));
	}

	async deleteIfEquals<T>(key: string, value: T): Promise<boolean> {
		return (await (this.redis as RedisWithScripts).deleteIfEquals(key, JSON.stringify(value))) === 1;
	}

	async ttl(key: string): Promise<number> {
		return this.redis.pttl(key);
	}

	async keys(prefix: string): Promise<string[]> {
		// SCAN does not apply ioredis' keyPrefix: add it to the pattern and strip it from results.
		const pattern = `${escapeGlob(this.#prefix + prefix)}*`;
		const found: string[] = [];
		let cursor = "0";
		do {
			const [next, batch] = await this.redis.scan(cursor, "MATCH", pattern, "COUNT", 500);
			cursor = next;
			for (const k of batch) found.push(k.slice(this.#prefix.length));
		} while (cursor !== "0");
		return [...new Set(found)];
	}

	async close(): Promise<void> {
		await this.redis.quit().catch(() => this.redis.disconnect());
	}
}

function decode<T>(raw: string | null): T | undefined {
	return raw === null ? undefined : (JSON.parse(raw) as T);
}

function escapeGlob(s: string): string {
	return s.replace(/[*?[\]\\]/g, "\\$&");
}
