/**
 * The browser pool's public shapes: its options, a render's params and result, the ports it takes
 * (proxy provider, captcha solver), its failure kinds and its stats. What crosses the bus (render's
 * params and result, the stats, the captcha solver) is declared in src/contracts.
 */
import type { CaptchaSolver, LeaseOutcome } from "../contracts/proxy-pool.ts";

export type { PoolStats, RenderParams, RenderResult } from "../contracts/browser-pool.ts";

export interface BrowserProxy {
	leaseId: string;
	server: string;
	username?: string;
	password?: string;
}

export interface BrowserProxyProvider {
	acquire(req: { domain: string; session: string }): Promise<BrowserProxy>;
	release(proxy: BrowserProxy, outcome: LeaseOutcome): Promise<void>;
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
	solver: CaptchaSolver | null;
	/**
	 * Renders one kept page serves at most before it is closed and the slot's next render opens a
	 * fresh one (its renderer process with it). A page navigated render after render saves opening
	 * one (~25% of the CPU of a small page), but its renderer's heap grows with the pages it has
	 * shown (bench:mls, 4 slots, renderers' peak PSS: ~55 MB each at 10 or 50 renders a page, ~37 at
	 * 3, ~29 at 1, where Crawlee's fresh pages are 23-25; pages/s about 2/3 at 1). Default 3.
	 * While a browser's measured memory is above half of `maxBrowserBytes`, its pages are not kept
	 * at all (a fresh page, and a fresh small renderer, every render): pages are reused only while
	 * memory allows.
	 */
	pageReuse?: number;
	/** Chromium switches added to CHROMIUM_ARGS; default LEAN_ARGS (launch.ts). */
	chromiumArgs?: readonly string[];
	/** How often the watchdog looks at slots and browser memory. */
	watchdogIntervalMs?: number;
	headless?: boolean;
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

/** `p`'s value, or undefined once `ms` have passed or when it fails (closing things that may hang). */
export const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T | undefined> =>
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
