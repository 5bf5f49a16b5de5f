/**
 * What the REST gateway refuses before a body reaches a service, and how it words an error.
 *
 * - Bodies: JSON only, at most API_BODY_LIMIT (413 past it), nested at most JSON_MAX_DEPTH levels
 *   (400 past it). The depth is counted on the raw bytes before parsing, in one pass with no
 *   recursion, so a 10,000-level document never reaches code that recurses over it.
 * - Errors: a 4xx says what is wrong (its message and data cut to a bounded size); a 5xx says only
 *   what kind of failure it was and the request id under which the gateway logged the details, so no
 *   stack, file path or driver message ever leaves over HTTP.
 */
import { boundError, cutString } from "../core/bus-errors.ts";
import { redact } from "../utils/redact.ts";

/** Largest request body: a job of 1,000 ZIPs is about 8 KB. */
export const API_BODY_LIMIT = "64kb";
export const JSON_MAX_DEPTH = 32;

export class JsonTooDeepError extends Error {
	readonly status = 400;
	readonly type = "entity.too.deep";
	constructor(limit: number) {
		super(`JSON body is nested deeper than ${limit} levels`);
		this.name = "JsonTooDeepError";
	}
}

/** Deepest nesting of arrays/objects in a JSON text, stopping as soon as it passes `limit`. */
export function jsonDepthExceeds(buf: Uint8Array, limit = JSON_MAX_DEPTH): boolean {
	let depth = 0;
	let inString = false;
	for (let i = 0; i < buf.length; i++) {
		const c = buf[i];
		if (inString) {
			// A backslash escapes the next character (an escaped quote does not end the string).
			if (c === 0x5c) i++;
			else if (c === 0x22) inString = false;
		} else if (c === 0x22) inString = true;
		else if (c === 0x7b || c === 0x5b) {
			if (++depth > limit) return true;
		} else if (c === 0x7d || c === 0x5d) depth--;
	}
	return false;
}

/** body-parser `verify` hook: refuse deep JSON before it is parsed. */
export function verifyJsonDepth(_req: unknown, _res: unknown, buf: Buffer): void {
	if (jsonDepthExceeds(buf)) throw new JsonTooDeepError(JSON_MAX_DEPTH);
}

const GENERIC_5XX: Record<number, [string, string]> = {
	500: ["InternalError", "Internal error."],
	501: ["NotImplemented", "Not implemented."],
	502: ["BadGateway", "A service behind the API failed."],
	503: ["ServiceUnavailable", "Service unavailable; try again later."],
	504: ["GatewayTimeout", "The service did not answer in time."],
};

export interface ApiErrorBody {
	name: string;
	message: string;
	code: number;
	type?: string;
	data?: unknown;
	requestId: string;
}

type ErrorLike = {
	name?: unknown;
	message?: unknown;
	code?: unknown;
	status?: unknown;
	type?: unknown;
	data?: unknown;
};

/** HTTP status of an error: its code (or status) when it is 4xx/5xx, else 500. */
export function errorStatus(err: unknown): number {
	const e = (err ?? {}) as ErrorLike;
	for (const c of [e.code, e.status]) {
		if (typeof c === "number" && Number.isInteger(c) && c >= 400 && c <= 599) return c;
	}
	return 500;
}

/** The body an API error answers with (see the module comment). */
export function apiErrorBody(err: unknown, requestId: string): ApiErrorBody {
	const code = errorStatus(err);
	const e = (err ?? {}) as ErrorLike;
	// A Moleculer type is a constant such as SERVICE_NOT_AVAILABLE: safe to show; anything else is not.
	const type = typeof e.type === "string" && /^[A-Z][A-Z0-9_]{0,60}$/.test(e.type) ? e.type : undefined;
	if (code >= 500) {
		const [name, message] = GENERIC_5XX[code] ?? ["ServerError", "Server error."];
		return {
			name,
			message: `${message} Request id: ${requestId}.`,
			code,
			...(type ? { type } : {}),
			requestId,
		};
	}
	const bounded = boundError(
		Object.assign(new Error(typeof e.message === "string" ? e.message : "Bad request"), {
			data: e.data,
		}) as Error & { data?: unknown },
	);
	const body: ApiErrorBody = {
		name: typeof e.name === "string" ? cutString(e.name, 60) : "Error",
		message: redact(bounded.message),
		code,
		requestId,
	};
	if (type) body.type = type;
	if (bounded.data !== undefined && bounded.data !== null) body.data = redact(bounded.data);
	return body;
}
