/**
 * The Phoenix MLS scraper engine: search a ZIP across result pages, fetch each listing, parse it by
 * configuration, and hand whole records to a sink. Plain HTTP first; the browser only for pages whose
 * facts are filled by script. Every request goes through the host's cluster-wide policy (rate budget,
 * breaker); the site's per-IP defences are answered per session: a blocked session's proxy is
 * released with that outcome and the page is retried on another session, a captcha wall is solved
 * (within a budget) and the token posted back.
 */
import type { RenderParams, RenderResult } from "../contracts/browser-pool.ts";
import type { CaptchaSolver } from "../contracts/proxy-pool.ts";
import type { MergeVerdict } from "../contracts/store.ts";
import { DependencyUnavailableError, NotConfiguredError, PermanentError } from "../core/errors.ts";
import type { Attempt, HostPolicy } from "../core/host-policy.ts";
import type { MlsListingRecord } from "../domain/records.ts";
import { type CaptchaForm, classifyPage, type PageVerdict } from "./blocks.ts";
import type { MlsFieldConfig } from "./fields.ts";
import { type FetchedPage, fetchPage } from "./http-fetcher.ts";
import { type FieldValue, parseListingPage, parseSearchPage, type SearchCard } from "./parser.ts";
import { newSessionId, type ProxyProvider, type Session, SessionPool } from "./session-pool.ts";

export type { ProxyProvider } from "./session-pool.ts";

/** A render as the scraper asks for it: browser-pool's params with the session, site and budget set. */
export type RenderRequest = Required<
	Pick<RenderParams, "url" | "session" | "domain" | "cookies" | "solveCaptchas">
>;

/** browser-pool's render result, its HTML always there (the scraper never asks for noHtml). */
export type RenderedPage = RenderResult & { html: string };

export interface RendererPort {
	render(req: RenderRequest): Promise<RenderedPage>;
}

export interface ListingSink {
	save(record: MlsListingRecord, extra: Record<string, FieldValue>): Promise<MergeVerdict>;
	/** True when the listing was fetched recently enough not to fetch it again (optional). */
	isFresh?(mlsId: string): Promise<boolean>;
}

export interface ScraperOptions {
	baseUrl: string;
	fields: MlsFieldConfig;
	policy: HostPolicy;
	/** Null = direct connections (a site that admits them, or a test). */
	proxies: ProxyProvider | null;
	solver: CaptchaSolver | null;
	renderer: RendererPort | null;
	requestTimeoutMs: number;
	maxPages: number;
	concurrency: number;
	/** Captcha solves one collectZip may spend. */
	captchaBudget: number;
	onEvent?: (e: ScraperEvent) => void;
}

export type ScraperEvent =
	| { type: "page"; via: "http" | "browser"; kind: "search" | "listing"; verdict: PageVerdict["kind"] }
	| { type: "captcha"; solved: boolean; reason?: string }
	| { type: "listing"; ok: boolean; reason?: string };

/** A page that cannot be read (parse failure, needs a browser there is not): 422 MLS_PAGE_FAILED. */
export class MlsPageError extends PermanentError {
	readonly reason: string;
	constructor(url: string, reason: string) {
		super(`${url}: ${reason}`, { type: "MLS_PAGE_FAILED", data: { reason } });
		this.reason = reason;
	}
}

export interface ListingResult {
	record: MlsListingRecord;
	extra: Record<string, FieldValue>;
	via: "http" | "browser";
}

export interface CollectResult {
	zip: string;
	listings: number;
	new: number;
	updated: number;
	unchanged: number;
	/** Listings fetched recently (`ListingSink.isFresh`), not fetched again; counted unchanged too. */
	fresh: number;
	requests: number;
	failures: number;
	searchPages: number;
	browserPages: number;
	captchasSolved: number;
	failed: { mlsId: string; reason: string }[];
}

/** Counts for one collect (a captcha budget and request tally per ZIP). */
interface RunBudget {
	captchasLeft: number;
	captchasSolved: number;
	requests: number;
	browserPages: number;
}

export class MlsScraper {
	readonly options: ScraperOptions;
	readonly domain: string;
	readonly #sessions: SessionPool;
	/** Proxy session the browser renders on; replaced when it meets a defence. */
	#renderSession = newSessionId("mls-render");

	constructor(options: ScraperOptions) {
		this.options = options;
		this.domain = new URL(options.baseUrl).hostname;
		this.#sessions = new SessionPool(options.proxies, this.domain);
	}

	#emit(e: ScraperEvent) {
		this.options.onEvent?.(e);
	}

	async close(): Promise<void> {
		await this.#sessions.close();
	}

	/** Solves the wall and posts the token; returns the page the site answers with, or null. */
	async #passCaptcha(
		s: Session,
		form: CaptchaForm,
		pageUrl: string,
		budget: RunBudget,
		signal?: AbortSignal,
	): Promise<FetchedPage | null> {
		if (!this.options.solver || budget.captchasLeft <= 0) {
			this.#emit({ type: "captcha", solved: false, reason: "no solving budget" });
			return null;
		}
		budget.captchasLeft--;
		let token: string;
		try {
			token = await this.options.solver.solve({ type: form.kind, sitekey: form.sitekey, pageurl: pageUrl });
		} catch (err) {
			this.#emit({ type: "captcha", solved: false, reason: (err as Error).message });
			return null;
		}
		budget.captchasSolved++;
		budget.requests++;
		const page = await fetchPage(s, form.action, {
			method: "POST",
			form: { ...form.fields, [form.tokenField]: token },
			timeoutMs: this.options.requestTimeoutMs,
			...(signal ? { signal } : {}),
		});
		this.#emit({ type: "captcha", solved: true });
		return page;
	}

	/**
	 * One attempt at a page over HTTP on some session. Per-IP defences rotate the session and ask
	 * for an immediate retry (not a host failure); bans, proxy and site failures count as transient.
	 */
	async #httpAttempt(
		url: string,
		kind: "search" | "listing",
		budget: RunBudget,
		signal?: AbortSignal,
	): Promise<Attempt<FetchedPage>> {
		const s = this.#sessions.take();
		try {
			await this.#sessions.lease(s);
		} catch (err) {
			this.#sessions.giveBack(s);
			// No proxy configured at all: permanent, passed through the host policy untouched.
			if (err instanceof NotConfiguredError) throw err;
			return { kind: "transient", reason: `no proxy: ${(err as Error).message}` };
		}
		const started = Date.now();
		let page: FetchedPage;
		try {
			budget.requests++;
			page = await fetchPage(s, url, {
				timeoutMs: this.options.requestTimeoutMs,
				...(signal ? { signal } : {}),
			});
		} catch (err) {
			await this.#sessions.unlease(s, { ok: false, error: (err as Error).message });
			await this.#sessions.discard(s);
			return { kind: "transient", reason: `request failed: ${(err as Error).message}` };
		}
		let verdict = classifyPage(page.status, page.html, page.headers, page.url, this.options.fields);
		if (verdict.kind === "captcha" && verdict.form) {
			try {
				const after = await this.#passCaptcha(s, verdict.form, url, budget, signal);
				if (after) {
					page = after;
					verdict = classifyPage(page.status, page.html, page.headers, page.url, this.options.fields);
				}
			} catch (err) {
				verdict = {
					kind: "upstream-error",
					status: 0,
					reason: `captcha post failed: ${(err as Error).message}`,
				};
			}
		}
		this.#emit({ type: "page", via: "http", kind, verdict: verdict.kind });
		const latencyMs = Date.now() - started;
		switch (verdict.kind) {
			case "ok":
				await this.#sessions.unlease(s, { ok: true, status: page.status, latencyMs });
				this.#sessions.giveBack(s);
				return { kind: "ok", value: page };
			case "not-found":
				await this.#sessions.unlease(s, { ok: true, status: page.status, latencyMs });
				this.#sessions.giveBack(s);
				return { kind: "failed", reason: "listing not found (404)" };
			case "session-expired":
				// The site forgot the session: start a fresh one on the same proxy.
				s.cookies.clear();
				await this.#sessions.unlease(s, { ok: true, status: page.status, latencyMs });
				this.#sessions.giveBack(s);
				return { kind: "rotate", reason: "session expired" };
			case "rate-limited":
			case "captcha":
				await this.#sessions.unlease(s, { ok: true, status: page.status, blocked: true, latencyMs });
				await this.#sessions.discard(s);
				return { kind: "rotate", reason: `${verdict.kind} on this proxy: rotated` };
			case "banned":
				await this.#sessions.unlease(s, { ok: true, status: page.status, blocked: true, latencyMs });
				await this.#sessions.discard(s);
				return { kind: "transient", reason: "access denied on this proxy: rotated" };
			case "proxy-error":
				await this.#sessions.unlease(s, {
					ok: false,
					status: verdict.status,
					error: `proxy answered ${verdict.status}`,
				});
				await this.#sessions.discard(s);
				return { kind: "transient", reason: `proxy error ${verdict.status}` };
			case "upstream-error":
				await this.#sessions.unlease(s, { ok: true, status: page.status, latencyMs });
				this.#sessions.giveBack(s);
				return { kind: "transient", reason: verdict.reason };
		}
	}

	async #fetch(
		url: string,
		kind: "search" | "listing",
		budget: RunBudget,
		signal?: AbortSignal,
	): Promise<FetchedPage> {
		return this.options.policy.run(
			`${kind} ${new URL(url).pathname}`,
			() => this.#httpAttempt(url, kind, budget, signal),
			signal,
		);
	}

	/** One attempt at a page in a browser, on a session of its own (context bound to its proxy). */
	async #renderAttempt(
		url: string,
		cookies: Map<string, string>,
		budget: RunBudget,
	): Promise<Attempt<RenderedPage>> {
		const renderer = this.options.renderer;
		if (!renderer) return { kind: "failed", reason: "page needs script and no browser is available" };
		const session = this.#renderSession;
		// A solve is reserved before the render, so renders in flight together never overspend the budget.
		const solveCaptchas = this.options.solver !== null && budget.captchasLeft > 0;
		if (solveCaptchas) budget.captchasLeft--;
		let result: RenderedPage;
		try {
			budget.requests++;
			budget.browserPages++;
			result = await renderer.render({
				url,
				session,
				domain: this.domain,
				cookies: [...cookies].map(([name, value]) => ({ name, value, url: this.options.baseUrl })),
				solveCaptchas,
			});
		} catch (err) {
			if (solveCaptchas) budget.captchasLeft++;
			// No browser on this cluster (Chromium missing): this page fails, clearly, with no retry.
			if (err instanceof NotConfiguredError) return { kind: "failed", reason: err.message };
			return { kind: "transient", reason: `render failed: ${(err as Error).message}` };
		}
		if (result.captcha === "solved" || result.captcha === "unsolved") {
			if (result.captcha === "solved") budget.captchasSolved++;
			this.#emit({ type: "captcha", solved: result.captcha === "solved", reason: "in browser" });
		} else {
			if (solveCaptchas) budget.captchasLeft++;
			if (result.captcha === "skipped")
				this.#emit({ type: "captcha", solved: false, reason: "no solving budget" });
		}
		const verdict = classifyPage(result.status, result.html, {}, result.url, this.options.fields);
		this.#emit({ type: "page", via: "browser", kind: "listing", verdict: verdict.kind });
		// A browser page is serialized from the DOM, so "cut short" does not apply to it.
		if (verdict.kind === "ok" || (verdict.kind === "upstream-error" && result.status === 200)) {
			return { kind: "ok", value: result };
		}
		if (verdict.kind === "not-found") return { kind: "failed", reason: "listing not found (404)" };
		// The browser's proxy session met a defence or failed: the next attempt uses another one.
		this.#renderSession = newSessionId("mls-render");
		if (verdict.kind === "rate-limited" || verdict.kind === "captcha" || verdict.kind === "session-expired") {
			return { kind: "rotate", reason: `${verdict.kind} in browser: rotated` };
		}
		return { kind: "transient", reason: `browser page: ${verdict.kind}` };
	}

	/** Every listing card of a ZIP, across result pages. */
	async searchZip(
		zip: string,
		budget: RunBudget = newBudget(this.options.captchaBudget),
		signal?: AbortSignal,
	) {
		const cards = new Map<string, SearchCard>();
		let url: string | null = `${this.options.baseUrl}/simple-search/?q=${encodeURIComponent(zip)}&page=1`;
		let pages = 0;
		while (url && pages < this.options.maxPages) {
			const page = await this.#fetch(url, "search", budget, signal);
			pages++;
			const parsed = parseSearchPage(page.html, page.url, this.options.fields);
			for (const card of parsed.cards) if (!cards.has(card.mlsId)) cards.set(card.mlsId, card);
			url = parsed.nextUrl;
		}
		return { zip, cards: [...cards.values()], pages, complete: url === null };
	}

	/** One listing page: HTTP first, the browser when its facts need script. */
	async listing(
		url: string,
		budget: RunBudget = newBudget(this.options.captchaBudget),
		signal?: AbortSignal,
	): Promise<ListingResult> {
		const page = await this.#fetch(url, "listing", budget, signal);
		const parsed = parseListingPage(page.html, page.url, this.options.fields);
		if (parsed.ok) return { record: parsed.record, extra: parsed.extra, via: "http" };
		if (!parsed.needsScript) throw new MlsPageError(url, `parse failure: ${parsed.reason}`);
		if (!this.options.renderer) throw new MlsPageError(url, "page needs script and no browser is available");
		const session = this.#sessions.latestIdle();
		const rendered = await this.options.policy.run(
			`render ${new URL(url).pathname}`,
			() => this.#renderAttempt(page.url, session?.cookies ?? new Map(), budget),
			signal,
		);
		const again = parseListingPage(rendered.html, rendered.url, this.options.fields);
		if (again.ok) return { record: again.record, extra: again.extra, via: "browser" };
		throw new MlsPageError(url, `parse failure after rendering: ${again.reason}`);
	}

	/**
	 * Every listing of a ZIP into the sink. Failed listings are counted and named, never half-stored.
	 * `onProgress` hears the counts so far (and the listings found) after the search and each listing.
	 */
	async collectZip(
		zip: string,
		sink: ListingSink,
		signal?: AbortSignal,
		onProgress?: (soFar: CollectResult, expectListings: number) => void,
	): Promise<CollectResult> {
		const budget = newBudget(this.options.captchaBudget);
		const search = await this.searchZip(zip, budget, signal);
		const result: CollectResult = {
			zip,
			listings: 0,
			new: 0,
			updated: 0,
			unchanged: 0,
			fresh: 0,
			requests: 0,
			failures: 0,
			searchPages: search.pages,
			browserPages: 0,
			captchasSolved: 0,
			failed: [],
		};
		const queue = [...search.cards];
		const progress = () => onProgress?.({ ...result, requests: budget.requests }, search.cards.length);
		progress();
		const worker = async () => {
			for (let card = queue.shift(); card; card = queue.shift()) {
				signal?.throwIfAborted();
				try {
					if (await sink.isFresh?.(card.mlsId)) {
						result.listings++;
						result.unchanged++;
						result.fresh++;
						continue;
					}
					const got = await this.listing(card.url, budget, signal);
					const saved = await sink.save(got.record, got.extra);
					result.listings++;
					result[saved]++;
					this.#emit({ type: "listing", ok: true });
				} catch (err) {
					// Cancelled, the store is away, or no proxy is configured: the whole run stops.
					if (signal?.aborted) throw signal.reason;
					if (err instanceof DependencyUnavailableError || err instanceof NotConfiguredError) throw err;
					result.failures++;
					const reason = err instanceof MlsPageError ? err.reason : (err as Error).message;
					if (result.failed.length < 100) result.failed.push({ mlsId: card.mlsId, reason });
					this.#emit({ type: "listing", ok: false, reason });
				}
				progress();
			}
		};
		await Promise.all(Array.from({ length: Math.min(this.options.concurrency, queue.length) }, worker));
		result.requests = budget.requests;
		result.browserPages = budget.browserPages;
		result.captchasSolved = budget.captchasSolved;
		return result;
	}
}

export function newBudget(captchas: number): RunBudget {
	return { captchasLeft: captchas, captchasSolved: 0, requests: 0, browserPages: 0 };
}
