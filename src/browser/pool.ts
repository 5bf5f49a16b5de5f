/**
 * A node's Playwright pool: N Chromium browsers x M contexts ("page slots"), each context bound to a
 * proxy session. The slot count is the node's render concurrency (its bulkhead): a render waits for a
 * free slot, bounded by a queue timeout. Bounded memory for runs of days comes from recycling:
 * a context after K pages, a browser after K x M pages, T minutes, or past a memory ceiling (drained
 * first, never mid-page). A watchdog gives every render a hard deadline: a stuck page is closed,
 * then its context, then its browser is killed, and the slot is freed; the caller gets an error at
 * the deadline, never a hang. Cookies are kept per session and restored into the next context.
 * A slot keeps one page open in its context and navigates it render after render: opening a page
 * (a renderer, the fingerprint script, the routes) costs more CPU than loading a small page, and on a
 * few cores that cost is what limited throughput.
 */
import { randomUUID } from "node:crypto";
import { FingerprintInjector } from "fingerprint-injector";
import { type Browser, type BrowserContext, chromium, type Page, type Route } from "playwright-core";
import { FingerprintStore, LOCALE, TIMEZONE } from "./fingerprints.ts";
import { findPidByMarker, treeMemory } from "./process-memory.ts";

export const CHROMIUM_ARGS = [
	"--no-sandbox",
	"--disable-gpu",
	"--disable-background-networking",
	"--disable-component-update",
	"--no-first-run",
	"--disable-sync",
	"--disable-quic",
	"--disable-dev-shm-usage",
];

const BLOCKED_TYPES = new Set(["image", "font", "media"]);

export interface BrowserProxy {
	leaseId: string;
	server: string;
	username?: string;
	password?: string;
}

export interface BrowserProxyProvider {
	acquire(req: { domain: string; session: string }): Promise<BrowserProxy>;
	release(
		proxy: BrowserProxy,
		outcome: { ok: boolean; status?: number; blocked?: boolean; error?: string; unused?: boolean },
	): Promise<void>;
}

export interface BrowserCaptchaSolver {
	solve(challenge: { type: "hcaptcha" | "recaptcha"; sitekey: string; pageurl: string }): Promise<string>;
}

export interface BrowserPoolOptions {
	executablePath: string;
	browsers: number;
	contextsPerBrowser: number;
	/** Pages per context before it is replaced (a browser: this x contextsPerBrowser). */
	recyclePages: number;
	recycleMs: number;
	maxBrowserBytes: number;
	pageTimeoutMs: number;
	blockResources: boolean;
	maxHtmlBytes: number;
	queueTimeoutMs: number;
	proxies: BrowserProxyProvider | null;
	solver: BrowserCaptchaSolver | null;
	/** How often the watchdog looks at slots and browser memory. */
	watchdogIntervalMs?: number;
	headless?: boolean;
}

export interface RenderParams {
	url: string;
	/** Proxy session (sticky proxy, fingerprint, cookies); default: one per slot. */
	session?: string;
	/** Site the proxy is leased for (per-domain bans); default: the URL's host. */
	domain?: string;
	cookies?: { name: string; value: string; url: string }[];
	/** CSS selector to wait for before reading the page (bounded by the page timeout). */
	waitFor?: string;
	/** Fields to extract: name -> CSS selector (text of the first match, null when absent). */
	extract?: Record<string, string>;
	/** Skip the HTML in the answer (only status, URL and extracted fields). */
	noHtml?: boolean;
	/** Solve a captcha wall met on the page (default true); false leaves it, for callers out of budget. */
	solveCaptchas?: boolean;
}

export interface RenderResult {
	status: number;
	url: string;
	html: string | null;
	/** The HTML was cut at the size cap. */
	truncated: boolean;
	fields: Record<string, string | null> | null;
	/** A wall met: solved, a solve tried and failed, or left alone (no solver, or not asked to). */
	captcha: "none" | "solved" | "unsolved" | "skipped";
	ms: number;
}

export type FailureKind = "timeout" | "watchdog" | "navigation" | "proxy" | "captcha" | "crash" | "queue";

export class RenderError extends Error {
	readonly kind: FailureKind;
	constructor(kind: FailureKind, message: string) {
		super(message);
		this.name = "RenderError";
		this.kind = kind;
	}
}

interface BrowserEntry {
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

interface Slot {
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
	reclaiming: boolean;
	/** The render that holds the slot: a reclaimed render that wakes up late must not touch it. */
	owner: number;
}

export interface PoolStats {
	slots: number;
	busy: number;
	queued: number;
	pages: number;
	failures: Record<string, number>;
	recycles: { contexts: number; browsers: number };
	reclaimed: number;
	captchas: { solved: number; unsolved: number; skipped: number };
	browsers: {
		index: number;
		pages: number;
		ageS: number;
		memoryMb: number;
		draining: boolean;
		pid: number | null;
	}[];
	memoryMb: number;
	sessions: number;
}

type Waiter = {
	resolve: (slot: Slot) => void;
	reject: (err: Error) => void;
	session: string | null;
	timer: NodeJS.Timeout;
};

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T | undefined> =>
	new Promise((resolve) => {
		const t = setTimeout(() => resolve(undefined), ms);
		p.then(
			(v) => {
				clearTimeout(t);
				resolve(v);
			},
			() => {
				clearTimeout(t);
				resolve(undefined);
			},
		);
	});

export class BrowserPool {
	readonly options: BrowserPoolOptions;
	readonly #entries: BrowserEntry[] = [];
	readonly #slots: Slot[] = [];
	readonly #waiters: Waiter[] = [];
	readonly #fingerprints = new FingerprintStore();
	readonly #injector = new FingerprintInjector();
	/** Storage state (cookies, local storage) per session, restored into the session's next context. */
	readonly #storage = new Map<string, Awaited<ReturnType<BrowserContext["storageState"]>>>();
	readonly #failures: Record<string, number> = {};
	#pages = 0;
	#contextRecycles = 0;
	#browserRecycles = 0;
	#reclaimed = 0;
	#captchas = { solved: 0, unsolved: 0, skipped: 0 };
	#timer: NodeJS.Timeout | null = null;
	#closed = false;
	#renderSeq = 0;

	constructor(options: BrowserPoolOptions) {
		this.options = options;
		for (let b = 0; b < options.browsers; b++) {
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
			this.#entries.push(entry);
			for (let c = 0; c < options.contextsPerBrowser; c++) {
				this.#slots.push({
					id: this.#slots.length,
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
					reclaiming: false,
					owner: 0,
				});
			}
		}
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
		for (const w of this.#waiters.splice(0)) {
			clearTimeout(w.timer);
			w.reject(new RenderError("queue", "browser pool is closing"));
		}
		await Promise.all(this.#entries.map((e) => this.#closeBrowser(e)));
	}

	async #launch(entry: BrowserEntry): Promise<Browser> {
		if (entry.browser?.isConnected()) return entry.browser;
		if (entry.launching) return entry.launching;
		entry.marker = `--saguaro-browser=${randomUUID()}`;
		entry.launching = chromium
			.launch({
				executablePath: this.options.executablePath,
				headless: this.options.headless ?? true,
				args: [...CHROMIUM_ARGS, entry.marker],
				timeout: 60_000,
			})
			.then((browser) => {
				entry.browser = browser;
				entry.pid = findPidByMarker(entry.marker);
				entry.launchedAt = Date.now();
				entry.pages = 0;
				entry.draining = false;
				entry.generation++;
				browser.on("disconnected", () => {
					if (entry.browser === browser) entry.browser = null;
				});
				return browser;
			})
			.finally(() => {
				entry.launching = null;
			});
		return entry.launching;
	}

	async #closeBrowser(entry: BrowserEntry): Promise<void> {
		const browser = entry.browser;
		const pid = entry.pid;
		entry.browser = null;
		entry.pid = null;
		for (const slot of this.#slots) if (slot.entry === entry) await this.#dropContext(slot, false);
		if (browser) {
			const closed = await withTimeout(
				browser.close().then(() => true),
				10_000,
			);
			// A wedged browser does not answer close(): kill its process.
			if (!closed && pid) {
				try {
					process.kill(pid, "SIGKILL");
				} catch {
					// already gone
				}
			}
		}
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
		for (const slot of this.#slots) {
			const s = this.#score(slot, session);
			if (s > bestScore) {
				best = slot;
				bestScore = s;
			}
		}
		return best;
	}

	#acquireSlot(session: string | null): Promise<Slot> {
		if (this.#closed) return Promise.reject(new RenderError("queue", "browser pool is closed"));
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
					this.#failures.queue = (this.#failures.queue ?? 0) + 1;
					reject(new RenderError("queue", `no free page slot within ${this.options.queueTimeoutMs} ms`));
				}, this.options.queueTimeoutMs),
			};
			this.#waiters.push(waiter);
		});
	}

	#releaseSlot(slot: Slot): void {
		slot.busy = false;
		slot.owner = 0;
		slot.page = null;
		slot.deadline = 0;
		void this.#maybeRecycleBrowser(slot.entry).finally(() => this.#dispatch());
	}

	#dispatch(): void {
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

	/** Closes a slot's context, keeping its session's cookies, and gives its proxy lease back. */
	async #dropContext(
		slot: Slot,
		saveState: boolean,
		outcome: { ok: boolean; error?: string } = { ok: true },
	): Promise<void> {
		const context = slot.context;
		slot.context = null;
		// Closing the context closes its page.
		slot.tab = null;
		if (context) {
			if (saveState && slot.session) {
				const state = await withTimeout(context.storageState(), 5000);
				if (state) this.#remember(slot.session, state);
			}
			await withTimeout(context.close(), 10_000);
		}
		if (slot.proxy && this.options.proxies) {
			await this.options.proxies.release(slot.proxy, outcome).catch(() => undefined);
		}
		slot.proxy = null;
		slot.pages = 0;
	}

	#remember(session: string, state: Awaited<ReturnType<BrowserContext["storageState"]>>): void {
		this.#storage.delete(session);
		this.#storage.set(session, state);
		if (this.#storage.size > 1000) this.#storage.delete(this.#storage.keys().next().value as string);
	}

	/** Makes sure the slot has a live context bound to `session`. */
	async #prepare(slot: Slot, session: string, domain: string, mine: () => boolean): Promise<BrowserContext> {
		const browser = await this.#launch(slot.entry);
		if (!mine()) throw new RenderError("watchdog", "slot reclaimed while its browser launched");
		const stale = !slot.context || slot.generation !== slot.entry.generation || slot.session !== session;
		if (!stale && slot.context) return slot.context;
		if (slot.context) {
			if (slot.session !== session) this.#contextRecycles++;
			await this.#dropContext(slot, true);
		}
		let proxy: BrowserProxy | null = null;
		if (this.options.proxies) {
			try {
				proxy = await this.options.proxies.acquire({ domain, session });
			} catch (err) {
				throw new RenderError("proxy", `no proxy for session: ${(err as Error).message}`);
			}
		}
		// What fingerprint-injector's newInjectedContext does, minus the FingerprintGenerator it builds
		// on every call (~80 ms of CPU per context, unused when the fingerprint is given).
		const fingerprint = this.#fingerprints.for(session);
		const acceptLanguage = fingerprint.headers["accept-language"];
		let context: BrowserContext | null = null;
		try {
			context = await browser.newContext({
				userAgent: fingerprint.fingerprint.navigator.userAgent,
				colorScheme: "dark",
				locale: LOCALE,
				timezoneId: TIMEZONE,
				ignoreHTTPSErrors: false,
				...(proxy
					? {
							proxy: {
								server: proxy.server,
								...(proxy.username ? { username: proxy.username } : {}),
								...(proxy.password ? { password: proxy.password } : {}),
								// Chromium never proxies loopback unless told to: the sandbox lives there.
								bypass: "<-loopback>",
							},
						}
					: {}),
				...(this.#storage.has(session) ? { storageState: this.#storage.get(session) } : {}),
				viewport: {
					width: fingerprint.fingerprint.screen.width,
					height: fingerprint.fingerprint.screen.height,
				},
				...(acceptLanguage ? { extraHTTPHeaders: { "accept-language": acceptLanguage } } : {}),
			});
			await this.#injector.attachFingerprintToPlaywright(context, fingerprint);
			context.setDefaultTimeout(this.options.pageTimeoutMs);
			context.setDefaultNavigationTimeout(this.options.pageTimeoutMs);
			if (this.options.blockResources) {
				await context.route("**/*", (route: Route) =>
					BLOCKED_TYPES.has(route.request().resourceType())
						? route.abort("blockedbyclient")
						: route.continue(),
				);
			}
		} catch (err) {
			// The browser failed before the proxy carried anything: give the lease back, blaming nobody.
			if (context) await withTimeout(context.close(), 10_000);
			if (proxy && this.options.proxies)
				await this.options.proxies.release(proxy, { ok: true, unused: true }).catch(() => undefined);
			throw err;
		}
		if (!mine()) {
			// The slot was reclaimed (and may serve another render now): this context is nobody's.
			await withTimeout(context.close(), 10_000);
			if (proxy && this.options.proxies)
				await this.options.proxies.release(proxy, { ok: true, unused: true }).catch(() => undefined);
			throw new RenderError("watchdog", "slot reclaimed while its context was created");
		}
		slot.context = context;
		slot.generation = slot.entry.generation;
		slot.session = session;
		slot.proxy = proxy;
		slot.pages = 0;
		return context;
	}

	/** Renders one page within the watchdog deadline. */
	async render(params: RenderParams): Promise<RenderResult> {
		const started = Date.now();
		const session = params.session ?? null;
		const slot = await this.#acquireSlot(session);
		const owner = ++this.#renderSeq;
		slot.owner = owner;
		const deadlineMs = this.options.pageTimeoutMs * 2 + 5000;
		slot.deadline = Date.now() + deadlineMs;
		let watchdogFired = false;
		let fire: (err: Error) => void = () => {};
		const watchdog = new Promise<never>((_, reject) => {
			fire = reject;
		});
		watchdog.catch(() => undefined);
		const timer = setTimeout(() => {
			watchdogFired = true;
			fire(new RenderError("watchdog", `page stuck past ${deadlineMs} ms: reclaimed`));
		}, deadlineMs);
		const work = this.#renderIn(slot, owner, params, session ?? `slot-${slot.id}`, started);
		work.catch(() => undefined);
		try {
			const result = await Promise.race([work, watchdog]);
			this.#pages++;
			return result;
		} catch (err) {
			const kind = err instanceof RenderError ? err.kind : "navigation";
			this.#failures[kind] = (this.#failures[kind] ?? 0) + 1;
			throw err;
		} finally {
			clearTimeout(timer);
			if (watchdogFired) {
				this.#reclaimed++;
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
			if (err instanceof RenderError) throw err;
			if (mine()) await this.#dropContext(slot, false, { ok: false, error: (err as Error).message });
			throw new RenderError("crash", `browser unavailable: ${(err as Error).message}`);
		}
		if (!mine()) throw new RenderError("watchdog", "slot reclaimed while its context was prepared");
		if (params.cookies && params.cookies.length > 0) await context.addCookies(params.cookies);
		const kept = slot.tab && !slot.tab.isClosed() ? slot.tab : null;
		const page = kept ?? (await context.newPage());
		if (!mine()) {
			if (!kept) await withTimeout(page.close({ runBeforeUnload: false }), 5000);
			throw new RenderError("watchdog", "slot reclaimed while its page opened");
		}
		slot.page = page;
		slot.tab = page;
		let captcha: RenderResult["captcha"] = "none";
		let failed = true;
		try {
			// With a selector to wait for, the parsed DOM is enough; without one, wait for the page's load.
			const waitUntil = params.waitFor ? "domcontentloaded" : "load";
			let response = await page.goto(params.url, { waitUntil }).catch((err: Error) => {
				throw new RenderError(
					/Timeout/i.test(err.message)
						? "timeout"
						: /PROXY|TUNNEL|ERR_CONNECTION/i.test(err.message)
							? "proxy"
							: "navigation",
					`goto ${params.url}: ${err.message.split("\n")[0]}`,
				);
			});
			// Read the DOM as loaded: a locator with a timeout would wait that long on every page without one.
			const sitekey = await page
				.evaluate(() => document.querySelector("[data-sitekey]")?.getAttribute("data-sitekey") ?? null)
				.catch(() => null);
			if (sitekey && (!this.options.solver || params.solveCaptchas === false)) {
				this.#captchas.skipped++;
				captcha = "skipped";
			} else if (sitekey) {
				const passed = await this.#passCaptcha(page, sitekey, this.options.solver as BrowserCaptchaSolver);
				captcha = passed.ok ? "solved" : "unsolved";
				if (passed.response !== undefined) response = passed.response;
			}
			if (params.waitFor)
				await page.waitForSelector(params.waitFor, { state: "attached" }).catch(() => undefined);
			const status = response?.status() ?? 0;
			const fields = params.extract ? await this.#extract(page, params.extract) : null;
			let html: string | null = null;
			let truncated = false;
			if (!params.noHtml) {
				const full = await page.content();
				truncated = Buffer.byteLength(full) > this.options.maxHtmlBytes;
				html = truncated ? Buffer.from(full).subarray(0, this.options.maxHtmlBytes).toString("utf8") : full;
			}
			if (mine()) {
				slot.pages++;
				slot.entry.pages++;
			}
			failed = false;
			return { status, url: page.url(), html, truncated, fields, captcha, ms: Date.now() - started };
		} finally {
			if (mine()) slot.page = null;
			// A page that failed (timeout, aborted navigation) may still be busy: the next render gets a fresh one.
			// A reclaimed render's page is the reclaim's to close.
			if (failed || !mine()) {
				if (mine() && slot.tab === page) slot.tab = null;
				await withTimeout(page.close({ runBeforeUnload: false }), 5000);
			}
			if (mine() && slot.pages >= this.options.recyclePages && !slot.reclaiming) {
				this.#contextRecycles++;
				await this.#dropContext(slot, true);
			}
		}
	}

	async #passCaptcha(
		page: Page,
		sitekey: string,
		solver: BrowserCaptchaSolver,
	): Promise<{ ok: boolean; response?: Awaited<ReturnType<Page["goto"]>> }> {
		const recaptcha = await page.locator(".g-recaptcha[data-sitekey]").count();
		const type = recaptcha > 0 ? "recaptcha" : "hcaptcha";
		let token: string;
		try {
			token = await solver.solve({ type, sitekey, pageurl: page.url() });
		} catch {
			this.#captchas.unsolved++;
			return { ok: false };
		}
		const field = type === "recaptcha" ? "g-recaptcha-response" : "h-captcha-response";
		const navigation = page.waitForNavigation({ waitUntil: "load" });
		const submitted = await page.evaluate(
			({ field, token }) => {
				const widget = document.querySelector("[data-sitekey]");
				const form = widget?.closest("form") ?? document.querySelector("form");
				if (!form) return false;
				let input = form.querySelector<HTMLTextAreaElement | HTMLInputElement>(`[name="${field}"]`);
				if (!input) {
					input = document.createElement("textarea");
					input.name = field;
					form.appendChild(input);
				}
				input.value = token;
				form.submit();
				return true;
			},
			{ field, token },
		);
		if (!submitted) {
			this.#captchas.unsolved++;
			return { ok: false };
		}
		const response = await navigation.catch(() => null);
		this.#captchas.solved++;
		return { ok: true, response };
	}

	/** Reads the fields from the DOM as it is now (waiting is `waitFor`'s job), in one round trip. */
	async #extract(page: Page, extract: Record<string, string>): Promise<Record<string, string | null>> {
		return page.evaluate((selectors) => {
			const out: Record<string, string | null> = {};
			for (const [name, selector] of Object.entries(selectors)) {
				let text: string | null = null;
				try {
					text = document.querySelector(selector)?.textContent ?? null;
				} catch {
					text = null;
				}
				out[name] = text === null ? null : text.replace(/\s+/g, " ").trim().slice(0, 10_000);
			}
			return out;
		}, extract);
	}

	/** Frees a slot whose page is stuck: close the page, then the context, then kill the browser. */
	async #reclaim(slot: Slot, work: Promise<unknown>): Promise<void> {
		slot.reclaiming = true;
		try {
			const page = slot.page;
			if (page) await withTimeout(page.close({ runBeforeUnload: false }), 3000);
			const settled = await withTimeout(
				work.then(
					() => true,
					() => true,
				),
				3000,
			);
			if (!settled) {
				await withTimeout(this.#dropContext(slot, false, { ok: false, error: "stuck page" }), 10_000);
				const after = await withTimeout(
					work.then(
						() => true,
						() => true,
					),
					3000,
				);
				if (!after) await this.#replaceWedgedBrowser(slot);
			} else {
				await this.#dropContext(slot, false, { ok: false, error: "stuck page" });
			}
		} finally {
			slot.reclaiming = false;
			this.#releaseSlot(slot);
		}
	}

	/**
	 * The browser of a stuck page did not let go of it. Killing it now would abort the renders of
	 * its other slots, so it only stops taking work and is replaced once they are done (each is
	 * bounded by its own watchdog); with no other render on it, it is replaced at once.
	 */
	async #replaceWedgedBrowser(stuck: Slot): Promise<void> {
		await this.#drainAndRecycle(stuck.entry, stuck);
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
		this.#browserRecycles++;
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
				this.#reclaimed++;
				void this.#reclaim(slot, Promise.resolve());
			}
		}
		this.#dispatch();
	}

	stats(): PoolStats {
		const now = Date.now();
		const browsers = this.#entries.map((e) => ({
			index: e.index,
			pages: e.pages,
			ageS: e.browser ? Math.round((now - e.launchedAt) / 1000) : 0,
			memoryMb: Math.round(e.memoryBytes / 1048576),
			draining: e.draining,
			pid: e.browser ? e.pid : null,
		}));
		return {
			slots: this.#slots.length,
			busy: this.#slots.filter((s) => s.busy).length,
			queued: this.#waiters.length,
			pages: this.#pages,
			failures: { ...this.#failures },
			recycles: { contexts: this.#contextRecycles, browsers: this.#browserRecycles },
			reclaimed: this.#reclaimed,
			captchas: { ...this.#captchas },
			browsers,
			memoryMb: browsers.reduce((s, b) => s + b.memoryMb, 0),
			sessions: this.#storage.size,
		};
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
