/**
 * The rotating local gateway: an unauthenticated forward proxy (node:http: absolute-form requests
 * and CONNECT) that any HTTP client or Chromium can point at. Per request (absolute-form HTTP) or per
 * tunnel (CONNECT) it leases an upstream from the pool, and when the upstream fails it tries another
 * one before answering the client — the failover proxy-chain lacks (apify/proxy-chain #542):
 *
 * - absolute-form HTTP (`GET http://host/…`, what curl and Chromium send for http:// URLs): a request
 *   body is kept for replay; the request is replayed through the next proxy on a connection error,
 *   timeout, 407, 502 or 59x; on 403/429 the proxy is banned for that site and idempotent requests
 *   are retried through another proxy. The answer chosen is streamed, not buffered: failover is
 *   decided on the answer's head. Upstream connections are kept alive and reused (one agent).
 * - CONNECT tunnels (what undici and browsers use for https://): the client's bytes are kept until
 *   the upstream answers its first byte, so a tunnel that fails before answering (refused, 407,
 *   reset during the TLS handshake, a proxy's 502 to plain HTTP) is replayed through another proxy.
 *   After the first answer byte the tunnel is committed and piped as is.
 *
 * A session key may ride in the proxy username (`http://<session>@127.0.0.1:<port>`): requests with
 * the same key keep their upstream while it works. Every socket the gateway opens or accepts is
 * tracked and destroyed with its peer, and all of them at close (no leaks: proxy-chain #670, #37).
 */
import { EventEmitter } from "node:events";
import {
	createServer,
	Agent as HttpAgent,
	request as httpRequest,
	type IncomingMessage,
	type Server,
	type ServerResponse,
} from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import type { AcquireParams, LeaseOutcome } from "../contracts/proxy-pool.ts";
import { redactString } from "../utils/redact.ts";
import type { Acquired } from "./pool.ts";
import { NoProxyAvailableError } from "./pool.ts";
import { type ProxyEndpoint, proxyAuthorization } from "./proxy-url.ts";

/** What the gateway needs from the pool (the ProxyPool, or a remote one in tests). */
export interface GatewayPool {
	acquire(req: AcquireParams): Promise<Acquired>;
	release(leaseId: string, outcome: LeaseOutcome): Promise<unknown>;
	/** The proxy of a lease taken with the `acquire` action (username `lease.<leaseId>`). */
	leasedProxy(leaseId: string): Promise<ProxyEndpoint | null>;
}

/**
 * How a client picks its upstream through the proxy username: empty = rotate; `lease.<leaseId>` =
 * exactly the proxy of that lease (its holder releases it); anything else = a sticky session key.
 */
export interface GatewayRoute {
	session: string | null;
	pinnedLease: string | null;
}

export function parseGatewayUsername(username: string | undefined): GatewayRoute {
	const name = username ? decodeURIComponent(username) : "";
	if (name.startsWith("lease.")) return { session: null, pinnedLease: name.slice("lease.".length) };
	return { session: name || null, pinnedLease: null };
}

type GatewayLease = Acquired & { pinned: boolean };

export interface GatewayOptions {
	pool: GatewayPool;
	port: number;
	host?: string;
	/** Upstreams tried per request/tunnel before giving up. */
	maxAttempts?: number;
	connectTimeoutMs?: number;
	/** Time allowed for the first byte of an answer. */
	responseTimeoutMs?: number;
	/** Largest buffered answer of an absolute-form request. */
	maxResponseBytes?: number;
	/** Largest request body / pre-answer tunnel bytes kept for replay. */
	maxReplayBytes?: number;
	/**
	 * Share the port with other gateway processes (SO_REUSEPORT: the kernel spreads connections
	 * over them), for hosts where one event loop is the limit; their pools share state through Redis.
	 */
	reusePort?: boolean;
	banStatuses?: number[];
	/** One call per upstream attempt (for metrics). */
	onAttempt?(e: { kind: "http" | "tunnel"; ok: boolean; failover: boolean; reason?: string }): void;
}

export interface GatewayStats {
	requests: number;
	tunnels: number;
	attempts: number;
	failovers: number;
	failures: number;
	/** Client connections plus upstream sockets opened by the gateway. */
	openSockets: number;
}

interface TunnelTarget {
	hostname: string;
	port: number;
	route: GatewayRoute;
}

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

const IDEMPOTENT = /^(GET|HEAD|OPTIONS) /;

/** proxy-chain's statuses for upstream failures (statuses.ts), used for the final answer. */
const STATUS = {
	NON_200: 590,
	REFUSED: 594,
	RESET: 595,
	AUTH_FAILED: 597,
	GENERIC: 599,
	TIMEOUT: 504,
} as const;

class AttemptError extends Error {
	readonly status: number;
	constructor(status: number, message: string) {
		super(message);
		this.status = status;
	}
}

function errorStatus(err: unknown): number {
	if (err instanceof AttemptError) return err.status;
	const code = (err as NodeJS.ErrnoException)?.code;
	if (code === "ECONNREFUSED") return STATUS.REFUSED;
	if (code === "ECONNRESET" || code === "EPIPE") return STATUS.RESET;
	if (code === "ETIMEDOUT") return STATUS.TIMEOUT;
	return STATUS.GENERIC;
}

function reasonOf(err: unknown): string {
	const e = err as NodeJS.ErrnoException;
	return redactString(e?.code ?? e?.message ?? String(err)).slice(0, 200);
}

export class ProxyGateway {
	readonly options: Required<Omit<GatewayOptions, "onAttempt">> & Pick<GatewayOptions, "onAttempt">;
	readonly #server: Server;
	/** Client connections (absolute-form keep-alive and CONNECT tunnels alike). */
	readonly #clients = new Set<Socket>();
	readonly #upstreams = new Set<Socket>();
	readonly #httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 512, timeout: 60_000 });
	readonly #httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 512, timeout: 60_000 });
	readonly #stats = { requests: 0, tunnels: 0, attempts: 0, failovers: 0, failures: 0 };
	readonly #banStatuses: Set<number>;
	#port = 0;
	readonly events = new EventEmitter();

	constructor(options: GatewayOptions) {
		this.options = {
			host: "127.0.0.1",
			maxAttempts: 3,
			connectTimeoutMs: 10_000,
			responseTimeoutMs: 60_000,
			maxResponseBytes: 64 * 1024 * 1024,
			maxReplayBytes: 1024 * 1024,
			banStatuses: [403, 429],
			reusePort: false,
			...options,
		};
		this.#banStatuses = new Set(this.options.banStatuses);
		// A plain node:http server: proxy-chain's Server cost about a fifth of the gateway's CPU per
		// request (its handler options, the custom response's header copies) for routing the gateway
		// does itself (profile in bench/proxy-gateway.bench.ts --profile).
		this.#server = createServer({ keepAlive: true });
		this.#server.on("connection", (socket: Socket) => {
			this.#clients.add(socket);
			socket.once("close", () => this.#clients.delete(socket));
		});
		this.#server.on("request", (req: IncomingMessage, res: ServerResponse) => {
			const route = parseGatewayUsername(usernameOf(req.headers["proxy-authorization"]));
			this.#stats.requests++;
			this.#forwardHttp(req, res, route).catch(() => res.destroy());
		});
		this.#server.on("connect", (req: IncomingMessage, socket: Socket, head: Buffer) => {
			const target = connectTarget(req.url ?? "");
			if (!target) {
				socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
				return;
			}
			this.#stats.tunnels++;
			const route = parseGatewayUsername(usernameOf(req.headers["proxy-authorization"]));
			socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
			if (head.length > 0) socket.unshift(head);
			this.#tunnel(socket, { ...target, route }).catch(() => socket.destroy());
		});
		this.#server.on("clientError", (_err: Error, socket: Socket) => socket.destroy());
	}

	listen(): Promise<number> {
		return new Promise((resolve, reject) => {
			this.#server.once("error", reject);
			const { port, host, reusePort } = this.options;
			this.#server.listen({ port, host, reusePort }, () => {
				this.#server.removeListener("error", reject);
				const addr = this.#server.address();
				this.#port = typeof addr === "object" && addr ? addr.port : this.options.port;
				resolve(this.#port);
			});
		});
	}

	get port(): number {
		return this.#port;
	}

	stats(): GatewayStats {
		return { ...this.#stats, openSockets: this.#clients.size + this.#upstreams.size };
	}

	async close(): Promise<void> {
		const closed = new Promise<void>((r) => this.#server.close(() => r()));
		for (const s of this.#clients) s.destroy();
		this.#clients.clear();
		await closed;
		for (const s of this.#upstreams) s.destroy();
		this.#upstreams.clear();
		this.#httpAgent.destroy();
		this.#httpsAgent.destroy();
	}

	#track(socket: Socket): Socket {
		this.#upstreams.add(socket);
		socket.once("close", () => this.#upstreams.delete(socket));
		return socket;
	}

	#attempted(kind: "http" | "tunnel", attempt: number, ok: boolean, reason?: string): void {
		this.#stats.attempts++;
		if (attempt > 0) this.#stats.failovers++;
		this.options.onAttempt?.({ kind, ok, failover: attempt > 0, ...(reason ? { reason } : {}) });
	}

	async #lease(domain: string, route: GatewayRoute, tried: string[]): Promise<GatewayLease | null> {
		if (route.pinnedLease) {
			// A pinned lease means exactly that proxy: there is nothing to fail over to.
			if (tried.length > 0) return null;
			const proxy = await this.options.pool.leasedProxy(route.pinnedLease);
			return proxy
				? { leaseId: route.pinnedLease, proxy, domain, session: null, sticky: false, pinned: true }
				: null;
		}
		try {
			const session = route.session;
			const lease = await this.options.pool.acquire({
				domain,
				...(session ? { session } : {}),
				exclude: tried,
			});
			return { ...lease, pinned: false };
		} catch (err) {
			if (err instanceof NoProxyAvailableError) return null;
			throw err;
		}
	}

	/** Pinned leases belong to whoever took them with `acquire`: they release (and report) them. */
	async #release(lease: GatewayLease, outcome: LeaseOutcome): Promise<void> {
		if (!lease.pinned) await this.options.pool.release(lease.leaseId, outcome);
	}

	// ---------- absolute-form HTTP ----------

	/**
	 * Tries upstreams until one answers with a status that is not a proxy failure (407, 502, 59x) or,
	 * for idempotent requests, a site's refusal (403/429, banned for the site). The answer of the
	 * upstream chosen is streamed as it arrives; an answer set aside in case no other upstream is left
	 * is held paused (not read), and dropped when another attempt starts. Only a request body is kept,
	 * for replay. An answer cut after its head cannot be replayed: the client's connection is cut.
	 */
	async #forwardHttp(request: IncomingMessage, response: ServerResponse, route: GatewayRoute): Promise<void> {
		const url = request.url ?? "";
		let target: URL;
		try {
			target = new URL(url);
		} catch {
			return sendPlain(response, 400, "bad request URL");
		}
		const method = request.method ?? "GET";
		const hasBody =
			request.headers["content-length"] !== undefined || request.headers["transfer-encoding"] !== undefined;
		let body: Buffer | null = null;
		if (hasBody) {
			try {
				body = await readBody(request, this.options.maxReplayBytes);
			} catch (err) {
				return sendPlain(response, 413, (err as Error).message);
			}
		}
		const idempotent = method === "GET" || method === "HEAD" || method === "OPTIONS";
		// Raw header pairs, hop-by-hop ones left out: no per-request object of lower-cased names.
		const raw = request.rawHeaders;
		const headers: string[] = [];
		for (let i = 0; i < raw.length; i += 2) {
			const name = raw[i] as string;
			const lower = name.length <= 19 ? name.toLowerCase() : "";
			if (HOP_BY_HOP.has(lower) || lower === "host" || lower === "content-length") continue;
			headers.push(name, raw[i + 1] as string);
		}
		headers.push("host", target.host);
		if ((body && body.length > 0) || (method !== "GET" && method !== "HEAD"))
			headers.push("content-length", String(body?.length ?? 0));

		const tried: string[] = [];
		let held: IncomingMessage | null = null;
		let last: { status: number; message: string } | null = null;
		const drop = () => {
			held?.resume();
			held = null;
		};
		for (let attempt = 0; attempt < this.options.maxAttempts; attempt++) {
			const lease = await this.#lease(target.hostname, route, tried);
			if (!lease) break;
			tried.push(lease.proxy.id);
			drop();
			const started = performance.now();
			let res: IncomingMessage;
			try {
				res = await this.#viaProxy(lease.proxy, method, url, headers, body);
			} catch (err) {
				const reason = reasonOf(err);
				await this.#release(lease, { ok: false, error: reason });
				this.#attempted("http", attempt, false, reason);
				last = { status: errorStatus(err), message: `upstream failed: ${reason}` };
				if (!idempotent && (err as NodeJS.ErrnoException).code !== "ECONNREFUSED") break;
				continue;
			}
			const status = res.statusCode ?? 502;
			const latencyMs = Math.round(performance.now() - started);
			if (status === 407 || status === 502 || (status >= 590 && status <= 599)) {
				const reason = status === 407 ? "upstream auth failed" : `upstream answered ${status}`;
				await this.#release(lease, { ok: false, error: reason });
				this.#attempted("http", attempt, false, reason);
				if (status === 407) {
					res.resume();
					last = { status: STATUS.AUTH_FAILED, message: "upstream proxy auth failed" };
				} else {
					held = res;
					last = null;
				}
				continue;
			}
			this.#attempted("http", attempt, true);
			if (this.#banStatuses.has(status) && idempotent) {
				await this.#release(lease, { ok: true, status, latencyMs });
				held = res;
				last = null;
				continue;
			}
			// Committed: stream the answer; the lease is given back once it has been carried.
			this.#stream(res, response, () =>
				this.#release(lease, { ok: true, status, latencyMs }).catch(() => undefined),
			);
			return;
		}
		this.#stats.failures++;
		if (held) {
			this.#stream(held, response, () => undefined);
			return;
		}
		const final = last ?? {
			status: STATUS.GENERIC,
			message: `no upstream proxy available for ${target.hostname}`,
		};
		sendPlain(response, final.status, final.message);
	}

	/** Carries an upstream answer to the client as it arrives (hop-by-hop headers left out). */
	#stream(res: IncomingMessage, response: ServerResponse, done: () => void): void {
		const raw = res.rawHeaders;
		const out: string[] = [];
		for (let i = 0; i < raw.length; i += 2) {
			const name = raw[i] as string;
			if (!HOP_BY_HOP.has(name.length <= 19 ? name.toLowerCase() : "")) out.push(name, raw[i + 1] as string);
		}
		response.writeHead(res.statusCode ?? 502, out);
		let finished = false;
		const finish = () => {
			if (finished) return;
			finished = true;
			done();
		};
		res.once("end", finish);
		res.once("error", () => {
			response.destroy();
			finish();
		});
		res.once("aborted", () => response.destroy());
		response.once("close", () => {
			if (!res.complete) res.destroy();
			finish();
		});
		res.pipe(response);
	}

	#viaProxy(
		proxy: ProxyEndpoint,
		method: string,
		path: string,
		headers: string[],
		body: Buffer | null,
	): Promise<IncomingMessage> {
		const auth = proxyAuthorization(proxy);
		const https = proxy.protocol === "https";
		return new Promise((resolve, reject) => {
			const req = (https ? httpsRequest : httpRequest)({
				host: proxy.host,
				port: proxy.port,
				method,
				path,
				headers: auth ? [...headers, "proxy-authorization", auth] : headers,
				agent: https ? this.#httpsAgent : this.#httpAgent,
				timeout: this.options.responseTimeoutMs,
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

	// ---------- CONNECT tunnels ----------

	async #tunnel(client: Socket, target: TunnelTarget): Promise<void> {
		const kept: Buffer[] = [];
		let keptBytes = 0;
		let replayable = true;
		let upstream: Socket | null = null;
		let committed = false;
		let clientGone = false;
		client.on("data", (chunk: Buffer) => {
			if (committed) return;
			keptBytes += chunk.length;
			if (keptBytes > this.options.maxReplayBytes) replayable = false;
			else kept.push(chunk);
			upstream?.write(chunk);
		});
		client.on("error", () => {});
		client.once("close", () => {
			clientGone = true;
			upstream?.destroy();
		});

		const tried: string[] = [];
		for (let attempt = 0; attempt < this.options.maxAttempts && !clientGone; attempt++) {
			const lease = await this.#lease(target.hostname, target.route, tried);
			if (!lease) break;
			tried.push(lease.proxy.id);
			const started = performance.now();
			let sock: Socket;
			try {
				sock = await this.#openTunnel(lease.proxy, target);
			} catch (err) {
				const reason = reasonOf(err);
				await this.#release(lease, { ok: false, error: reason });
				this.#attempted("tunnel", attempt, false, reason);
				continue;
			}
			if (clientGone) {
				sock.destroy();
				await this.#release(lease, { ok: true });
				return;
			}
			upstream = sock;
			for (const chunk of kept) sock.write(chunk);
			const first = await this.#firstAnswer(sock, client);
			if (first === "client-gone") {
				sock.destroy();
				await this.#release(lease, { ok: true });
				return;
			}
			const requestHead = kept.length > 0 ? kept[0]!.subarray(0, 16).toString("latin1") : "";
			const plainHttp = kept.length > 0 && kept[0]![0] !== 0x16;
			const canReplay = replayable && (!plainHttp || IDEMPOTENT.test(requestHead));
			if (first instanceof Error) {
				upstream = null;
				sock.destroy();
				const reason = reasonOf(first);
				await this.#release(lease, { ok: false, error: reason });
				this.#attempted("tunnel", attempt, false, reason);
				if (canReplay) continue;
				break;
			}
			const status = plainHttp ? httpStatusOf(first) : null;
			const latencyMs = Math.round(performance.now() - started);
			const proxyFailed = status === 502 || (status !== null && status >= 590 && status <= 599);
			const refused = status !== null && this.options.banStatuses.includes(status);
			const lastAttempt = attempt + 1 >= this.options.maxAttempts;
			if ((proxyFailed || refused) && canReplay && !lastAttempt) {
				upstream = null;
				sock.destroy();
				await this.#release(
					lease,
					proxyFailed
						? { ok: false, error: `upstream answered ${status}` }
						: { ok: true, status: status!, latencyMs },
				);
				this.#attempted(
					"tunnel",
					attempt,
					!proxyFailed,
					proxyFailed ? `upstream answered ${status}` : undefined,
				);
				continue;
			}
			// Commit: from here the tunnel is a plain pipe.
			committed = true;
			this.#attempted("tunnel", attempt, !proxyFailed);
			client.write(first);
			sock.pipe(client);
			client.pipe(sock);
			sock.once("close", () => client.destroy());
			await new Promise<void>((resolve) => {
				if (client.destroyed) resolve();
				else client.once("close", () => resolve());
			});
			sock.destroy();
			await this.#release(
				lease,
				proxyFailed
					? { ok: false, error: `upstream answered ${status}` }
					: { ok: true, latencyMs, ...(status !== null ? { status } : {}) },
			);
			return;
		}
		this.#stats.failures++;
		// Plain HTTP still gets an answer saying why; a TLS client just sees the tunnel close.
		if (!clientGone && kept.length > 0 && kept[0]![0] !== 0x16) {
			client.end(customStatus(STATUS.GENERIC, "all upstream proxies failed"));
		} else client.destroy();
	}

	/** TCP (or TLS) to the proxy, `CONNECT host:port`, and its answer; resolves once the tunnel is up. */
	#openTunnel(proxy: ProxyEndpoint, target: TunnelTarget): Promise<Socket> {
		return new Promise((resolve, reject) => {
			const sock = this.#track(
				proxy.protocol === "https"
					? tlsConnect({ host: proxy.host, port: proxy.port, servername: proxy.host })
					: netConnect(proxy.port, proxy.host),
			);
			const hostPort = `${target.hostname.includes(":") ? `[${target.hostname}]` : target.hostname}:${target.port}`;
			const auth = proxyAuthorization(proxy);
			let head = Buffer.alloc(0);
			const timer = setTimeout(
				() => fail(new AttemptError(STATUS.TIMEOUT, "upstream CONNECT timed out")),
				this.options.connectTimeoutMs,
			);
			const fail = (err: Error) => {
				clearTimeout(timer);
				sock.removeListener("data", onData);
				sock.destroy();
				reject(err);
			};
			const onData = (chunk: Buffer) => {
				head = Buffer.concat([head, chunk]);
				const end = head.indexOf("\r\n\r\n");
				if (end < 0) {
					if (head.length > 16_384) fail(new AttemptError(STATUS.GENERIC, "oversized CONNECT answer"));
					return;
				}
				const status = httpStatusOf(head);
				if (status !== 200) {
					fail(
						new AttemptError(
							status === 407 ? STATUS.AUTH_FAILED : STATUS.NON_200,
							`upstream CONNECT answered ${status ?? "garbage"}`,
						),
					);
					return;
				}
				clearTimeout(timer);
				sock.removeListener("data", onData);
				sock.removeListener("error", fail);
				const rest = head.subarray(end + 4);
				if (rest.length > 0) sock.unshift(rest);
				resolve(sock);
			};
			sock.once("error", fail);
			sock.once("close", () => fail(new AttemptError(STATUS.RESET, "upstream closed during CONNECT")));
			sock.on("data", onData);
			sock.once(proxy.protocol === "https" ? "secureConnect" : "connect", () => {
				sock.write(
					`CONNECT ${hostPort} HTTP/1.1\r\nHost: ${hostPort}\r\n${auth ? `Proxy-Authorization: ${auth}\r\n` : ""}\r\n`,
				);
			});
		});
	}

	/** The upstream's first answer bytes, an Error if it fails first, or "client-gone". */
	#firstAnswer(sock: Socket, client: Socket): Promise<Buffer | Error | "client-gone"> {
		return new Promise((resolve) => {
			const timer = setTimeout(
				() => done(new AttemptError(STATUS.TIMEOUT, "no answer through upstream")),
				this.options.responseTimeoutMs,
			);
			const onData = (chunk: Buffer) => done(chunk);
			const onError = (err: Error) => done(err);
			const onClose = () => done(new AttemptError(STATUS.RESET, "upstream closed before answering"));
			const onClientClose = () => done("client-gone");
			const done = (r: Buffer | Error | "client-gone") => {
				clearTimeout(timer);
				sock.removeListener("data", onData);
				sock.removeListener("error", onError);
				sock.removeListener("close", onClose);
				client.removeListener("close", onClientClose);
				if (r instanceof Buffer) sock.pause();
				else sock.on("error", () => {});
				resolve(r);
			};
			sock.on("data", onData);
			sock.once("error", onError);
			sock.once("close", onClose);
			client.once("close", onClientClose);
		});
	}
}

function httpStatusOf(buf: Buffer): number | null {
	const m = /^HTTP\/\d(?:\.\d)? (\d{3})/.exec(buf.subarray(0, 32).toString("latin1"));
	return m ? Number(m[1]) : null;
}

function sendPlain(response: ServerResponse, statusCode: number, message: string): void {
	response.writeHead(statusCode, {
		"content-type": "text/plain; charset=utf-8",
		"content-length": Buffer.byteLength(message),
	});
	response.end(message);
}

/** The username of a `Proxy-Authorization: Basic …` header (the route), or undefined. */
export function usernameOf(header: string | undefined): string | undefined {
	if (!header || !/^basic /i.test(header)) return undefined;
	const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
	const colon = decoded.indexOf(":");
	return colon < 0 ? decoded : decoded.slice(0, colon);
}

/** `host:port` of a CONNECT request (IPv6 in brackets), or null. */
function connectTarget(authority: string): { hostname: string; port: number } | null {
	const m = /^(?:\[([^\]]+)\]|([^:/\s]+)):(\d{1,5})$/.exec(authority);
	if (!m) return null;
	const port = Number(m[3]);
	return port > 0 && port < 65536 ? { hostname: (m[1] ?? m[2]) as string, port } : null;
}

function customStatus(status: number, message: string): string {
	return `HTTP/1.1 ${status} Upstream Error\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`;
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
