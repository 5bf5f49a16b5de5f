/**
 * The one HTTP client of every outbound call (undici): `httpRequest` — through a proxy or direct,
 * with a cookie jar, redirects followed by hand (so every hop's Set-Cookie is kept), a body cap and
 * one time limit for the whole exchange — and the pieces of classifying an answer that every
 * client shares (Assessor REST and GIS, the LLM endpoint, the MLS site's Retry-After).
 * Classification turns an answer into a HostPolicy `Attempt` plus an outcome tag for metrics.
 *
 * Not through here: the proxy gateway (src/proxy/gateway.ts), which is a proxy server relaying
 * other clients' requests, and Chromium's own traffic (src/browser).
 */
import type { IncomingHttpHeaders } from "node:http";
import { type Dispatcher, ProxyAgent, request } from "undici";
import { redactString } from "../utils/redact.ts";
import type { Attempt } from "./host-policy.ts";

export type { Dispatcher };

export interface HttpCallOptions {
	method?: "GET" | "POST";
	headers?: Record<string, string>;
	body?: string;
	/** Time limit of the whole exchange, every redirect and the body included. */
	timeoutMs: number;
	signal?: AbortSignal;
	/** Connect through this (`proxyDispatcher(url)`); default: direct. */
	dispatcher?: Dispatcher | null;
	/** Cookie jar: its cookies are sent, and every hop's Set-Cookie is kept in it. */
	cookies?: Map<string, string>;
	/** Redirects followed (by hand; `authorization` is not sent to another origin); 0 answers the 3xx itself. Default 5. */
	maxRedirects?: number;
	/** Most body bytes read: a larger body fails the exchange. Default 8 MB. */
	maxBytes?: number;
	/** Discard the body (at most 64 KB of it is drained): a health check needs the status only. */
	discardBody?: boolean;
	/** Keep the body as bytes only (`bytes`; `body` stays ""): an image is not text. */
	binary?: boolean;
}

export interface HttpResponse {
	status: number;
	/** The reason phrase: the Assessor puts its error messages there. */
	statusText: string;
	/** URL of the last hop. */
	url: string;
	headers: IncomingHttpHeaders;
	/** The body as UTF-8 text ("" with `discardBody` or `binary`). */
	body: string;
	/** The body's bytes (empty with `discardBody`). */
	bytes: Buffer;
}

/** The body passed the `maxBytes` cap (declared by Content-Length, or while read): not read further. */
export class BodyTooLargeError extends Error {
	readonly status: number;
	readonly maxBytes: number;
	/** The declared length, when the answer declared one over the cap. */
	readonly declared: number | null;
	constructor(url: string, status: number, maxBytes: number, declared: number | null) {
		super(
			declared === null
				? `answer larger than ${maxBytes} bytes: ${url}`
				: `answer is ${declared} bytes, over ${maxBytes}: ${url}`,
		);
		this.name = "BodyTooLargeError";
		this.status = status;
		this.maxBytes = maxBytes;
		this.declared = declared;
	}
}

const DEFAULT_MAX_BYTES = 8 * 1024 * 1024;
const DEFAULT_MAX_REDIRECTS = 5;

/**
 * A proxy to connect through (CONNECT tunnels also for http:// targets, so the proxy sees the session).
 * The URL's credentials go as an explicit Proxy-Authorization: undici sends URL credentials only with a
 * password, and the gateway's lease URLs carry a username alone (`lease.<id>`, which pins the lease).
 */
export function proxyDispatcher(proxyUrl: string, opts: { connectTimeoutMs?: number } = {}): Dispatcher {
	const u = new URL(proxyUrl);
	const user = decodeURIComponent(u.username);
	const pass = decodeURIComponent(u.password);
	u.username = "";
	u.password = "";
	return new ProxyAgent({
		uri: user ? u.toString() : proxyUrl,
		...(user ? { token: `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}` } : {}),
		...(opts.connectTimeoutMs ? { connectTimeout: opts.connectTimeoutMs } : {}),
	});
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

/**
 * One exchange. Throws for network faults, aborts and timeouts (the signal's reason: a
 * TimeoutError when the time limit passed), too many redirects and a body over the cap; any HTTP
 * status is an answer.
 */
export async function httpRequest(url: string, opts: HttpCallOptions): Promise<HttpResponse> {
	const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
	const maxRedirects = opts.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
	const timeout = AbortSignal.timeout(opts.timeoutMs);
	const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
	let current = url;
	let method = opts.method ?? "GET";
	let body = opts.body;
	for (let hop = 0; ; hop++) {
		const headers: Record<string, string> = { ...opts.headers };
		if (body === undefined) delete headers["content-type"];
		// As fetch does: credentials never follow a redirect to another origin.
		if (new URL(current).origin !== new URL(url).origin) delete headers.authorization;
		const cookie = opts.cookies ? cookieHeader(opts.cookies) : "";
		if (cookie) headers.cookie = cookie;
		const res = await request(current, {
			method,
			headers,
			body,
			signal,
			headersTimeout: opts.timeoutMs,
			bodyTimeout: opts.timeoutMs,
			...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
		});
		if (opts.cookies) storeCookies(opts.cookies, res.headers["set-cookie"]);
		const location = res.headers.location;
		if (maxRedirects > 0 && res.statusCode >= 300 && res.statusCode < 400 && typeof location === "string") {
			await res.body.dump();
			if (hop >= maxRedirects) throw new Error(`too many redirects from ${url}`);
			current = new URL(location, current).toString();
			// 303 (and, as browsers do, 301/302 after a POST) continue as GET.
			if (res.statusCode !== 307 && res.statusCode !== 308) {
				method = "GET";
				body = undefined;
			}
			continue;
		}
		const answer = { status: res.statusCode, statusText: res.statusText, url: current, headers: res.headers };
		if (opts.discardBody) {
			await res.body.dump({ limit: 64 * 1024 });
			return { ...answer, body: "", bytes: Buffer.alloc(0) };
		}
		const declared = Number(res.headers["content-length"] ?? Number.NaN);
		if (Number.isFinite(declared) && declared > maxBytes) {
			res.body.destroy();
			throw new BodyTooLargeError(current, res.statusCode, maxBytes, declared);
		}
		const chunks: Buffer[] = [];
		let size = 0;
		for await (const chunk of res.body) {
			size += (chunk as Buffer).length;
			if (size > maxBytes) {
				res.body.destroy();
				throw new BodyTooLargeError(current, res.statusCode, maxBytes, null);
			}
			chunks.push(chunk as Buffer);
		}
		const bytes = Buffer.concat(chunks);
		return { ...answer, body: opts.binary ? "" : bytes.toString("utf8"), bytes };
	}
}

export interface HttpAnswer {
	status: number;
	/** The reason phrase: the Assessor puts its error messages there. */
	statusText: string;
	contentType: string;
	body: string;
	retryAfter: string | null;
}

/** Outcome tags (metrics label values). */
export type RequestOutcome =
	| "ok"
	| "not_found"
	| "rate_limited"
	| "server_error"
	| "client_error"
	| "unauthorized"
	| "html"
	| "malformed"
	| "bad_shape"
	| "gis_error"
	| "network";

export interface Classified<T> {
	attempt: Attempt<T>;
	outcome: RequestOutcome;
}

/** When no Retry-After comes with a 429, wait this long. */
export const DEFAULT_RETRY_AFTER_MS = 30_000;

export interface HttpRequest {
	method?: "GET" | "POST";
	headers?: Record<string, string>;
	body?: string;
}

/** One exchange asking for JSON, its body read in full; throws only for network faults and aborts. */
export async function httpExchange(
	url: string,
	req: HttpRequest,
	timeoutMs: number,
	signal?: AbortSignal,
): Promise<HttpAnswer> {
	// The body is read in full under the same time limit: a stalled body is a failed exchange.
	const res = await httpRequest(url, {
		method: req.method ?? "GET",
		headers: { accept: "application/json", ...req.headers },
		...(req.body !== undefined ? { body: req.body } : {}),
		timeoutMs,
		...(signal ? { signal } : {}),
	});
	return {
		status: res.status,
		statusText: res.statusText,
		contentType: headerValue(res.headers["content-type"]) ?? "",
		body: res.body,
		retryAfter: headerValue(res.headers["retry-after"]),
	};
}

/**
 * One exchange as an attempt of a HostPolicy run: its answer classified, or a network fault
 * (refused, reset, timed out) as a transient "network" outcome. A cancelled caller's abort is thrown,
 * for the policy to see: it is not the host's fault.
 */
export async function classifiedExchange<C>(
	exchange: () => Promise<HttpAnswer>,
	classify: (a: HttpAnswer) => C,
	signal?: AbortSignal,
): Promise<C | { outcome: "network"; attempt: Attempt<never> }> {
	let answer: HttpAnswer;
	try {
		answer = await exchange();
	} catch (err) {
		signal?.throwIfAborted();
		const e = err as Error & { code?: unknown; cause?: { code?: string; message?: string } };
		const cause = e.cause?.code ?? e.cause?.message ?? (typeof e.code === "string" ? e.code : undefined);
		const what = e.name === "TimeoutError" ? "timed out" : e.message;
		return {
			outcome: "network",
			attempt: {
				kind: "transient",
				reason: redactString(`request failed: ${what}${cause ? ` (${cause})` : ""}`),
			},
		};
	}
	return classify(answer);
}

/** A header's value as one string (the first of a repeated header); null when absent. */
export function headerValue(v: string | string[] | undefined): string | null {
	return (Array.isArray(v) ? v[0] : v) ?? null;
}

/** Retry-After as delta-seconds or an HTTP date; null when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | null {
	if (header === null) return null;
	const t = header.trim();
	if (/^\d+$/.test(t)) return Number(t) * 1000;
	const at = Date.parse(t);
	return Number.isNaN(at) ? null : Math.max(0, at - now);
}

export function isJsonType(contentType: string): boolean {
	return /\bjson\b/i.test(contentType);
}

/** Parse a JSON body; a truncated or garbled one is a transient failure of that call. */
export function parseJsonBody(a: HttpAnswer): { ok: true; value: unknown } | { ok: false; reason: string } {
	try {
		return { ok: true, value: JSON.parse(a.body) };
	} catch (err) {
		return { ok: false, reason: `malformed JSON (${a.body.length} bytes): ${(err as Error).message}` };
	}
}

/** The statuses every host shares: 429, 5xx, other 4xx. Null when the status needs the caller. */
export function classifyStatus(a: HttpAnswer): Classified<never> | null {
	if (a.status === 429) {
		return {
			outcome: "rate_limited",
			attempt: {
				kind: "rate-limited",
				retryAfterMs: retryAfterMs(a.retryAfter) ?? DEFAULT_RETRY_AFTER_MS,
				reason: `HTTP 429 (Retry-After: ${a.retryAfter ?? "none"})`,
			},
		};
	}
	if (a.status >= 500 || a.status === 408) {
		return {
			outcome: "server_error",
			attempt: { kind: "transient", reason: `HTTP ${a.status} ${a.statusText}` },
		};
	}
	if (a.status >= 400) {
		return {
			outcome: "client_error",
			attempt: { kind: "failed", reason: `HTTP ${a.status} ${a.statusText}` },
		};
	}
	return null;
}
