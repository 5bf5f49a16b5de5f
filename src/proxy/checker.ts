/**
 * Active health checks: a request through each proxy to a check URL, bounded in time, many at once.
 * A proxy passes when the check URL answers 2xx/3xx through it; anything else (refused, reset,
 * 407, 502, timeout) is a failure with its reason. When no proxy passes, the check URL itself is
 * asked directly (`probeCheckTarget`): if it does not answer either, the target is down (or
 * unreachable from here), which says nothing about the proxies.
 */
import { ProxyAgent, request } from "undici";
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
	const agent = new ProxyAgent({ uri: proxy.url, connectTimeout: timeoutMs });
	const started = performance.now();
	const signal = AbortSignal.timeout(timeoutMs);
	try {
		const res = await request(checkUrl, {
			dispatcher: agent,
			signal,
			headersTimeout: timeoutMs,
			bodyTimeout: timeoutMs,
			headers: { "user-agent": "saguaro-proxy-check" },
		});
		await res.body.dump({ limit: 64 * 1024 });
		const latencyMs = Math.round(performance.now() - started);
		const ok = res.statusCode >= 200 && res.statusCode < 400;
		return {
			proxyId: proxy.id,
			ok,
			latencyMs,
			status: res.statusCode,
			...(ok ? {} : { error: `check URL answered HTTP ${res.statusCode}` }),
		};
	} catch (err) {
		const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
		const reason = signal.aborted ? `timeout after ${timeoutMs} ms` : (e.cause?.code ?? e.code ?? e.message);
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
	const signal = AbortSignal.timeout(timeoutMs);
	try {
		const res = await request(checkUrl, {
			signal,
			headersTimeout: timeoutMs,
			bodyTimeout: timeoutMs,
			headers: { "user-agent": "saguaro-proxy-check" },
		});
		await res.body.dump({ limit: 64 * 1024 });
		return res.statusCode >= 500 ? `HTTP ${res.statusCode}` : null;
	} catch (err) {
		const e = err as Error & { code?: string; cause?: { code?: string } };
		const reason = signal.aborted ? `timeout after ${timeoutMs} ms` : (e.cause?.code ?? e.code ?? e.message);
		return redactString(String(reason)).slice(0, 200);
	}
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
