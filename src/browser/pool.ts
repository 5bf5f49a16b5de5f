/**
 * A node's Playwright pool: N Chromium browsers x M contexts ("page slots"), each context bound to a
 * proxy session. The slot count is the node's render concurrency (its bulkhead): a render waits for a
 * free slot, bounded by a queue timeout. Bounded memory for runs of days comes from recycling:
 * a context after K pages, a browser after K x M pages, T minutes, or past a memory ceiling (drained
 * first, never mid-page). A watchdog gives every render a hard deadline: a stuck page is closed,
 * then its context, then its browser is killed, and the slot is freed; the caller gets an error at
 * the deadline, never a hang. Cookies are kept per session and restored into the next context.
 * The slots of a browser that render for the same session share its context (renders without a
 * session share one per browser): a context has a fixed cost (an extra renderer, ~30-40 MB, and its
 * state in the browser process) that one per slot paid N times, with N proxy leases for one session.
 * A slot keeps one page open in its context and navigates it render after render: opening a page
 * (a renderer, the fingerprint script, the routes) costs more CPU than loading a small page, and on a
 * few cores that cost is what limited throughput.
 *
 * The parts: slots.ts (slots and the render queue), launch.ts (launching, closing), context.ts
 * (a session's context: fingerprint, proxy, blocking), cookies.ts (storage state per session),
 * captcha.ts, extract.ts (fields, capped HTML), visit.ts (one page visit: navigate, captcha, read),
 * watchdog.ts (the deadline), pool-counts.ts (its stats); this file ties them to the render
 * lifecycle, recycling and reclaiming.
 */
import type { Browser, BrowserContext } from "playwright-core";
import { ContextFactory } from "./context.ts";
import { SessionStorage } from "./cookies.ts";
import { closeBrowserProcess, launchBrowser } from "./launch.ts";
import { PoolCounts } from "./pool-counts.ts";
import { treeMemory } from "./process-memory.ts";
import { type BrowserEntry, type SessionContext, type Slot, SlotQueue } from "./slots.ts";
import {
	type BrowserPoolOptions,
	type BrowserProxy,
	type PoolStats,
	RenderError,
	type RenderParams,
	type RenderResult,
	withTimeout,
} from "./types.ts";
import { visit } from "./visit.ts";
import { raceDeadline } from "./watchdog.ts";

export { BROWSER_NODE_FLAGS, CHROMIUM_ARGS, LEAN_ARGS } from "./launch.ts";

/** The session of renders that name none: they share one context per browser. */
const NO_SESSION = "(no session)";

export * from "./types.ts";

export class BrowserPool {
	readonly options: BrowserPoolOptions;
	readonly #queue: SlotQueue;
	readonly #contexts: ContextFactory;
	readonly #storage = new SessionStorage();
	readonly #counts = new PoolCounts();
	#timer: NodeJS.Timeout | null = null;
	#closed = false;
	#renderSeq = 0;

	constructor(options: BrowserPoolOptions) {
		this.options = options;
		this.#queue = new SlotQueue(options.browsers, options.contextsPerBrowser, options.queueTimeoutMs, () => {
			this.#counts.failed("queue");
		});
		this.#contexts = new ContextFactory(options);
	}

	get #entries(): BrowserEntry[] {
		return this.#queue.entries;
	}

	get #slots(): Slot[] {
		return this.#queue.slots;
	}

	/** Starts the watchdog; browsers launch lazily on first use. */
	start(): void {
		const every = this.options.watchdogIntervalMs ?? 2000;
		this.#timer = setInterval(() => void this.#watch(), every);
		this.#timer.unref();
	}

	async close(): Promise<void> {
		this.#closed = true;
		if (this.#timer) clearInterval(this.#timer);
		this.#queue.close();
		await Promise.all(this.#entries.map((e) => this.#closeBrowser(e)));
	}

	async #closeBrowser(entry: BrowserEntry): Promise<void> {
		const browser = entry.browser;
		const pid = entry.pid;
		entry.browser = null;
		entry.pid = null;
		for (const slot of this.#slots) if (slot.entry === entry) await this.#detach(slot, false);
		for (const shared of [...entry.contexts]) await this.#closeShared(entry, shared, false);
		entry.sessions.clear();
		if (browser) await closeBrowserProcess(browser, pid);
	}

	#releaseSlot(slot: Slot): void {
		slot.busy = false;
		slot.owner = 0;
		slot.page = null;
		slot.deadline = 0;
		void this.#maybeRecycleBrowser(slot.entry).finally(() => this.#queue.dispatch());
	}

	/** Closes a session context, keeping its cookies when asked, and gives its proxy lease back. */
	async #closeShared(entry: BrowserEntry, shared: SessionContext, saveState: boolean): Promise<void> {
		if (!entry.contexts.delete(shared)) return;
		if (entry.sessions.get(shared.session) === shared) entry.sessions.delete(shared.session);
		shared.retired = true;
		// One still opening sees it is no longer in entry.contexts and closes itself.
		const context = shared.context ?? (await withTimeout(shared.ready, 10_000)) ?? null;
		shared.context = null;
		if (context) {
			if (saveState) {
				const state = await withTimeout(context.storageState(), 5000);
				if (state) this.#storage.remember(shared.session, state);
			}
			await withTimeout(context.close(), 10_000);
		}
		const proxy = shared.proxy;
		shared.proxy = null;
		if (proxy && this.options.proxies)
			await this.options.proxies.release(proxy, shared.outcome).catch(() => undefined);
	}

	/** Takes the slot out of its session context, closing its page; the last slot out closes the context. */
	async #detach(slot: Slot, saveState: boolean): Promise<void> {
		const shared = slot.shared;
		const tab = slot.tab;
		slot.shared = null;
		slot.session = null;
		slot.tab = null;
		slot.tabRenders = 0;
		if (tab) await withTimeout(tab.close({ runBeforeUnload: false }), 5000);
		if (!shared) return;
		shared.users--;
		if (shared.users <= 0) await this.#closeShared(slot.entry, shared, saveState);
	}

	/**
	 * A session context takes no new slot (served its pages, or its proxy failed): renders of its
	 * session get a new one. Idle slots leave it now, busy ones when their render ends; the last closes it.
	 */
	#retire(entry: BrowserEntry, shared: SessionContext, outcome?: { ok: boolean; error?: string }): void {
		if (outcome) shared.outcome = outcome;
		if (shared.retired) return;
		shared.retired = true;
		if (entry.sessions.get(shared.session) === shared) entry.sessions.delete(shared.session);
		for (const slot of this.#slots)
			if (slot.shared === shared && !slot.busy && !slot.reclaiming) void this.#detach(slot, true);
	}

	async #unusedProxy(proxy: BrowserProxy | null): Promise<void> {
		if (proxy && this.options.proxies)
			await this.options.proxies.release(proxy, { ok: true, unused: true }).catch(() => undefined);
	}

	/** A new context for `session` in `entry`'s browser, registered at once so other slots join it. */
	#openShared(entry: BrowserEntry, browser: Browser, session: string, domain: string): SessionContext {
		// Settled by the opening below, which needs `shared` itself (registered before it opens).
		const opened = Promise.withResolvers<BrowserContext>();
		const shared: SessionContext = {
			session,
			context: null,
			ready: opened.promise,
			proxy: null,
			generation: entry.generation,
			pages: 0,
			users: 0,
			retired: false,
			outcome: { ok: true },
		};
		(async () => {
			let proxy: BrowserProxy | null = null;
			if (this.options.proxies) {
				try {
					proxy = await this.options.proxies.acquire({ domain, session });
				} catch (err) {
					throw new RenderError("proxy", `no proxy for session: ${(err as Error).message}`);
				}
			}
			let context: BrowserContext;
			try {
				context = await this.#contexts.open(browser, session, proxy, this.#storage.get(session));
			} catch (err) {
				// The browser failed before the proxy carried anything: give the lease back, blaming nobody.
				await this.#unusedProxy(proxy);
				throw err;
			}
			if (!entry.contexts.has(shared)) {
				// Closed while it opened (its browser closed, or every slot left): nobody's.
				await withTimeout(context.close(), 10_000);
				await this.#unusedProxy(proxy);
				throw new RenderError("watchdog", "context closed while it was created");
			}
			shared.context = context;
			shared.proxy = proxy;
			return context;
		})().then(opened.resolve, opened.reject);
		shared.ready.catch(() => {
			shared.retired = true;
			entry.contexts.delete(shared);
			if (entry.sessions.get(session) === shared) entry.sessions.delete(session);
		});
		entry.sessions.set(session, shared);
		entry.contexts.add(shared);
		return shared;
	}

	/** Makes sure the slot is attached to a live context of `session` (joining the browser's, or opening it). */
	async #prepare(slot: Slot, session: string, domain: string, mine: () => boolean): Promise<BrowserContext> {
		const entry = slot.entry;
		const browser = await launchBrowser(entry, this.options);
		if (!mine()) throw new RenderError("watchdog", "slot reclaimed while its browser launched");
		const current = slot.shared;
		if (
			current?.context &&
			current.session === session &&
			!current.retired &&
			current.generation === entry.generation
		)
			return current.context;
		if (current) {
			if (current.session !== session) this.#counts.contextRecycles++;
			await this.#detach(slot, true);
			if (!mine()) throw new RenderError("watchdog", "slot reclaimed while it left its context");
		}
		let shared = entry.sessions.get(session);
		if (!shared || shared.retired || shared.generation !== entry.generation)
			shared = this.#openShared(entry, browser, session, domain);
		shared.users++;
		slot.shared = shared;
		slot.session = session;
		const context = await shared.ready;
		if (!mine()) throw new RenderError("watchdog", "slot reclaimed while its context was created");
		return context;
	}

	/** Renders one page within the watchdog deadline. */
	async render(params: RenderParams): Promise<RenderResult> {
		const started = Date.now();
		const session = params.session ?? NO_SESSION;
		const slot = await this.#queue.acquire(session);
		const owner = ++this.#renderSeq;
		slot.owner = owner;
		const deadlineMs = this.options.pageTimeoutMs * 2 + 5000;
		slot.deadline = Date.now() + deadlineMs;
		let watchdogFired = false;
		const work = this.#renderIn(slot, owner, params, session, started);
		work.catch(() => undefined);
		try {
			const outcome = await raceDeadline(work, deadlineMs);
			if ("fired" in outcome) {
				watchdogFired = true;
				throw outcome.error;
			}
			this.#counts.pages++;
			return outcome.value;
		} catch (err) {
			const kind = err instanceof RenderError ? err.kind : "navigation";
			this.#counts.failed(kind);
			throw err;
		} finally {
			if (watchdogFired) {
				this.#counts.reclaimed++;
				// The slot stays busy until its page, context (and if need be browser) are gone.
				void this.#reclaim(slot, work);
			} else {
				this.#releaseSlot(slot);
			}
		}
	}

	async #renderIn(
		slot: Slot,
		owner: number,
		params: RenderParams,
		session: string,
		started: number,
	): Promise<RenderResult> {
		const domain = params.domain ?? new URL(params.url).hostname;
		const mine = () => slot.owner === owner;
		let context: BrowserContext;
		try {
			context = await this.#prepare(slot, session, domain, mine);
		} catch (err) {
			if (mine()) {
				if (slot.shared && !(err instanceof RenderError))
					this.#retire(slot.entry, slot.shared, { ok: false, error: (err as Error).message });
				await this.#detach(slot, false);
			}
			if (err instanceof RenderError) throw err;
			throw new RenderError("crash", `browser unavailable: ${(err as Error).message}`);
		}
		if (!mine()) throw new RenderError("watchdog", "slot reclaimed while its context was prepared");
		if (params.cookies && params.cookies.length > 0) await context.addCookies(params.cookies);
		const kept = slot.tab && !slot.tab.isClosed() ? slot.tab : null;
		if (!kept) {
			slot.tabRenders = 0;
			if (slot.closing) await slot.closing;
		}
		const page = kept ?? (await this.#contexts.newPage(context));
		if (!mine()) {
			if (!kept) await withTimeout(page.close({ runBeforeUnload: false }), 5000);
			throw new RenderError("watchdog", "slot reclaimed while its page opened");
		}
		slot.page = page;
		slot.tab = page;
		let failed = true;
		try {
			const visited = await visit(page, params, this.options);
			if (visited.captcha !== "none") this.#counts.captchas[visited.captcha]++;
			if (mine()) {
				if (slot.shared) slot.shared.pages++;
				slot.entry.pages++;
			}
			failed = false;
			return { ...visited, ms: Date.now() - started };
		} finally {
			if (mine()) slot.page = null;
			// A page that failed (timeout, aborted navigation) may still be busy: the next render gets a fresh one.
			// A reclaimed render's page is the reclaim's to close.
			if (failed || !mine()) {
				if (mine() && slot.tab === page) slot.tab = null;
				await withTimeout(page.close({ runBeforeUnload: false }), 5000);
			} else if (
				++slot.tabRenders >= (this.options.pageReuse ?? 3) ||
				slot.entry.memoryBytes > this.options.maxBrowserBytes / 2
			) {
				// Served its share, or memory is tight: the next render gets a fresh page (and renderer).
				// Closed in the background: this render's answer is ready.
				slot.tab = null;
				const closing = withTimeout(page.close({ runBeforeUnload: false }), 5000).finally(() => {
					if (slot.closing === closing) slot.closing = null;
				});
				slot.closing = closing;
			}
			const shared = slot.shared;
			if (mine() && shared && !slot.reclaiming) {
				if (!shared.retired && shared.pages >= this.options.recyclePages) {
					this.#counts.contextRecycles++;
					this.#retire(slot.entry, shared);
				}
				// A retired context's slots leave it as their renders end; the last one closes it.
				if (shared.retired) await this.#detach(slot, true);
			}
		}
	}

	/** Frees a slot whose page is stuck: close the page, then the context, then kill the browser. */
	async #reclaim(slot: Slot, work: Promise<unknown>): Promise<void> {
		slot.reclaiming = true;
		const settled = (ms: number) =>
			withTimeout(
				work.then(
					() => true,
					() => true,
				),
				ms,
			);
		try {
			const page = slot.page;
			if (page) await withTimeout(page.close({ runBeforeUnload: false }), 3000);
			// The context takes no new render (its proxy or session may be the cause); this slot leaves
			// it, and closes it when no other slot renders in it.
			if (slot.shared) this.#retire(slot.entry, slot.shared, { ok: false, error: "stuck page" });
			if (!(await settled(3000))) {
				await withTimeout(this.#detach(slot, false), 10_000);
				// The browser of a stuck page did not let go of it. Killing it now would abort the renders
				// of its other slots, so it only stops taking work and is replaced once they are done (each
				// is bounded by its own watchdog); with no other render on it, it is replaced at once.
				if (!(await settled(3000))) await this.#drainAndRecycle(slot.entry, slot);
			} else {
				await this.#detach(slot, false);
			}
		} finally {
			slot.reclaiming = false;
			this.#releaseSlot(slot);
		}
	}

	/** Replaces a browser that is due (pages, age, memory) once none of its slots is busy. */
	async #maybeRecycleBrowser(entry: BrowserEntry): Promise<void> {
		if (!entry.browser || this.#closed || entry.recycling) return;
		const due =
			entry.draining ||
			entry.pages >= this.options.recyclePages * this.options.contextsPerBrowser ||
			Date.now() - entry.launchedAt >= this.options.recycleMs ||
			entry.memoryBytes > this.options.maxBrowserBytes;
		if (!due) return;
		await this.#drainAndRecycle(entry);
	}

	/**
	 * Stops `entry` taking work and closes it once none of its slots (but `except`) is busy; the
	 * last render to finish on a draining browser calls #maybeRecycleBrowser again.
	 */
	async #drainAndRecycle(entry: BrowserEntry, except?: Slot): Promise<void> {
		entry.draining = true;
		if (
			entry.recycling ||
			this.#slots.some((s) => s !== except && s.entry === entry && (s.busy || s.reclaiming))
		)
			return;
		entry.recycling = true;
		this.#counts.browserRecycles++;
		try {
			await this.#closeBrowser(entry);
		} finally {
			entry.pages = 0;
			entry.memoryBytes = 0;
			entry.draining = false;
			entry.recycling = false;
		}
	}

	/** Periodic check: memory of every browser, dead browsers, and slots past their deadline. */
	async #watch(): Promise<void> {
		const now = Date.now();
		for (const entry of this.#entries) {
			if (entry.browser && entry.pid) entry.memoryBytes = treeMemory(entry.pid);
			if (entry.browser && !entry.browser.isConnected()) entry.browser = null;
			await this.#maybeRecycleBrowser(entry);
		}
		for (const slot of this.#slots) {
			// A slot whose render outlived its own watchdog by far (a wedged event loop in a promise
			// chain): free it the hard way.
			if (slot.busy && !slot.reclaiming && slot.deadline > 0 && now > slot.deadline + 30_000) {
				this.#counts.reclaimed++;
				void this.#reclaim(slot, Promise.resolve());
			}
		}
		this.#queue.dispatch();
	}

	stats(): PoolStats {
		return this.#counts.stats(this.#queue, this.#storage.size);
	}

	/** Current memory of every browser, measured now (the watchdog refreshes it periodically). */
	measureMemory(): number {
		let total = 0;
		for (const e of this.#entries) {
			if (e.browser && e.pid) e.memoryBytes = treeMemory(e.pid);
			total += e.memoryBytes;
		}
		return total;
	}
}
