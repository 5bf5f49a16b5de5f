/**
 * Where proxies come from: a text list (file or env, one proxy a line), a watched file that is
 * re-read when it changes, and a WebShare-shaped provider list API. A malformed line or answer is
 * reported, never half-applied: a bad provider page fails the whole refresh and the pool keeps its
 * previous list.
 */
import { type FSWatcher, watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { UpstreamError } from "../core/errors.ts";
import { type HttpResponse, httpRequest } from "../core/http.ts";
import { makeEndpoint, type ProxyEndpoint, parseProxyUrl } from "./proxy-url.ts";

export interface ParsedList {
	proxies: ProxyEndpoint[];
	/** Line numbers (1-based) and reasons of lines that were skipped. */
	errors: { line: number; reason: string }[];
}

/** One proxy per line (or comma-separated); `#` starts a comment; duplicates (same id) collapse. */
export function parseProxyList(text: string, source: string): ParsedList {
	const proxies = new Map<string, ProxyEndpoint>();
	const errors: ParsedList["errors"] = [];
	text.split(/\r?\n/).forEach((raw, i) => {
		const line = raw.replace(/#.*$/, "").trim();
		if (line === "") return;
		for (const item of line.split(/[,\s]+/).filter(Boolean)) {
			try {
				const p = parseProxyUrl(item, source);
				proxies.set(p.id, p);
			} catch (err) {
				errors.push({ line: i + 1, reason: (err as Error).message });
			}
		}
	});
	return { proxies: [...proxies.values()], errors };
}

export async function loadProxyFile(path: string): Promise<ParsedList> {
	return parseProxyList(await readFile(path, "utf8"), "file");
}

/**
 * Calls `onChange` (debounced) whenever the file is written, replaced or re-created. The directory
 * is watched rather than the file so editors that save by rename keep being followed.
 */
export function watchProxyFile(path: string, onChange: () => void, debounceMs = 100): { close(): void } {
	const name = basename(path);
	let timer: NodeJS.Timeout | null = null;
	const watcher: FSWatcher = watch(dirname(path), { persistent: false }, (_event, file) => {
		if (file !== null && file !== name) return;
		if (timer) clearTimeout(timer);
		timer = setTimeout(() => {
			timer = null;
			onChange();
		}, debounceMs);
	});
	watcher.on("error", () => {});
	return {
		close() {
			if (timer) clearTimeout(timer);
			watcher.close();
		},
	};
}

/** The provider's list API failed or answered nonsense. */
export class ProviderError extends UpstreamError {
	constructor(message: string) {
		super(message, { type: "PROXY_PROVIDER_FAILED", retryable: false });
	}
}

interface ProviderPage {
	next: string | null;
	results: unknown[];
}

/**
 * Every page of a WebShare-shaped list (`GET …?page=N&page_size=100`, `Authorization: Token <key>`),
 * valid proxies only. Throws ProviderError on HTTP errors or answers of the wrong shape.
 */
export async function fetchProviderList(
	listUrl: string,
	key: string,
	opts: { timeoutMs?: number; maxPages?: number } = {},
): Promise<ProxyEndpoint[]> {
	const maxPages = opts.maxPages ?? 100;
	const out = new Map<string, ProxyEndpoint>();
	const first = new URL(listUrl);
	if (!first.searchParams.has("page")) first.searchParams.set("page", "1");
	if (!first.searchParams.has("page_size")) first.searchParams.set("page_size", "100");
	let next: string | null = first.href;
	for (let page = 0; next && page < maxPages; page++) {
		let res: HttpResponse;
		try {
			res = await httpRequest(next, {
				headers: { authorization: `Token ${key}`, accept: "application/json" },
				timeoutMs: opts.timeoutMs ?? 15_000,
			});
		} catch (err) {
			throw new ProviderError(`provider list unreachable: ${(err as Error).message}`);
		}
		const text = res.body;
		if (res.status < 200 || res.status >= 300)
			throw new ProviderError(`provider list answered HTTP ${res.status}: ${text.slice(0, 200)}`);
		const body = parsePage(text);
		for (const item of body.results) {
			const p = parseProviderProxy(item);
			if (p) out.set(p.id, p);
		}
		// Follow `next` only on the same origin: a redirect elsewhere would carry the key away.
		next =
			body.next && new URL(body.next, first).origin === first.origin ? new URL(body.next, first).href : null;
	}
	return [...out.values()];
}

function parsePage(text: string): ProviderPage {
	let body: unknown;
	try {
		body = JSON.parse(text);
	} catch {
		throw new ProviderError("provider list answer is not JSON");
	}
	const b = body as Partial<ProviderPage> | null;
	if (!b || typeof b !== "object" || !Array.isArray(b.results)) {
		throw new ProviderError("provider list answer has no results array");
	}
	if (b.next !== null && b.next !== undefined && typeof b.next !== "string") {
		throw new ProviderError("provider list answer has a bad 'next' link");
	}
	return { next: b.next ?? null, results: b.results };
}

/** One provider entry; null for an invalid proxy; ProviderError for an entry of the wrong shape. */
export function parseProviderProxy(item: unknown): ProxyEndpoint | null {
	const r = item as Record<string, unknown> | null;
	if (!r || typeof r !== "object") throw new ProviderError("provider entry is not an object");
	if (r.valid === false) return null;
	const host = r.proxy_address;
	const port = r.port;
	if (
		typeof host !== "string" ||
		host === "" ||
		!Number.isInteger(port) ||
		(port as number) < 1 ||
		(port as number) > 65535
	) {
		throw new ProviderError("provider entry lacks proxy_address/port");
	}
	const username = typeof r.username === "string" ? r.username : "";
	const password = typeof r.password === "string" ? r.password : "";
	return makeEndpoint({
		protocol: "http",
		host,
		port: port as number,
		username,
		password,
		source: "provider",
		...(typeof r.country_code === "string" ? { countryCode: r.country_code } : {}),
	});
}
