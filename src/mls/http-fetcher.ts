/**
 * Plain-HTTP page fetches for the MLS scraper, on the one HTTP client (src/core/http.ts): through a
 * session's proxy when it has one, with the session's cookies, following redirects by hand so every
 * hop's Set-Cookie is kept, and with the body capped so a runaway answer cannot exhaust memory.
 */
import { type Dispatcher, httpRequest, proxyDispatcher } from "../core/http.ts";

export interface HttpSession {
	id: string;
	/** Proxy URL with credentials (for connecting only, never logged); null = direct. */
	proxyUrl: string | null;
	cookies: Map<string, string>;
	dispatcher: Dispatcher | null;
}

export interface FetchedPage {
	status: number;
	/** URL of the last hop. */
	url: string;
	headers: Record<string, string | string[] | undefined>;
	html: string;
}

export interface FetchOptions {
	method?: "GET" | "POST";
	/** Form fields, sent urlencoded with POST. */
	form?: Record<string, string>;
	timeoutMs: number;
	maxBytes?: number;
	userAgent?: string;
	signal?: AbortSignal;
}

const MAX_REDIRECTS = 5;
export const DEFAULT_USER_AGENT =
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/147.0.0.0 Safari/537.36";

export function newHttpSession(id: string, proxyUrl: string | null): HttpSession {
	return {
		id,
		proxyUrl,
		cookies: new Map(),
		dispatcher: proxyUrl ? proxyDispatcher(stickyGatewayUrl(proxyUrl, id)) : null,
	};
}

/**
 * Page fetches ask the gateway for the session's sticky proxy (the username is the session key, the
 * same key the session's lease was taken with), not for the lease's exact proxy: a lease URL's
 * username alone (`lease.<id>`) pins every request to one proxy with no failover, and a flaky one
 * then failed a listing after all its attempts (seen in CI: "proxy error 599 (after 36 attempts)").
 * Not plain rotation either: a captcha token must be posted from the address that met the wall, or
 * the site refuses it and the paid solve is lost. A URL with a password keeps its credentials.
 */
function stickyGatewayUrl(proxyUrl: string, session: string): string {
	const u = new URL(proxyUrl);
	if (u.password || !u.username) return proxyUrl;
	u.username = encodeURIComponent(session);
	return u.toString();
}

export async function closeHttpSession(session: HttpSession): Promise<void> {
	const d = session.dispatcher;
	session.dispatcher = null;
	if (d) await d.close().catch(() => undefined);
}

export async function fetchPage(session: HttpSession, url: string, opts: FetchOptions): Promise<FetchedPage> {
	const res = await httpRequest(url, {
		method: opts.method ?? "GET",
		headers: {
			"user-agent": opts.userAgent ?? DEFAULT_USER_AGENT,
			accept: "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8",
			"accept-language": "en-US,en;q=0.9",
			...(opts.form ? { "content-type": "application/x-www-form-urlencoded" } : {}),
		},
		...(opts.form ? { body: new URLSearchParams(opts.form).toString() } : {}),
		timeoutMs: opts.timeoutMs,
		...(opts.signal ? { signal: opts.signal } : {}),
		dispatcher: session.dispatcher,
		cookies: session.cookies,
		maxRedirects: MAX_REDIRECTS,
		maxBytes: opts.maxBytes ?? 4 * 1024 * 1024,
	});
	return { status: res.status, url: res.url, headers: res.headers, html: res.body };
}
