/**
 * The page slots of a pool and the queue of renders waiting for one. A slot is one page of one
 * browser, in the context of the session it last rendered for; the slots of a browser that render
 * for the same session share that session's context (one proxy lease, one cookie jar, one
 * fingerprint, and one context's fixed cost in renderer and browser memory instead of one a slot).
 * A render takes the best free slot (one in its session's context, else an empty slot, else any),
 * or waits in line, bounded by the queue timeout.
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import { type BrowserProxy, RenderError } from "./types.ts";

/** One session's context in one browser, shared by the slots rendering for that session. */
export interface SessionContext {
	session: string;
	/** The context, once opened (null while it opens or once it failed). */
	context: BrowserContext | null;
	/** Settles when the context is open (or failed); the slots that join meanwhile wait on it. */
	ready: Promise<BrowserContext>;
	proxy: BrowserProxy | null;
	/** Browser generation the context belongs to. */
	generation: number;
	/** Renders served: past recyclePages the context is retired and replaced. */
	pages: number;
	/** Slots attached to it; the last to leave a retired (or abandoned) context closes it. */
	users: number;
	/** Takes no new slot; closed once its last slot leaves. */
	retired: boolean;
	/** How the proxy fared, told to the proxy provider when the context closes. */
	outcome: { ok: boolean; error?: string };
}

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
	/** The current (not retired) context of each session in this browser. */
	sessions: Map<string, SessionContext>;
	/** Every open context of this browser, retired ones included. */
	contexts: Set<SessionContext>;
}

export interface Slot {
	id: number;
	entry: BrowserEntry;
	/** The session context the slot is attached to (its page lives there). */
	shared: SessionContext | null;
	/** Session of `shared` (null when detached). */
	session: string | null;
	busy: boolean;
	/** Set while a page runs: when it must be done, and how to reclaim it. */
	deadline: number;
	page: Page | null;
	/** The context's page, kept open between renders and navigated again; null once closed or failed. */
	tab: Page | null;
	/** Renders the kept page has served. */
	tabRenders: number;
	/**
	 * The close of the slot's last page, which ends in the background after its render answered; the
	 * slot's next page waits for it, so a slot never holds two renderers at once.
	 */
	closing: Promise<unknown> | null;
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
				sessions: new Map(),
				contexts: new Set(),
			};
			this.entries.push(entry);
			for (let c = 0; c < contextsPerBrowser; c++) {
				this.slots.push({
					id: this.slots.length,
					entry,
					shared: null,
					session: null,
					busy: false,
					deadline: 0,
					page: null,
					tab: null,
					tabRenders: 0,
					closing: null,
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
		if (session && slot.session === session && slot.shared && !slot.shared.retired) return 3;
		if (!slot.shared) return 2;
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
