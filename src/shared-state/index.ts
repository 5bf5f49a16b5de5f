import { MemorySharedState } from "./memory.ts";
import { RedisSharedState } from "./redis.ts";
import type { SharedState } from "./types.ts";

export type { ConsumeResult, Lease, RateBudget, SharedState } from "./types.ts";
export { MemorySharedState, RedisSharedState };

/** Redis when REDIS_URL is set, memory otherwise. */
export function createSharedState(redisUrl: string | null, namespace = "saguaro"): SharedState {
	return redisUrl ? new RedisSharedState(redisUrl, namespace) : new MemorySharedState();
}
