/**
 * One photo request through the CDN host's cluster-wide policy (budget, Retry-After, breaker) and,
 * when configured, a proxy-pool lease on the rotating gateway (the CDN sits behind the same per-IP
 * defences as the site). The body is capped: a larger answer stops being read at the cap.
 *
 * A definite answer about the photo (404, an over-cap body) comes back as `rejected`; a block
 * (403/429, an HTML interstitial) marks the proxy and is retried through another one. The exchange
 * goes through the one HTTP client (src/core/http.ts: proxy, time limit, body cap).
 */
import type { Attempt, HostPolicy } from "../core/host-policy.ts";
import { BodyTooLargeError, type HttpResponse, httpRequest, proxyDispatcher } from "../core/http.ts";
import { PhotoRejectedError } from "./hash.ts";

export interface PhotoLease {
	leaseId: string;
	proxyUrl: string;
}

export interface PhotoProxies {
	acquire(session: string): Promise<PhotoLease>;
	release(
		lease: PhotoLease,
		outcome: { ok: boolean; status?: number; blocked?: boolean; error?: string; latencyMs?: number },
	): Promise<void>;
}

export interface PhotoFetcherOptions {
	policy: HostPolicy;
	proxies: PhotoProxies | null;
	timeoutMs: number;
	maxBytes: number;
	userAgent?: string;
}

export type FetchOutcome = { body: Buffer; contentType: string } | { rejected: PhotoRejectedError };

const USER_AGENT =
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/147.0.0.0 Safari/537.36";

export class PhotoFetcher {
	readonly #o: PhotoFetcherOptions;
	/** Requests sent (attempts), bytes read. */
	requests = 0;

	constructor(options: PhotoFetcherOptions) {
		this.#o = options;
	}

	/** Fetch one photo; throws HostRequestError/HostFatalError when the host gives no answer. */
	async fetch(url: string, session: string, signal?: AbortSignal): Promise<FetchOutcome> {
		return this.#o.policy.run(`photo ${url.slice(-40)}`, () => this.#attempt(url, session, signal), signal);
	}

	async #attempt(url: string, session: string, signal?: AbortSignal): Promise<Attempt<FetchOutcome>> {
		this.requests++;
		const lease = this.#o.proxies ? await this.#o.proxies.acquire(session) : null;
		// The username (`lease.<id>`) pins the lease's proxy on the gateway.
		const dispatcher = lease ? proxyDispatcher(lease.proxyUrl) : null;
		const started = Date.now();
		const release = async (outcome: { ok: boolean; status?: number; blocked?: boolean; error?: string }) => {
			// The tunnel ends with the request: the lease's proxy is not held by an idle connection.
			if (dispatcher) await dispatcher.destroy().catch(() => undefined);
			if (lease && this.#o.proxies)
				await this.#o.proxies
					.release(lease, { ...outcome, latencyMs: Date.now() - started })
					.catch(() => undefined);
		};
		let res: HttpResponse;
		try {
			res = await httpRequest(url, {
				headers: {
					"user-agent": this.#o.userAgent ?? USER_AGENT,
					accept: "image/avif,image/webp,image/*,*/*;q=0.8",
				},
				timeoutMs: this.#o.timeoutMs,
				...(signal ? { signal } : {}),
				dispatcher,
				// A redirect is an answer about the photo (as before: not followed).
				maxRedirects: 0,
				maxBytes: this.#o.maxBytes,
				binary: true,
			});
		} catch (err) {
			signal?.throwIfAborted();
			if (err instanceof BodyTooLargeError && err.status === 200) {
				await release({ ok: true, status: err.status });
				const what =
					err.declared === null
						? `photo is over ${this.#o.maxBytes} bytes`
						: `photo is ${err.declared} bytes, over ${this.#o.maxBytes}`;
				return { kind: "ok", value: { rejected: new PhotoRejectedError("oversized", what) } };
			}
			const status = err instanceof BodyTooLargeError ? err.status : undefined;
			await release({ ok: false, ...(status ? { status } : {}), error: (err as Error).message });
			return { kind: "transient", reason: `request error: ${(err as Error).message}` };
		}
		const status = res.status;
		const contentType = String(res.headers["content-type"] ?? "").toLowerCase();
		if (status === 403 || status === 429 || (status === 200 && contentType.startsWith("text/html"))) {
			await release({ ok: false, status, blocked: true, error: `blocked (${status})` });
			return { kind: "transient", reason: `blocked: ${status}${status === 200 ? " interstitial" : ""}` };
		}
		if (status >= 500 || status === 408) {
			await release({ ok: false, status, error: `HTTP ${status}` });
			return { kind: "transient", reason: `HTTP ${status}` };
		}
		if (status !== 200) {
			await release({ ok: true, status });
			const reason = status === 404 || status === 410 ? "not-found" : `http-${status}`;
			return { kind: "ok", value: { rejected: new PhotoRejectedError(reason, `CDN answered ${status}`) } };
		}
		await release({ ok: true, status });
		return { kind: "ok", value: { body: res.bytes, contentType } };
	}

	async close(): Promise<void> {}
}
