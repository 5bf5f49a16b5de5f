/**
 * What the gateway's parts share: its options and stats, the route a client picks through the proxy
 * username, the context the HTTP and CONNECT paths run in (src/proxy/gateway.ts implements it), the
 * failure statuses and the small parsers of the wire. See gateway.ts for the whole picture.
 */
import type { ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { AcquireParams, LeaseOutcome } from "../contracts/proxy-pool.ts";
import { redactString } from "../utils/redact.ts";
import type { HeldLease } from "./pool.ts";
import { type ProxyEndpoint, proxyAuthorization } from "./proxy-url.ts";

/** What the gateway needs from the pool (the ProxyPool; a bare stand-in in the bench). */
export interface GatewayPool {
	/** A lease the gateway holds for one request or tunnel and gives back itself. */
	acquireHeld(req: AcquireParams): Promise<HeldLease>;
	releaseHeld(lease: HeldLease, outcome: LeaseOutcome): Promise<unknown>;
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

export type ResolvedGatewayOptions = Required<Omit<GatewayOptions, "onAttempt">> &
	Pick<GatewayOptions, "onAttempt">;

export interface GatewayStats {
	requests: number;
	tunnels: number;
	attempts: number;
	failovers: number;
	failures: number;
	/** Client connections plus upstream sockets opened by the gateway. */
	openSockets: number;
}

export type GatewayLease = HeldLease & { pinned: boolean };

/** What the absolute-form and CONNECT paths use of the gateway (ProxyGateway implements it). */
export interface GatewayContext {
	readonly options: ResolvedGatewayOptions;
	readonly banStatuses: ReadonlySet<number>;
	readonly counters: Omit<GatewayStats, "openSockets">;
	/** A lease for `domain` on the route, not one of `tried`; null when none is left. */
	lease(domain: string, route: GatewayRoute, tried: string[]): Promise<GatewayLease | null>;
	/** Gives a lease back with its outcome (pinned leases are their holder's to release). */
	release(lease: GatewayLease, outcome: LeaseOutcome): Promise<void>;
	/** Counts one upstream attempt (and reports it to onAttempt). */
	attempted(kind: "http" | "tunnel", attempt: number, ok: boolean, reason?: string): void;
	/** Adds an upstream socket the gateway opened to the accounting (until it closes). */
	track(socket: Socket): Socket;
}

export function parseGatewayUsername(username: string | undefined): GatewayRoute {
	const name = username ? decodeURIComponent(username) : "";
	if (name.startsWith("lease.")) return { session: null, pinnedLease: name.slice("lease.".length) };
	return { session: name || null, pinnedLease: null };
}

/** The route of a request without a Proxy-Authorization header (the common case): rotate. */
export const ROTATE: GatewayRoute = Object.freeze({ session: null, pinnedLease: null });

/** The route a `Proxy-Authorization` header asks for. */
export function routeOf(header: string | undefined): GatewayRoute {
	return header === undefined ? ROTATE : parseGatewayUsername(usernameOf(header));
}

/** The username of a `Proxy-Authorization: Basic …` header (the route), or undefined. */
export function usernameOf(header: string | undefined): string | undefined {
	if (!header || !/^basic /i.test(header)) return undefined;
	const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
	const colon = decoded.indexOf(":");
	return colon < 0 ? decoded : decoded.slice(0, colon);
}

/** proxy-chain's statuses for upstream failures (statuses.ts), used for the final answer. */
export const STATUS = {
	NON_200: 590,
	REFUSED: 594,
	RESET: 595,
	AUTH_FAILED: 597,
	GENERIC: 599,
	TIMEOUT: 504,
} as const;

export class AttemptError extends Error {
	readonly status: number;
	constructor(status: number, message: string) {
		super(message);
		this.status = status;
	}
}

export function errorStatus(err: unknown): number {
	if (err instanceof AttemptError) return err.status;
	const code = (err as NodeJS.ErrnoException)?.code;
	if (code === "ECONNREFUSED") return STATUS.REFUSED;
	if (code === "ECONNRESET" || code === "EPIPE") return STATUS.RESET;
	if (code === "ETIMEDOUT") return STATUS.TIMEOUT;
	return STATUS.GENERIC;
}

export function reasonOf(err: unknown): string {
	const e = err as NodeJS.ErrnoException;
	return redactString(e?.code ?? e?.message ?? String(err)).slice(0, 200);
}

/** A proxy failure rather than an answer of the site: 502 and proxy-chain's 59x. */
export function isProxyFailure(status: number | null): boolean {
	return status === 502 || (status !== null && status >= 590 && status <= 599);
}

/**
 * The upstream's Proxy-Authorization value, encoded once per endpoint rather than on every request
 * (keyed by the endpoint and checked against its URL, which carries the credentials).
 */
const authCache = new WeakMap<ProxyEndpoint, { url: string; auth: string | null }>();
export function cachedProxyAuthorization(proxy: ProxyEndpoint): string | null {
	const hit = authCache.get(proxy);
	if (hit !== undefined && hit.url === proxy.url) return hit.auth;
	const auth = proxyAuthorization(proxy);
	authCache.set(proxy, { url: proxy.url, auth });
	return auth;
}

export function httpStatusOf(buf: Buffer): number | null {
	const m = /^HTTP\/\d(?:\.\d)? (\d{3})/.exec(buf.subarray(0, 32).toString("latin1"));
	return m ? Number(m[1]) : null;
}

/** `host:port` of a CONNECT request (IPv6 in brackets), or null. */
export function connectTarget(authority: string): { hostname: string; port: number } | null {
	const m = /^(?:\[([^\]]+)\]|([^:/\s]+)):(\d{1,5})$/.exec(authority);
	if (!m) return null;
	const port = Number(m[3]);
	return port > 0 && port < 65536 ? { hostname: (m[1] ?? m[2]) as string, port } : null;
}

export function sendPlain(response: ServerResponse, statusCode: number, message: string): void {
	response.writeHead(statusCode, {
		"content-type": "text/plain; charset=utf-8",
		"content-length": Buffer.byteLength(message),
	});
	response.end(message);
}

export function customStatus(status: number, message: string): string {
	return `HTTP/1.1 ${status} Upstream Error\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`;
}
