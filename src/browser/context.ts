/**
 * A new browser context for one proxy session: its fingerprint (user agent, screen, headers and the
 * injected script), its proxy, its saved storage state, page timeouts and resource blocking.
 */
import { FingerprintInjector } from "fingerprint-injector";
import type { Browser, BrowserContext, Route } from "playwright-core";
import type { StorageState } from "./cookies.ts";
import { FingerprintStore, LOCALE, TIMEZONE } from "./fingerprints.ts";
import { type BrowserProxy, withTimeout } from "./types.ts";

const BLOCKED_TYPES = new Set(["image", "font", "media"]);

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
				await context.route("**/*", (route: Route) =>
					BLOCKED_TYPES.has(route.request().resourceType())
						? route.abort("blockedbyclient")
						: route.continue(),
				);
			}
			return context;
		} catch (err) {
			if (context) await withTimeout(context.close(), 10_000);
			throw err;
		}
	}
}
