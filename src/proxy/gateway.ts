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
 *
 * Modules: this one holds the server, the leases and the socket accounting; gateway-http.ts the
 * absolute-form path, gateway-tunnel.ts the CONNECT path, gateway-core.ts what they share (options,
 * routes, failure statuses, wire helpers).
 */
import { EventEmitter } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { LeaseOutcome } from "../contracts/proxy-pool.ts";
import {
	connectTarget,
	type GatewayContext,
	type GatewayLease,
	type GatewayOptions,
	type GatewayRoute,
	type GatewayStats,
	type ResolvedGatewayOptions,
	routeOf,
} from "./gateway-core.ts";
import { HttpForwarder } from "./gateway-http.ts";
import { TunnelPath } from "./gateway-tunnel.ts";
import { NoProxyAvailableError } from "./pool.ts";

export {
	type GatewayLease,
	type GatewayOptions,
	type GatewayPool,
	type GatewayRoute,
	type GatewayStats,
	parseGatewayUsername,
	usernameOf,
} from "./gateway-core.ts";

export class ProxyGateway {
	readonly options: ResolvedGatewayOptions;
	readonly #server: Server;
	/** Client connections (absolute-form keep-alive and CONNECT tunnels alike). */
	readonly #clients = new Set<Socket>();
	readonly #upstreams = new Set<Socket>();
	readonly #stats = { requests: 0, tunnels: 0, attempts: 0, failovers: 0, failures: 0 };
	readonly #banStatuses: Set<number>;
	readonly #http: HttpForwarder;
	readonly #tunnels: TunnelPath;
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
		// What the two paths (gateway-http.ts, gateway-tunnel.ts) use of the gateway's state.
		const ctx: GatewayContext = {
			options: this.options,
			banStatuses: this.#banStatuses,
			counters: this.#stats,
			lease: (domain, route, tried) => this.#lease(domain, route, tried),
			release: (lease, outcome) => this.#release(lease, outcome),
			attempted: (kind, attempt, ok, reason) => this.#attempted(kind, attempt, ok, reason),
			track: (socket) => this.#track(socket),
		};
		this.#http = new HttpForwarder(ctx);
		this.#tunnels = new TunnelPath(ctx);
		// A plain node:http server: proxy-chain's Server cost about a fifth of the gateway's CPU per
		// request (its handler options, the custom response's header copies) for routing the gateway
		// does itself (profile in bench/proxy-gateway.bench.ts --profile).
		this.#server = createServer({ keepAlive: true });
		this.#server.on("connection", (socket: Socket) => {
			this.#clients.add(socket);
			socket.once("close", () => this.#clients.delete(socket));
		});
		this.#server.on("request", (req: IncomingMessage, res: ServerResponse) => {
			this.#stats.requests++;
			this.#http.forward(req, res).catch(() => res.destroy());
		});
		this.#server.on("connect", (req: IncomingMessage, socket: Socket, head: Buffer) => {
			const target = connectTarget(req.url ?? "");
			if (!target) {
				socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
				return;
			}
			this.#stats.tunnels++;
			const route = routeOf(req.headers["proxy-authorization"]);
			socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
			if (head.length > 0) socket.unshift(head);
			this.#tunnels.open(socket, { ...target, route }).catch(() => socket.destroy());
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
		this.#http.destroy();
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
				? {
						leaseId: route.pinnedLease,
						proxy,
						domain,
						session: null,
						sticky: false,
						slotKey: null,
						pinned: true,
					}
				: null;
		}
		try {
			const session = route.session;
			const lease = (await this.options.pool.acquireHeld(
				session ? { domain, session, exclude: tried } : { domain, exclude: tried },
			)) as GatewayLease;
			// The pool's answer is this call's own object: marked rather than copied.
			lease.pinned = false;
			return lease;
		} catch (err) {
			if (err instanceof NoProxyAvailableError) return null;
			throw err;
		}
	}

	/** Pinned leases belong to whoever took them with `acquire`: they release (and report) them. */
	async #release(lease: GatewayLease, outcome: LeaseOutcome): Promise<void> {
		if (!lease.pinned) await this.options.pool.releaseHeld(lease, outcome);
	}
}
