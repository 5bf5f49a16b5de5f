/**
 * Plain-HTTP page fetches for the MLS scraper (undici): through a session's proxy when it has one,
 * with the session's cookies, following redirects by hand so every hop's Set-Cookie is kept, and
 * with the body capped so a runaway answer cannot exhaust memory.
 */
import { type Dispatcher, ProxyAgent, request } from "undici";

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
		// CONNECT tunnels also for http:// targets (undici's default), so the proxy sees the session.
		dispatcher: proxyUrl ? new ProxyAgent({ uri: proxyUrl }) : null,
	};
}

export async function closeHttpSession(session: HttpSession): Promise<void> {
	const d = session.dispatcher;
	session.dispatcher = null;
	if (d) await d.close().catch(() => undefined);
}

/** Applies Set-Cookie headers to the jar (name=value only; a Max-Age=0 or empty value deletes). */
export function storeCookies(jar: Map<string, string>, setCookie: string | string[] | undefined): void {
	if (!setCookie) return;
	for (const line of Array.isArray(setCookie) ? setCookie : [setCookie]) {
		const [pair, ...attrs] = line.split(";");
		const eq = pair?.indexOf("=") ?? -1;
		if (!pair || eq <= 0) continue;
		const name = pair.slice(0, eq).trim();
		const value = pair.slice(eq + 1).trim();
		const expired = attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a));
		if (expired || value === "") jar.delete(name);
		else jar.set(name, value);
	}
}

export function cookieHeader(jar: Map<string, string>): string {
	return [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
}

export async function fetchPage(session: HttpSession, url: string, opts: FetchOptions): Promise<FetchedPage> {
	const maxBytes = opts.maxBytes ?? 4 * 1024 * 1024;
	const signal = opts.signal
		? AbortSignal.any([opts.signal, AbortSignal.timeout(opts.timeoutMs)])
		: AbortSignal.timeout(opts.timeoutMs);
	let current = url;
	let method = opts.method ?? "GET";
	let body = opts.form ? new URLSearchParams(opts.form).toString() : undefined;
	for (let hop = 0; ; hop++) {
		const headers: Record<string, string> = {
			"user-agent": opts.userAgent ?? DEFAULT_USER_AGENT,
			accept: "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8",
			"accept-language": "en-US,en;q=0.9",
		};
		const cookie = cookieHeader(session.cookies);
		if (cookie) headers.cookie = cookie;
		if (body !== undefined) headers["content-type"] = "application/x-www-form-urlencoded";
		const res = await request(current, {
			method,
			headers,
			body,
			signal,
			...(session.dispatcher ? { dispatcher: session.dispatcher } : {}),
		});
		storeCookies(session.cookies, res.headers["set-cookie"]);
		const location = res.headers.location;
		if (res.statusCode >= 300 && res.statusCode < 400 && typeof location === "string") {
			await res.body.dump();
			if (hop >= MAX_REDIRECTS) throw new Error(`too many redirects from ${url}`);
			current = new URL(location, current).toString();
			// 303 (and, as browsers do, 301/302 after a POST) continue as GET.
			if (res.statusCode !== 307 && res.statusCode !== 308) {
				method = "GET";
				body = undefined;
			}
			continue;
		}
		const chunks: Buffer[] = [];
		let size = 0;
		for await (const chunk of res.body) {
			size += (chunk as Buffer).length;
			if (size > maxBytes) {
				res.body.destroy();
				throw new Error(`page larger than ${maxBytes} bytes: ${current}`);
			}
			chunks.push(chunk as Buffer);
		}
		return {
			status: res.statusCode,
			url: current,
			headers: res.headers as FetchedPage["headers"],
			html: Buffer.concat(chunks).toString("utf8"),
		};
	}
}
