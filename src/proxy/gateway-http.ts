/**
 * The gateway's absolute-form HTTP path (`GET http://host/…`, what curl and Chromium send for
 * http:// URLs). A request body is kept for replay; the request is replayed through the next proxy
 * on a connection error, timeout, 407, 502 or 59x; on 403/429 the proxy is banned for that site and
 * idempotent requests are retried through another proxy. The answer chosen is streamed, not
 * buffered: failover is decided on the answer's head. Upstream connections are kept alive and
 * reused (one agent per protocol).
 *
 * The hot path allocates little per request: the target's host is read from the request line
 * without a URL object, headers stay raw arrays, the upstream's Proxy-Authorization is encoded once
 * per proxy, and the answer is forwarded by two listeners rather than a pipe.
 */
import {
	Agent as HttpAgent,
	request as httpRequest,
	type IncomingMessage,
	type ServerResponse,
} from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import {
	AttemptError,
	cachedProxyAuthorization,
	errorStatus,
	type GatewayContext,
	isProxyFailure,
	reasonOf,
	routeOf,
	STATUS,
	sendPlain,
} from "./gateway-core.ts";
import type { ProxyEndpoint } from "./proxy-url.ts";

/** Hop-by-hop headers (lower case), never forwarded in either direction. */
const HOP_BY_HOP = new Set([
	"connection",
	"keep-alive",
	"proxy-authorization",
	"proxy-authenticate",
	"proxy-connection",
	"te",
	"trailer",
	"transfer-encoding",
	"upgrade",
]);
/** No hop-by-hop name is longer: longer names skip the lower-casing. */
const HOP_BY_HOP_MAX = 19;

/**
 * `host[:port]` that URL would keep as it is but for case: a name whose last label starts with a
 * letter, or a dotted quad without leading zeros (URL reads `010.1` or `0x7f.1` as other addresses).
 */
const OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const SIMPLE_AUTHORITY = new RegExp(
	`^(?:(?:[a-z0-9-]+\\.)*[a-z][a-z0-9-]*|(?:${OCTET}\\.){3}${OCTET})(?::\\d{1,5})?$`,
	"i",
);

/** Where an absolute-form request goes: the lease's domain and the Host header to send. */
export interface HttpTarget {
	hostname: string;
	host: string;
}

/**
 * The target of an absolute-form request URL, or null when it is not one. Plain `http://host[:port]/…`
 * is read from the string (URL-equivalent: lower-cased, the default port dropped); anything else
 * (user info, IPv6, other schemes, odd characters) goes through URL.
 */
export function httpTargetOf(url: string): HttpTarget | null {
	if (url.length > 7 && url.charCodeAt(0) === 0x68 && url.startsWith("http://")) {
		let end = url.length;
		for (let i = 7; i < url.length; i++) {
			const c = url.charCodeAt(i);
			if (c === 0x2f || c === 0x3f || c === 0x23) {
				end = i;
				break;
			}
		}
		const authority = url.slice(7, end);
		if (SIMPLE_AUTHORITY.test(authority)) {
			const lower = authority.toLowerCase();
			const colon = lower.indexOf(":");
			if (colon < 0) return { hostname: lower, host: lower };
			const hostname = lower.slice(0, colon);
			const port = Number(lower.slice(colon + 1));
			if (port > 65535) return null;
			return { hostname, host: port === 80 ? hostname : `${hostname}:${port}` };
		}
	}
	try {
		const u = new URL(url);
		return { hostname: u.hostname, host: u.host };
	} catch {
		return null;
	}
}

/** The absolute-form path of one gateway: its upstream agents and the per-request failover. */
export class HttpForwarder {
	readonly #ctx: GatewayContext;
	readonly #httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 512, timeout: 60_000 });
	readonly #httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 512, timeout: 60_000 });

	constructor(ctx: GatewayContext) {
		this.#ctx = ctx;
	}

	destroy(): void {
		this.#httpAgent.destroy();
		this.#httpsAgent.destroy();
	}

	/**
	 * Tries upstreams until one answers with a status that is not a proxy failure (407, 502, 59x) or,
	 * for idempotent requests, a site's refusal (403/429, banned for the site). The answer of the
	 * upstream chosen is streamed as it arrives; an answer set aside in case no other upstream is
	 * left is held paused (not read), and dropped when another attempt starts. Only a request body is
	 * kept, for replay. An answer cut after its head cannot be replayed: the client's connection is cut.
	 */
	async forward(request: IncomingMessage, response: ServerResponse): Promise<void> {
		const ctx = this.#ctx;
		const options = ctx.options;
		const url = request.url ?? "";
		const target = httpTargetOf(url);
		if (!target) return sendPlain(response, 400, "bad request URL");
		const method = request.method ?? "GET";
		// One pass over the raw header pairs: what to forward (hop-by-hop ones left out), the route
		// and whether a body follows; `request.headers` (an object built on first use) is never read.
		const raw = request.rawHeaders;
		const headers: string[] = [];
		let proxyAuthorization: string | undefined;
		let hasBody = false;
		for (let i = 0; i < raw.length; i += 2) {
			const name = raw[i] as string;
			const lower = name.length <= HOP_BY_HOP_MAX ? name.toLowerCase() : "";
			if (lower === "proxy-authorization") proxyAuthorization ??= raw[i + 1];
			else if (lower === "transfer-encoding" || lower === "content-length") hasBody = true;
			if (HOP_BY_HOP.has(lower) || lower === "host" || lower === "content-length") continue;
			headers.push(name, raw[i + 1] as string);
		}
		headers.push("host", target.host);
		const route = routeOf(proxyAuthorization);
		let body: Buffer | null = null;
		if (hasBody) {
			try {
				body = await readBody(request, options.maxReplayBytes);
			} catch (err) {
				return sendPlain(response, 413, (err as Error).message);
			}
		}
		const idempotent = method === "GET" || method === "HEAD" || method === "OPTIONS";
		if ((body && body.length > 0) || (method !== "GET" && method !== "HEAD"))
			headers.push("content-length", String(body?.length ?? 0));

		const tried: string[] = [];
		let held: IncomingMessage | null = null;
		let last: { status: number; message: string } | null = null;
		for (let attempt = 0; attempt < options.maxAttempts; attempt++) {
			const lease = await ctx.lease(target.hostname, route, tried);
			if (!lease) break;
			tried.push(lease.proxy.id);
			if (held) {
				held.resume();
				held = null;
			}
			const started = performance.now();
			let res: IncomingMessage;
			try {
				res = await this.#viaProxy(lease.proxy, method, url, headers, body);
			} catch (err) {
				const reason = reasonOf(err);
				await ctx.release(lease, { ok: false, error: reason });
				ctx.attempted("http", attempt, false, reason);
				last = { status: errorStatus(err), message: `upstream failed: ${reason}` };
				if (!idempotent && (err as NodeJS.ErrnoException).code !== "ECONNREFUSED") break;
				continue;
			}
			const status = res.statusCode ?? 502;
			const latencyMs = Math.round(performance.now() - started);
			if (status === 407 || isProxyFailure(status)) {
				const reason = status === 407 ? "upstream auth failed" : `upstream answered ${status}`;
				await ctx.release(lease, { ok: false, error: reason });
				ctx.attempted("http", attempt, false, reason);
				if (status === 407) {
					res.resume();
					last = { status: STATUS.AUTH_FAILED, message: "upstream proxy auth failed" };
				} else {
					held = res;
					last = null;
				}
				continue;
			}
			ctx.attempted("http", attempt, true);
			if (idempotent && ctx.banStatuses.has(status)) {
				await ctx.release(lease, { ok: true, status, latencyMs });
				held = res;
				last = null;
				continue;
			}
			// Committed: stream the answer; the lease is given back once it has been carried.
			streamAnswer(res, response, () =>
				ctx.release(lease, { ok: true, status, latencyMs }).catch(() => undefined),
			);
			return;
		}
		ctx.counters.failures++;
		if (held) {
			streamAnswer(held, response, () => undefined);
			return;
		}
		const final = last ?? {
			status: STATUS.GENERIC,
			message: `no upstream proxy available for ${target.hostname}`,
		};
		sendPlain(response, final.status, final.message);
	}

	#viaProxy(
		proxy: ProxyEndpoint,
		method: string,
		path: string,
		headers: string[],
		body: Buffer | null,
	): Promise<IncomingMessage> {
		const auth = cachedProxyAuthorization(proxy);
		const https = proxy.protocol === "https";
		const timeout = this.#ctx.options.responseTimeoutMs;
		return new Promise((resolve, reject) => {
			const req = (https ? httpsRequest : httpRequest)({
				host: proxy.host,
				port: proxy.port,
				method,
				path,
				headers: auth ? [...headers, "proxy-authorization", auth] : headers,
				agent: https ? this.#httpsAgent : this.#httpAgent,
				timeout,
			});
			req.once("timeout", () => req.destroy(new AttemptError(STATUS.TIMEOUT, "upstream timed out")));
			req.once("error", reject);
			req.once("response", (res: IncomingMessage) => {
				// Past the head the answer is the client's: a late socket timeout must not cut a slow body.
				req.setTimeout(0);
				resolve(res);
			});
			req.end(body && body.length > 0 ? body : undefined);
		});
	}
}

/**
 * Carries an upstream answer to the client as it arrives (hop-by-hop headers left out), with
 * backpressure: the upstream is paused while the client's socket is full. `done` runs once, when the
 * answer has been read or either side is gone.
 */
function streamAnswer(res: IncomingMessage, response: ServerResponse, done: () => void): void {
	const raw = res.rawHeaders;
	const out: string[] = [];
	for (let i = 0; i < raw.length; i += 2) {
		const name = raw[i] as string;
		if (!HOP_BY_HOP.has(name.length <= HOP_BY_HOP_MAX ? name.toLowerCase() : ""))
			out.push(name, raw[i + 1] as string);
	}
	response.writeHead(res.statusCode ?? 502, out);
	let finished = false;
	const finish = () => {
		if (finished) return;
		finished = true;
		done();
	};
	res.on("data", (chunk: Buffer) => {
		if (!response.write(chunk)) res.pause();
	});
	response.on("drain", () => res.resume());
	res.once("end", () => {
		response.end();
		finish();
	});
	res.once("error", () => {
		response.destroy();
		finish();
	});
	res.once("aborted", () => response.destroy());
	response.once("close", () => {
		if (!res.complete) res.destroy();
		finish();
	});
	res.resume();
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
	return new Promise((resolve, reject) => {
		const chunks: Buffer[] = [];
		let size = 0;
		req.on("data", (c: Buffer) => {
			size += c.length;
			if (size > max) {
				reject(new Error(`request body over ${max} bytes`));
				req.destroy();
				return;
			}
			chunks.push(c);
		});
		req.once("end", () => resolve(Buffer.concat(chunks)));
		req.once("error", reject);
	});
}
