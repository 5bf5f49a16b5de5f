/**
 * One photo request through the CDN host's cluster-wide policy (budget, Retry-After, breaker) and,
 * when configured, a proxy-pool lease on the rotating gateway (the CDN sits behind the same per-IP
 * defences as the site). The body is capped: a larger answer stops being read at the cap.
 *
 * A definite answer about the photo (404, an over-cap body) comes back as `rejected`; a block
 * (403/429, an HTML interstitial) marks the proxy and is retried through another one.
 */
import { type Dispatcher, ProxyAgent, request } from "undici";
import type { Attempt, HostPolicy } from "../core/host-policy.ts";
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

	/**
	 * An agent for one lease's gateway URL. The username (`lease.<id>`, no password) pins the lease's
	 * proxy; undici sends URL credentials only with a password, so it goes as an explicit header.
	 */
	#agent(proxyUrl: string): ProxyAgent {
		const u = new URL(proxyUrl);
		const user = decodeURIComponent(u.username);
		const pass = decodeURIComponent(u.password);
		u.username = "";
		u.password = "";
		return new ProxyAgent({
			uri: u.toString(),
			...(user ? { token: `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}` } : {}),
		});
	}

	/** Fetch one photo; throws HostRequestError/HostFatalError when the host gives no answer. */
	async fetch(url: string, session: string, signal?: AbortSignal): Promise<FetchOutcome> {
		return this.#o.policy.run(`photo ${url.slice(-40)}`, () => this.#attempt(url, session, signal), signal);
	}

	async #attempt(url: string, session: string, signal?: AbortSignal): Promise<Attempt<FetchOutcome>> {
		this.requests++;
		const lease = this.#o.proxies ? await this.#o.proxies.acquire(session) : null;
		const agent = lease ? this.#agent(lease.proxyUrl) : null;
		const started = Date.now();
		const release = async (outcome: { ok: boolean; status?: number; blocked?: boolean; error?: string }) => {
			// The tunnel ends with the request: the lease's proxy is not held by an idle connection.
			if (agent) await agent.destroy().catch(() => undefined);
			if (lease && this.#o.proxies)
				await this.#o.proxies
					.release(lease, { ...outcome, latencyMs: Date.now() - started })
					.catch(() => undefined);
		};
		const timeout = AbortSignal.timeout(this.#o.timeoutMs);
		let res: Dispatcher.ResponseData;
		try {
			res = await request(url, {
				method: "GET",
				headers: {
					"user-agent": this.#o.userAgent ?? USER_AGENT,
					accept: "image/avif,image/webp,image/*,*/*;q=0.8",
				},
				signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
				...(agent ? { dispatcher: agent } : {}),
			});
		} catch (err) {
			signal?.throwIfAborted();
			await release({ ok: false, error: (err as Error).message });
			return { kind: "transient", reason: `request error: ${(err as Error).message}` };
		}
		const status = res.statusCode;
		const contentType = String(res.headers["content-type"] ?? "").toLowerCase();
		if (status === 403 || status === 429 || (status === 200 && contentType.startsWith("text/html"))) {
			await res.body.dump().catch(() => undefined);
			await release({ ok: false, status, blocked: true, error: `blocked (${status})` });
			return { kind: "transient", reason: `blocked: ${status}${status === 200 ? " interstitial" : ""}` };
		}
		if (status >= 500 || status === 408) {
			await res.body.dump().catch(() => undefined);
			await release({ ok: false, status, error: `HTTP ${status}` });
			return { kind: "transient", reason: `HTTP ${status}` };
		}
		if (status !== 200) {
			await res.body.dump().catch(() => undefined);
			await release({ ok: true, status });
			const reason = status === 404 || status === 410 ? "not-found" : `http-${status}`;
			return { kind: "ok", value: { rejected: new PhotoRejectedError(reason, `CDN answered ${status}`) } };
		}
		const declared = Number(res.headers["content-length"] ?? Number.NaN);
		if (Number.isFinite(declared) && declared > this.#o.maxBytes) {
			res.body.destroy();
			await release({ ok: true, status });
			return {
				kind: "ok",
				value: {
					rejected: new PhotoRejectedError(
						"oversized",
						`photo is ${declared} bytes, over ${this.#o.maxBytes}`,
					),
				},
			};
		}
		const chunks: Buffer[] = [];
		let size = 0;
		try {
			for await (const chunk of res.body) {
				size += (chunk as Buffer).length;
				if (size > this.#o.maxBytes) {
					res.body.destroy();
					await release({ ok: true, status });
					return {
						kind: "ok",
						value: {
							rejected: new PhotoRejectedError("oversized", `photo is over ${this.#o.maxBytes} bytes`),
						},
					};
				}
				chunks.push(chunk as Buffer);
			}
		} catch (err) {
			signal?.throwIfAborted();
			await release({ ok: false, status, error: (err as Error).message });
			return { kind: "transient", reason: `body error: ${(err as Error).message}` };
		}
		await release({ ok: true, status });
		return { kind: "ok", value: { body: Buffer.concat(chunks), contentType } };
	}

	async close(): Promise<void> {}
}
