/**
 * Helpers the proxy farm, captcha and MLS simulators share on top of the common skeleton (http.ts):
 * form/query parameter merging, strict JSON object parsing, HTML escaping and cookie reading.
 */
import type { IncomingMessage } from "node:http";

/**
 * Query string plus, for POSTs, the body fields (body wins), as 2captcha's in.php and HTML forms
 * send either. A JSON body is accepted too; its values are stringified.
 */
export function mergeParams(url: URL, req: IncomingMessage, body: string): Record<string, string> {
	const params: Record<string, string> = {};
	for (const [k, v] of url.searchParams) params[k] = v;
	if (body === "") return params;
	const type = String(req.headers["content-type"] ?? "");
	if (type.includes("application/json")) {
		const parsed = parseJsonObject(body);
		if (parsed) for (const [k, v] of Object.entries(parsed)) params[k] = String(v);
	} else {
		for (const [k, v] of new URLSearchParams(body)) params[k] = v;
	}
	return params;
}

/** Parses a JSON object; anything else (array, scalar, invalid) is `null` so callers answer a clean error. */
export function parseJsonObject(text: string): Record<string, unknown> | null {
	try {
		const value: unknown = JSON.parse(text);
		return value !== null && typeof value === "object" && !Array.isArray(value)
			? (value as Record<string, unknown>)
			: null;
	} catch {
		return null;
	}
}

export function escapeHtml(text: string): string {
	return text
		.replace(/&/g, "&amp;")
		.replace(/</g, "&lt;")
		.replace(/>/g, "&gt;")
		.replace(/"/g, "&quot;")
		.replace(/'/g, "&#39;");
}

/** The request's cookies by name (first occurrence wins, as browsers send the most specific first). */
export function readCookies(req: IncomingMessage): Record<string, string> {
	const out: Record<string, string> = {};
	for (const part of String(req.headers.cookie ?? "").split(";")) {
		const eq = part.indexOf("=");
		if (eq <= 0) continue;
		const name = part.slice(0, eq).trim();
		if (!(name in out)) out[name] = safeDecode(part.slice(eq + 1).trim());
	}
	return out;
}

/** A malformed %-escape in a cookie must not crash the handler; the raw text is kept instead. */
function safeDecode(text: string): string {
	try {
		return decodeURIComponent(text);
	} catch {
		return text;
	}
}
