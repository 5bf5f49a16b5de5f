import type { SharedState } from "../shared-state/index.ts";

/**
 * moleculer-web rate-limit store over the shared state, so the API's per-client limit holds for
 * the whole cluster rather than per api node (moleculer-web's MemoryStore is per process).
 */
export function sharedRateLimitStore(state: SharedState) {
	return class SharedStateRateLimitStore {
		readonly windowMs: number;
		constructor(windowMs: number) {
			this.windowMs = windowMs;
		}
		/** End of the current window (moleculer-web sends it as X-Rate-Limit-Reset). */
		get resetTime(): number {
			return (Math.floor(Date.now() / this.windowMs) + 1) * this.windowMs;
		}
		inc(key: string): Promise<number> {
			const bucket = Math.floor(Date.now() / this.windowMs);
			return state.incr(`api-rl:${bucket}:${key}`, 1, this.windowMs * 2);
		}
	};
}
