/**
 * The rotating local gateway: an unauthenticated proxy-chain `Server` that any HTTP client or
 * Chromium can point at. Per request (absolute-form HTTP) or per tunnel (CONNECT) it leases an
 * upstream from the pool, and when the upstream fails it tries another one before answering the
 * client — the failover proxy-chain lacks (apify/proxy-chain #542):
 *
 * - absolute-form HTTP (`GET http://host/…`, what curl and Chromium send for http:// URLs): the
 *   request body is buffered, the request is replayed through the next proxy on a connection error,
 *   timeout, 407, 502 or 59x; on 403/429 the proxy is banned for that site and idempotent requests
 *   are retried through another proxy. The answer is buffered (capped), then sent.
 * - CONNECT tunnels (what undici and browsers use for https://): the client's bytes are kept until
 *   the upstream answers its first byte, so a tunnel that fails before answering (refused, 407,
 *   reset during the TLS handshake, a proxy's 502 to plain HTTP) is replayed through another proxy.
 *   After the first answer byte the tunnel is committed and piped as is.
 *
 * A session key may ride in the proxy username (`http://<session>@127.0.0.1:<port>`): requests with
 * the same key keep their upstream while it works. Every socket the gateway opens is tracked and
 * destroyed with its peer, and all of them at close (no leaks: proxy-chain #670, #37).
 */
import { EventEmitter } from "node:events";
import {
	createServer,
	Agent as HttpAgent,
	request as httpRequest,
	type IncomingHttpHeaders,
	type IncomingMessage,
	type Server,
} from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { Server as ProxyChainServer } from "proxy-chain";
import { redactString } from "../utils/redact.ts";
import type { Acquired, AcquireRequest, ReleaseOutcome } from "./pool.ts";
import { NoProxyAvailableError } from "./pool.ts";
import { type ProxyEndpoint, proxyAuthorization } from "./proxy-url.ts";

/** What the gateway needs from the pool (the ProxyPool, or a remote one in tests). */
export interface GatewayPool {
	acquire(req: AcquireRequest): Promise<Acquired>;
	release(leaseId: string, outcome: ReleaseOutcome): Promise<unknown>;
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
	/** Client connections held by proxy-chain plus upstream sockets opened by the gateway. */
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
	readonly #server: ProxyChainServer;
	/** Receives CONNECT sockets from proxy-chain (`customConnectServer`); never listens. */
	readonly #tunnels: Server;
	readonly #targets = new WeakMap<object, TunnelTarget>();
	readonly #upstreams = new Set<Socket>();
	readonly #httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 512, timeout: 60_000 });
	readonly #httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 512, timeout: 60_000 });
	readonly #stats = { requests: 0, tunnels: 0, attempts: 0, failovers: 0, failures: 0 };
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
			...options,
		};
		this.#tunnels = createServer();
		this.#tunnels.removeAllListeners("connection");
		this.#tunnels.on("connection", (socket: Socket) => {
			this.#tunnel(socket).catch(() => socket.destroy());
		});
		this.#server = new ProxyChainServer({
			port: this.options.port,
			host: this.options.host,
			prepareRequestFunction: ({ request, username, hostname, port, isHttp }) => {
				const route = parseGatewayUsername(username);
				if (isHttp) {
					this.#stats.requests++;
					// proxy-chain types header values as strings, but hands them to setHeader, which also
					// takes the arrays multi-valued headers (set-cookie) need.
					return {
						customResponseFunction: () =>
							this.#forwardHttp(request, route) as Promise<{
								statusCode: number;
								headers?: Record<string, string>;
							}>,
					};
				}
				this.#stats.tunnels++;
				this.#targets.set(request.socket, { hostname, port, route });
				return { customConnectServer: this.#tunnels };
			},
		});
		// Clients hanging up and upstream faults are routine here; they are counted, not thrown.
		this.#server.on("requestFailed", () => {});
	}

	async listen(): Promise<number> {
		await this.#server.listen();
		return this.#server.port;
	}

	get port(): number {
		return this.#server.port;
	}

	stats(): GatewayStats {
		return { ...this.#stats, openSockets: this.#server.getConnectionIds().length + this.#upstreams.size };
	}

	async close(): Promise<void> {
		await this.#server.close(true);
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
	async #release(lease: GatewayLease, outcome: ReleaseOutcome): Promise<void> {
		if (!lease.pinned) await this.options.pool.release(lease.leaseId, outcome);
	}

	// ---------- absolute-form HTTP ----------

	async #forwardHttp(
		request: IncomingMessage,
		route: GatewayRoute,
	): Promise<{ statusCode: number; headers?: Record<string, string | string[]>; body?: Buffer | string }> {
		let target: URL;
		try {
			target = new URL(request.url ?? "");
		} catch {
			return plain(400, "bad request URL");
		}
		let body: Buffer;
		try {
			body = await readBody(request, this.options.maxReplayBytes);
		} catch (err) {
			return plain(413, (err as Error).message);
		}
		const method = request.method ?? "GET";
		const idempotent = IDEMPOTENT.test(`${method} `);
		const headers: Record<string, string | string[]> = {};
		for (const [k, v] of Object.entries(request.headers)) {
			if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
		}
		headers.host = target.host;
		if (body.length > 0 || !["GET", "HEAD"].includes(method)) headers["content-length"] = String(body.length);

		const tried: string[] = [];
		let last: {
			statusCode: number;
			headers?: Record<string, string | string[]>;
			body?: Buffer | string;
		} | null = null;
		for (let attempt = 0; attempt < this.options.maxAttempts; attempt++) {
			const lease = await this.#lease(target.hostname, route, tried);
			if (!lease) break;
			tried.push(lease.proxy.id);
			const started = performance.now();
			try {
				const res = await this.#viaProxy(lease.proxy, method, target, headers, body);
				const latencyMs = Math.round(performance.now() - started);
				if (
					res.statusCode === 407 ||
					res.statusCode === 502 ||
					(res.statusCode >= 590 && res.statusCode <= 599)
				) {
					const reason =
						res.statusCode === 407 ? "upstream auth failed" : `upstream answered ${res.statusCode}`;
					await this.#release(lease, { ok: false, error: reason });
					this.#attempted("http", attempt, false, reason);
					last = res.statusCode === 407 ? plain(STATUS.AUTH_FAILED, "upstream proxy auth failed") : res;
					continue;
				}
				await this.#release(lease, { ok: true, status: res.statusCode, latencyMs });
				const refused = this.options.banStatuses.includes(res.statusCode);
				this.#attempted("http", attempt, true);
				last = res;
				if (refused && idempotent) continue;
				return res;
			} catch (err) {
				const reason = reasonOf(err);
				await this.#release(lease, { ok: false, error: reason });
				this.#attempted("http", attempt, false, reason);
				last = plain(errorStatus(err), `upstream failed: ${reason}`);
				if (!idempotent && (err as NodeJS.ErrnoException).code !== "ECONNREFUSED") break;
			}
		}
		this.#stats.failures++;
		return last ?? plain(STATUS.GENERIC, `no upstream proxy available for ${target.hostname}`);
	}

	#viaProxy(
		proxy: ProxyEndpoint,
		method: string,
		target: URL,
		headers: Record<string, string | string[]>,
		body: Buffer,
	): Promise<{ statusCode: number; headers: Record<string, string | string[]>; body: Buffer }> {
		const auth = proxyAuthorization(proxy);
		const send = proxy.protocol === "https" ? httpsRequest : httpRequest;
		return new Promise((resolve, reject) => {
			const req = send({
				host: proxy.host,
				port: proxy.port,
				method,
				path: target.href,
				headers: auth ? { ...headers, "proxy-authorization": auth } : headers,
				agent: proxy.protocol === "https" ? this.#httpsAgent : this.#httpAgent,
				timeout: this.options.responseTimeoutMs,
			});
			req.once("timeout", () => req.destroy(new AttemptError(STATUS.TIMEOUT, "upstream timed out")));
			req.once("error", reject);
			req.once("response", (res) => {
				const chunks: Buffer[] = [];
				let size = 0;
				res.on("data", (c: Buffer) => {
					size += c.length;
					if (size > this.options.maxResponseBytes) {
						res.destroy(new AttemptError(STATUS.GENERIC, "answer larger than the gateway buffer"));
						return;
					}
					chunks.push(c);
				});
				res.once("error", reject);
				res.once("aborted", () => reject(new AttemptError(STATUS.RESET, "upstream cut the answer")));
				res.once("end", () => {
					const out: Record<string, string | string[]> = {};
					for (const [k, v] of Object.entries(res.headers as IncomingHttpHeaders)) {
						if (v !== undefined && !HOP_BY_HOP.has(k) && k !== "content-length") out[k] = v;
					}
					const buf = Buffer.concat(chunks);
					out["content-length"] = String(buf.length);
					resolve({ statusCode: res.statusCode ?? 502, headers: out, body: buf });
				});
			});
			req.end(body.length > 0 ? body : undefined);
		});
	}

	// ---------- CONNECT tunnels ----------

	async #tunnel(client: Socket): Promise<void> {
		const target = this.#targets.get(client);
		if (!target) {
			client.destroy();
			return;
		}
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

function plain(statusCode: number, message: string) {
	return { statusCode, headers: { "content-type": "text/plain; charset=utf-8" }, body: message };
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
