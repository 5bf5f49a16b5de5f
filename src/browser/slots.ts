/**
 * The page slots of a pool and the queue of renders waiting for one. A slot is one context of one
 * browser; a render takes the best free slot (its session's context, else an empty slot, else any),
 * or waits in line, bounded by the queue timeout.
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import { type BrowserProxy, RenderError } from "./types.ts";

export interface BrowserEntry {
	index: number;
	browser: Browser | null;
	launching: Promise<Browser> | null;
	marker: string;
	pid: number | null;
	launchedAt: number;
	pages: number;
	draining: boolean;
	/** A close-and-replace is under way (one at a time per browser). */
	recycling: boolean;
	memoryBytes: number;
	generation: number;
}

export interface Slot {
	id: number;
	entry: BrowserEntry;
	context: BrowserContext | null;
	/** Browser generation the context belongs to. */
	generation: number;
	session: string | null;
	proxy: BrowserProxy | null;
	pages: number;
	busy: boolean;
	/** Set while a page runs: when it must be done, and how to reclaim it. */
	deadline: number;
	page: Page | null;
	/** The context's page, kept open between renders and navigated again; null once closed or failed. */
	tab: Page | null;
	/** Renders the kept page has served. */
	tabRenders: number;
	reclaiming: boolean;
	/** The render that holds the slot: a reclaimed render that wakes up late must not touch it. */
	owner: number;
}

type Waiter = {
	resolve: (slot: Slot) => void;
	reject: (err: Error) => void;
	session: string | null;
	timer: NodeJS.Timeout;
};

export class SlotQueue {
	readonly entries: BrowserEntry[] = [];
	readonly slots: Slot[] = [];
	readonly #waiters: Waiter[] = [];
	readonly #queueTimeoutMs: number;
	readonly #onTimeout: () => void;
	closed = false;

	constructor(browsers: number, contextsPerBrowser: number, queueTimeoutMs: number, onTimeout: () => void) {
		this.#queueTimeoutMs = queueTimeoutMs;
		this.#onTimeout = onTimeout;
		for (let b = 0; b < browsers; b++) {
			const entry: BrowserEntry = {
				index: b,
				browser: null,
				launching: null,
				marker: "",
				pid: null,
				launchedAt: 0,
				pages: 0,
				draining: false,
				recycling: false,
				memoryBytes: 0,
				generation: 0,
			};
			this.entries.push(entry);
			for (let c = 0; c < contextsPerBrowser; c++) {
				this.slots.push({
					id: this.slots.length,
					entry,
					context: null,
					generation: -1,
					session: null,
					proxy: null,
					pages: 0,
					busy: false,
					deadline: 0,
					page: null,
					tab: null,
					tabRenders: 0,
					reclaiming: false,
					owner: 0,
				});
			}
		}
	}

	get queued(): number {
		return this.#waiters.length;
	}

	#score(slot: Slot, session: string | null): number {
		if (slot.busy || slot.reclaiming || slot.entry.draining || slot.entry.recycling) return -1;
		if (session && slot.session === session && slot.context) return 3;
		if (!slot.context) return 2;
		return 1;
	}

	#pick(session: string | null): Slot | null {
		let best: Slot | null = null;
		let bestScore = 0;
		for (const slot of this.slots) {
			const s = this.#score(slot, session);
			if (s > bestScore) {
				best = slot;
				bestScore = s;
			}
		}
		return best;
	}

	acquire(session: string | null): Promise<Slot> {
		if (this.closed) return Promise.reject(new RenderError("queue", "browser pool is closed"));
		const slot = this.#pick(session);
		if (slot) {
			slot.busy = true;
			return Promise.resolve(slot);
		}
		return new Promise((resolve, reject) => {
			const waiter: Waiter = {
				resolve,
				reject,
				session,
				timer: setTimeout(() => {
					const at = this.#waiters.indexOf(waiter);
					if (at >= 0) this.#waiters.splice(at, 1);
					this.#onTimeout();
					reject(new RenderError("queue", `no free page slot within ${this.#queueTimeoutMs} ms`));
				}, this.#queueTimeoutMs),
			};
			this.#waiters.push(waiter);
		});
	}

	/** Hands free slots to the renders waiting, first come first served. */
	dispatch(): void {
		while (this.#waiters.length > 0) {
			const waiter = this.#waiters[0] as Waiter;
			const slot = this.#pick(waiter.session);
			if (!slot) return;
			this.#waiters.shift();
			clearTimeout(waiter.timer);
			slot.busy = true;
			waiter.resolve(slot);
		}
	}

	/** Refuses every waiting render and any later one. */
	close(): void {
		this.closed = true;
		for (const w of this.#waiters.splice(0)) {
			clearTimeout(w.timer);
			w.reject(new RenderError("queue", "browser pool is closing"));
		}
	}
}
