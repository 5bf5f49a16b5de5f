/**
 * A new browser context for one proxy session: its fingerprint (user agent, screen, headers and the
 * injected script), its proxy, its saved storage state, page timeouts; and its pages, with images,
 * fonts and media blocked.
 *
 * Blocking is done in the browser, not through Playwright's route(): a route pauses every request
 * of the page (the document too) until Node answers it over the protocol, and Playwright turns the
 * HTTP cache off while any route is set. Here each page asks Chromium's Fetch domain to pause only
 * requests of the blocked resource types, and fails them at once: documents, scripts and styles
 * never wait for Node, and the cache stays on.
 */
import { FingerprintInjector } from "fingerprint-injector";
import type { Browser, BrowserContext, Page } from "playwright-core";
import type { StorageState } from "./cookies.ts";
import { FingerprintStore, LOCALE, TIMEZONE } from "./fingerprints.ts";
import { type BrowserProxy, withTimeout } from "./types.ts";

/** CDP resource types a page never loads when blocking is on (Playwright's image, font, media). */
const BLOCKED_TYPES = ["Image", "Font", "Media"] as const;

/** Has Chromium fail `page`'s image, font and media requests itself (see the file's note). */
export async function blockResources(page: Page): Promise<void> {
	const cdp = await page.context().newCDPSession(page);
	cdp.on("Fetch.requestPaused", (event) => {
		cdp
			.send("Fetch.failRequest", { requestId: event.requestId, errorReason: "BlockedByClient" })
			.catch(() => undefined);
	});
	await cdp.send("Fetch.enable", {
		patterns: BLOCKED_TYPES.map((resourceType) => ({
			urlPattern: "*",
			resourceType,
			requestStage: "Request" as const,
		})),
	});
}

export class ContextFactory {
	readonly #fingerprints = new FingerprintStore();
	readonly #injector = new FingerprintInjector();
	readonly #pageTimeoutMs: number;
	readonly #blockResources: boolean;

	constructor(options: { pageTimeoutMs: number; blockResources: boolean }) {
		this.#pageTimeoutMs = options.pageTimeoutMs;
		this.#blockResources = options.blockResources;
	}

	/**
	 * What fingerprint-injector's newInjectedContext does, minus the FingerprintGenerator it builds
	 * on every call (~80 ms of CPU per context, unused when the fingerprint is given). A context that
	 * fails half-way is closed before the error is thrown.
	 */
	async open(
		browser: Browser,
		session: string,
		proxy: BrowserProxy | null,
		storageState: StorageState | undefined,
	): Promise<BrowserContext> {
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
				...(storageState ? { storageState } : {}),
				viewport: {
					width: fingerprint.fingerprint.screen.width,
					height: fingerprint.fingerprint.screen.height,
				},
				...(acceptLanguage ? { extraHTTPHeaders: { "accept-language": acceptLanguage } } : {}),
			});
			await this.#injector.attachFingerprintToPlaywright(context, fingerprint);
			context.setDefaultTimeout(this.#pageTimeoutMs);
			context.setDefaultNavigationTimeout(this.#pageTimeoutMs);
			if (this.#blockResources) {
				// Pages the site opens (popups, which have an opener) block too; the pool's own pages
				// are set up by newPage before they load anything.
				context.on("page", (page) => {
					void page
						.opener()
						.then((opener) => (opener ? blockResources(page) : undefined))
						.catch(() => undefined);
				});
			}
			return context;
		} catch (err) {
			if (context) await withTimeout(context.close(), 10_000);
			throw err;
		}
	}

	/** A new page of `context`, blocking set up before it loads anything. */
	async newPage(context: BrowserContext): Promise<Page> {
		const page = await context.newPage();
		if (this.#blockResources) {
			try {
				await blockResources(page);
			} catch (err) {
				await withTimeout(page.close({ runBeforeUnload: false }), 5000);
				throw err;
			}
		}
		return page;
	}
}
