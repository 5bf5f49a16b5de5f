/**
 * Active health checks: a request through each proxy to a check URL, bounded in time, many at once.
 * A proxy passes when the check URL answers 2xx/3xx through it; anything else (refused, reset,
 * 407, 502, timeout) is a failure with its reason. When no proxy passes, the check URL itself is
 * asked directly (`probeCheckTarget`): if it does not answer either, the target is down (or
 * unreachable from here), which says nothing about the proxies.
 */
import { type Dispatcher, type HttpCallOptions, httpRequest, proxyDispatcher } from "../core/http.ts";
import { redactString } from "../utils/redact.ts";
import type { ProxyEndpoint } from "./proxy-url.ts";

export interface CheckResult {
	proxyId: string;
	ok: boolean;
	latencyMs: number;
	status?: number;
	error?: string;
	/** The check URL itself was down: this result was not recorded against the proxy. */
	targetDown?: true;
}

export async function checkProxy(
	proxy: ProxyEndpoint,
	checkUrl: string,
	timeoutMs: number,
): Promise<CheckResult> {
	const agent = proxyDispatcher(proxy.url, { connectTimeoutMs: timeoutMs });
	const started = performance.now();
	try {
		const res = await httpRequest(checkUrl, checkRequest(timeoutMs, agent));
		const latencyMs = Math.round(performance.now() - started);
		const ok = res.status >= 200 && res.status < 400;
		return {
			proxyId: proxy.id,
			ok,
			latencyMs,
			status: res.status,
			...(ok ? {} : { error: `check URL answered HTTP ${res.status}` }),
		};
	} catch (err) {
		const reason = failureReason(err, timeoutMs);
		return {
			proxyId: proxy.id,
			ok: false,
			latencyMs: Math.round(performance.now() - started),
			error: redactString(String(reason)).slice(0, 200),
		};
	} finally {
		agent.destroy().catch(() => {});
	}
}

/** The check URL asked directly (no proxy): null when it answers (any HTTP status), else why not. */
export async function probeCheckTarget(checkUrl: string, timeoutMs: number): Promise<string | null> {
	try {
		const res = await httpRequest(checkUrl, checkRequest(timeoutMs, null));
		return res.status >= 500 ? `HTTP ${res.status}` : null;
	} catch (err) {
		return redactString(failureReason(err, timeoutMs)).slice(0, 200);
	}
}

/** A check asks once (no redirect followed: a 3xx passes) and reads no body. */
function checkRequest(timeoutMs: number, dispatcher: Dispatcher | null): HttpCallOptions {
	return {
		timeoutMs,
		dispatcher,
		maxRedirects: 0,
		discardBody: true,
		headers: { "user-agent": "saguaro-proxy-check" },
	};
}

function failureReason(err: unknown, timeoutMs: number): string {
	const e = err as Error & { code?: string; cause?: { code?: string } };
	if (e?.name === "TimeoutError") return `timeout after ${timeoutMs} ms`;
	return String(e?.cause?.code ?? e?.code ?? e?.message ?? err);
}

/** Checks every proxy, at most `concurrency` at once. */
export async function checkAll(
	proxies: ProxyEndpoint[],
	checkUrl: string,
	opts: { timeoutMs: number; concurrency: number },
): Promise<CheckResult[]> {
	const results: CheckResult[] = new Array(proxies.length);
	let next = 0;
	const worker = async () => {
		while (next < proxies.length) {
			const i = next++;
			results[i] = await checkProxy(proxies[i]!, checkUrl, opts.timeoutMs);
		}
	};
	await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency, proxies.length)) }, worker));
	return results;
}
