/**
 * What a browser pool has done since it started (pages, failures by kind, recycles, reclaimed
 * slots, captchas) and the stats it answers from them and from its slots.
 */
import type { SlotQueue } from "./slots.ts";
import type { PoolStats } from "./types.ts";

export class PoolCounts {
	pages = 0;
	contextRecycles = 0;
	browserRecycles = 0;
	reclaimed = 0;
	readonly captchas = { solved: 0, unsolved: 0, skipped: 0 };
	readonly #failures: Record<string, number> = {};

	failed(kind: string): void {
		this.#failures[kind] = (this.#failures[kind] ?? 0) + 1;
	}

	stats(queue: SlotQueue, sessions: number): PoolStats {
		const now = Date.now();
		const browsers = queue.entries.map((e) => ({
			index: e.index,
			pages: e.pages,
			ageS: e.browser ? Math.round((now - e.launchedAt) / 1000) : 0,
			memoryMb: Math.round(e.memoryBytes / 1048576),
			draining: e.draining,
			pid: e.browser ? e.pid : null,
		}));
		return {
			slots: queue.slots.length,
			busy: queue.slots.filter((s) => s.busy).length,
			queued: queue.queued,
			pages: this.pages,
			failures: { ...this.#failures },
			recycles: { contexts: this.contextRecycles, browsers: this.browserRecycles },
			reclaimed: this.reclaimed,
			captchas: { ...this.captchas },
			browsers,
			memoryMb: browsers.reduce((s, b) => s + b.memoryMb, 0),
			sessions,
		};
	}
}
