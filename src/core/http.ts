/**
 * One HTTP exchange with a site's host, read fully, and the pieces of classifying it that every
 * client shares (Assessor REST and GIS, the LLM endpoint, the MLS site's Retry-After). Classification
 * turns an answer into a HostPolicy `Attempt` plus an outcome tag for metrics.
 */
import { redactString } from "../utils/redact.ts";
import type { Attempt } from "./host-policy.ts";

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
	const timeout = AbortSignal.timeout(timeoutMs);
	const res = await fetch(url, {
		method: req.method ?? "GET",
		headers: { accept: "application/json", ...req.headers },
		...(req.body !== undefined ? { body: req.body } : {}),
		signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
		redirect: "follow",
	});
	// The body is read in full under the same timeout: a stalled body is a failed exchange.
	const body = await res.text();
	return {
		status: res.status,
		statusText: res.statusText,
		contentType: res.headers.get("content-type") ?? "",
		body,
		retryAfter: res.headers.get("retry-after"),
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
		const e = err as Error & { cause?: { code?: string; message?: string } };
		const cause = e.cause?.code ?? e.cause?.message;
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
