/**
 * The browser pool's public shapes: its options, a render's params and result, the ports it takes
 * (proxy provider, captcha solver), its failure kinds and its stats.
 */

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
	/**
	 * Renders one kept page serves at most before it is closed and the slot's next render opens a
	 * fresh one (its renderer process with it). A page navigated render after render saves opening
	 * one (~25% of the CPU of a small page), but its renderer's heap grows with the pages it has
	 * shown. Default 50. While a browser's measured memory is above half of `maxBrowserBytes`, its
	 * pages are not kept at all (a fresh page, and a fresh small renderer, every render): pages are
	 * reused only while memory allows.
	 */
	pageReuse?: number;
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
