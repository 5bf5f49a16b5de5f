/**
 * A farm of upstream HTTP proxies plus the provider that lists them (contracts/proxies.md).
 *
 * Each proxy is a real proxy-chain `Server` on 127.0.0.1 that requires its own username/password
 * and stamps forwarded requests with `X-Sandbox-Exit-IP: 203.0.113.N`, so the sandbox sites can
 * apply per-IP limits and bans as real sites do. Two paths carry the stamp:
 *
 * - absolute-form proxying (`GET http://host/path`), what Chromium and curl do for http:// URLs: the
 *   header is added to the forwarded request;
 * - CONNECT tunnels, what undici's ProxyAgent does by default even for http:// URLs: the first bytes
 *   inside the tunnel are peeked; plain HTTP is routed through a per-proxy loopback relay that adds
 *   the header and forwards to the CONNECT target. TLS inside a tunnel cannot be stamped (it is
 *   end-to-end encrypted), so it is passed through untouched; the sandbox sites are plain http.
 *
 * Behaviours, per proxy and changeable at run time: `healthy`; `dead` (the listening socket is
 * closed: connection refused); `slow` (added latency per request); `flaky` (a share of requests
 * answered 502 or cut with a TCP reset). Wrong credentials get 407 with Proxy-Authenticate.
 * In-process knobs are on the `ProxyFarm` handle; other processes use the provider's control routes:
 * `GET /__sandbox/farm`, `POST /__sandbox/farm/set {"index":3,"behaviour":"dead"}`,
 * `POST /__sandbox/farm/rotate {"n":1}`.
 */
import {
	createServer,
	type Server as HttpServer,
	request as httpRequest,
	type IncomingMessage,
	type ServerResponse,
} from "node:http";
import { connect as netConnect, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Server as ProxyServer, RequestError } from "proxy-chain";
import { RequestCounters } from "./counters.ts";
import { FaultInjector, type FaultKnobs } from "./faults.ts";
import { type ControlHandler, HttpError, type SimContext, type SimServer, startSimServer } from "./http.ts";
import { Rng } from "./rng.ts";

export type ProxyBehaviour = "healthy" | "dead" | "slow" | "flaky";

/** How a flaky proxy fails: an HTTP 502, a connection reset, or either at random. */
export type FailMode = "502" | "reset" | "mixed";

export type ProxySpec = {
	behaviour: ProxyBehaviour;
	/** Latency added to each request when `slow`. */
	latencyMs: number;
	/** Share of requests (0..1) that fail when `flaky`. */
	failRate: number;
	failMode: FailMode;
	countryCode: string;
};

export type ProxyFarmConfig = {
	host: string;
	/** Proxies in the farm: the provider lists `listed` of them, the rest stand by for rotation. */
	count: number;
	/** How many the provider lists at once (default: all). */
	listed?: number;
	/** Behaviour of proxy i (by farm index); missing entries are healthy. */
	behaviours: ProxyBehaviour[];
	/** Defaults for slow and flaky proxies. */
	slowMs: number;
	flakyRate: number;
	failMode: FailMode;
	/** The provider's API key (`Authorization: Token <key>`). */
	providerKey: string;
	/** Port of the provider list API (0 = free port). */
	providerPort: number;
	/** Faults in front of the provider list API. */
	providerFaults?: Partial<FaultKnobs>;
	seed: number;
};

export const defaultProxyFarmConfig: ProxyFarmConfig = {
	host: "127.0.0.1",
	count: 5,
	behaviours: [],
	slowMs: 1500,
	flakyRate: 0.3,
	failMode: "mixed",
	providerKey: "sbx-webshare-3f9c2a7d51e84b06",
	providerPort: 0,
	seed: 1,
};

export type ProxyCounts = {
	/** HTTP requests seen (forwarded or tunnelled), including failed and unauthenticated ones. */
	requests: number;
	/** CONNECT tunnels opened. */
	connects: number;
	/** Requests passed on to the target with the exit-IP stamp. */
	forwarded: number;
	/** TLS tunnels passed through unstamped. */
	passthrough: number;
	failed502: number;
	resets: number;
	authFailures: number;
};

export type ProxyInfo = {
	index: number;
	exitIp: string;
	host: string;
	port: number;
	username: string;
	password: string;
	/** `http://user:pass@host:port` */
	url: string;
	listed: boolean;
	countryCode: string;
	behaviour: ProxyBehaviour;
	latencyMs: number;
	failRate: number;
	failMode: FailMode;
	counts: ProxyCounts;
};

export type ProxyFarm = {
	/** Snapshot of every proxy in the farm, listed or standing by. */
	proxies(): ProxyInfo[];
	proxy(index: number): ProxyInfo;
	/** URLs with credentials of the proxies the provider currently lists. */
	urls(): string[];
	/** Changes a proxy's behaviour (and optionally its latency/fail knobs) at run time. */
	set(index: number, patch: Partial<Omit<ProxySpec, "countryCode">>): Promise<void>;
	/**
	 * The provider replaces `n` listed proxies (oldest first) by standby ones; the replaced proxies'
	 * credentials are revoked (new ones are issued when they come back), as a provider's replacement
	 * does. With no standby proxy, the same proxies come back at once with new credentials.
	 */
	rotate(n?: number): void;
	/** Base URL of the provider API. */
	providerUrl: string;
	/** `${providerUrl}/api/v2/proxy/list/` (WebShare-shaped JSON, `Authorization: Token <key>`). */
	listUrl: string;
	/** Plain-text list, one proxy URL a line (the key is in the path, as download links carry it). */
	textListUrl: string;
	providerKey: string;
	provider: SimServer;
	totals(): ProxyCounts;
	close(): Promise<void>;
};

type Verdict = "ok" | "502" | "reset";

function emptyCounts(): ProxyCounts {
	return { requests: 0, connects: 0, forwarded: 0, passthrough: 0, failed502: 0, resets: 0, authFailures: 0 };
}

const EXIT_HEADER = "x-sandbox-exit-ip";

/** One upstream proxy: the proxy-chain server, its tunnel gate and its stamping relay. */
class FarmProxy {
	readonly index: number;
	readonly exitIp: string;
	readonly host: string;
	spec: ProxySpec;
	username = "";
	password = "";
	generation = 0;
	listed = false;
	counts = emptyCounts();
	readonly rng: Rng;
	/** proxy-chain servers cannot listen again once closed, so each revival makes a new one. */
	proxy: ProxyServer | null = null;
	/** proxy-chain hands CONNECT sockets here (customConnectServer); we peek and route them. */
	readonly gate: HttpServer;
	/** Loopback relay for plain HTTP inside tunnels: stamps the exit IP and forwards to the target. */
	readonly relay: HttpServer;
	relayPort = 0;
	/** Relay-side remote port -> CONNECT target, so the relay forwards where the client asked. */
	readonly relayTargets = new Map<number, { hostname: string; port: number }>();
	/** CONNECT socket -> target, set by prepareRequestFunction, read by the gate. */
	readonly connectTargets = new WeakMap<object, { hostname: string; port: number }>();
	readonly openSockets = new Set<Socket>();
	running = false;
	port = 0;

	constructor(index: number, host: string, spec: ProxySpec, rng: Rng) {
		this.index = index;
		this.exitIp = `203.0.113.${index + 1}`;
		this.host = host;
		this.spec = spec;
		this.rng = rng;
		this.issueCredentials();
		this.gate = createServer();
		// Not a real HTTP server: only its 'connection' event is used, so drop Node's HTTP parser.
		this.gate.removeAllListeners("connection");
		this.gate.on("connection", (socket: Socket) => this.route(socket));
		this.relay = createServer((req, res) => {
			this.relayRequest(req, res).catch(() => res.destroy());
		});
		this.relay.keepAliveTimeout = 5000;
	}

	get url(): string {
		return `http://${this.username}:${this.password}@${this.host}:${this.port}`;
	}

	issueCredentials(): void {
		this.generation++;
		const alphabet = "abcdefghijkmnopqrstuvwxyz23456789";
		let pw = "";
		for (let i = 0; i < 14; i++) pw += this.rng.pick([...alphabet]);
		this.username = `sbx${this.index + 1}g${this.generation}`;
		this.password = pw;
	}

	async start(): Promise<void> {
		this.relayPort = await new Promise<number>((resolve, reject) => {
			this.relay.once("error", reject);
			this.relay.listen(0, "127.0.0.1", () => {
				const addr = this.relay.address();
				resolve(typeof addr === "object" && addr ? addr.port : 0);
			});
		});
		await this.startListening();
		if (this.spec.behaviour === "dead") await this.stopListening();
	}

	async stopListening(): Promise<void> {
		if (!this.running) return;
		this.running = false;
		await this.proxy?.close(true);
		this.proxy = null;
		for (const s of this.openSockets) s.destroy();
		this.relay.closeAllConnections();
	}

	async startListening(): Promise<void> {
		if (this.running) return;
		const proxy = new ProxyServer({
			// Same port as before (0 the first time), so listed URLs stay valid when a dead proxy comes back.
			port: this.port,
			host: this.host,
			authRealm: "Sandbox Proxy",
			prepareRequestFunction: (opts) => this.prepare(opts),
		});
		// Client-side socket errors (resets we cause, clients hanging up) are expected here.
		proxy.on("requestFailed", () => {});
		await proxy.listen();
		this.proxy = proxy;
		this.port = proxy.port;
		this.running = true;
	}

	async apply(patch: Partial<ProxySpec>): Promise<void> {
		const next = { ...this.spec, ...patch };
		validateSpec(next);
		this.spec = next;
		if (next.behaviour === "dead") await this.stopListening();
		else await this.startListening();
	}

	/** Per-request fate: slow proxies wait, flaky ones fail a share of requests. */
	async verdict(): Promise<Verdict> {
		const { behaviour, latencyMs, failRate, failMode } = this.spec;
		if (behaviour === "slow" && latencyMs > 0) await sleep(latencyMs);
		if (behaviour !== "flaky" || !this.rng.chance(failRate)) return "ok";
		if (failMode === "mixed") return this.rng.chance(0.5) ? "502" : "reset";
		return failMode;
	}

	async prepare(opts: {
		request: IncomingMessage;
		username: string;
		password: string;
		hostname: string;
		port: number;
		isHttp: boolean;
	}) {
		const { request, isHttp } = opts;
		if (isHttp) this.counts.requests++;
		else this.counts.connects++;
		if (opts.username !== this.username || opts.password !== this.password) {
			this.counts.authFailures++;
			return { requestAuthentication: true, failMsg: "Proxy credentials required." };
		}
		if (!isHttp) {
			this.connectTargets.set(request.socket, { hostname: opts.hostname, port: opts.port });
			return { customConnectServer: this.gate };
		}
		const verdict = await this.verdict();
		if (verdict === "reset") {
			this.counts.resets++;
			request.socket.resetAndDestroy();
			// proxy-chain still needs a handler; the socket is already gone.
			return { customResponseFunction: () => ({ statusCode: 502, body: "" }) };
		}
		if (verdict === "502") {
			this.counts.failed502++;
			throw new RequestError("Bad Gateway", 502);
		}
		stampRawHeaders(request, this.exitIp);
		this.counts.forwarded++;
		return {};
	}

	/** Routes a CONNECT tunnel by its first bytes: TLS (0x16) passes through, anything else is HTTP. */
	route(client: Socket): void {
		const target = this.connectTargets.get(client);
		if (!target) {
			client.destroy();
			return;
		}
		this.track(client);
		client.once("data", (first: Buffer) => {
			client.pause();
			const tls = first[0] === 0x16;
			const open = () => {
				const upstream = tls
					? netConnect(target.port, target.hostname)
					: netConnect(this.relayPort, "127.0.0.1");
				this.track(upstream);
				upstream.once("connect", () => {
					if (!tls && upstream.localPort) this.relayTargets.set(upstream.localPort, target);
					upstream.write(first);
					client.pipe(upstream);
					upstream.pipe(client);
					client.resume();
				});
				upstream.on("error", (err: NodeJS.ErrnoException) => {
					if (err.code === "ECONNRESET") client.resetAndDestroy();
					else client.destroy();
				});
				upstream.on("close", () => {
					if (!tls && upstream.localPort) this.relayTargets.delete(upstream.localPort);
					client.destroy();
				});
				client.on("error", () => upstream.destroy());
				client.on("close", () => upstream.destroy());
			};
			if (!tls) {
				open();
				return;
			}
			this.counts.requests++;
			this.verdict().then((v) => {
				if (v === "ok") {
					this.counts.passthrough++;
					open();
				} else {
					// Nothing can be answered inside an established TLS tunnel: both failures are resets.
					this.counts.resets++;
					client.resetAndDestroy();
				}
			});
		});
		client.on("error", () => {});
	}

	track(socket: Socket): void {
		this.openSockets.add(socket);
		socket.once("close", () => this.openSockets.delete(socket));
	}

	/** Plain HTTP from inside a CONNECT tunnel: same fate, stamp and forwarding as absolute-form requests. */
	async relayRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
		this.counts.requests++;
		const target = this.relayTargets.get(req.socket.remotePort ?? -1);
		if (!target) {
			res.writeHead(400, { "content-type": "text/plain" }).end("unknown tunnel");
			return;
		}
		const verdict = await this.verdict();
		if (verdict === "reset") {
			this.counts.resets++;
			req.socket.resetAndDestroy();
			return;
		}
		if (verdict === "502") {
			this.counts.failed502++;
			const body = "Bad Gateway";
			res.writeHead(502, { "content-type": "text/plain", "content-length": Buffer.byteLength(body) });
			res.end(body);
			return;
		}
		const headers: Record<string, string | string[]> = {};
		for (const [k, v] of Object.entries(req.headers))
			if (v !== undefined && k !== EXIT_HEADER) headers[k] = v;
		headers[EXIT_HEADER] = this.exitIp;
		this.counts.forwarded++;
		const upstream = httpRequest(
			{ host: target.hostname, port: target.port, method: req.method, path: req.url, headers },
			(up) => {
				res.writeHead(up.statusCode ?? 502, up.statusMessage, up.rawHeaders);
				up.pipe(res);
			},
		);
		upstream.on("error", () => {
			if (res.headersSent) {
				res.destroy();
				return;
			}
			// proxy-chain's convention for "could not reach the target".
			res.writeHead(502, { "content-type": "text/plain" }).end("Bad Gateway");
		});
		req.pipe(upstream);
	}

	info(): ProxyInfo {
		return {
			index: this.index,
			exitIp: this.exitIp,
			host: this.host,
			port: this.port,
			username: this.username,
			password: this.password,
			url: this.url,
			listed: this.listed,
			countryCode: this.spec.countryCode,
			behaviour: this.spec.behaviour,
			latencyMs: this.spec.latencyMs,
			failRate: this.spec.failRate,
			failMode: this.spec.failMode,
			counts: { ...this.counts },
		};
	}

	async close(): Promise<void> {
		await this.stopListening();
		await new Promise<void>((resolve) => {
			this.relay.close(() => resolve());
			this.relay.closeAllConnections();
		});
	}
}

/** Replaces any client-sent exit-IP header: only the proxy decides where a request comes from. */
function stampRawHeaders(request: IncomingMessage, exitIp: string): void {
	const raw = request.rawHeaders;
	const kept: string[] = [];
	for (let i = 0; i + 1 < raw.length; i += 2) {
		if (raw[i]!.toLowerCase() !== EXIT_HEADER) kept.push(raw[i]!, raw[i + 1]!);
	}
	kept.push("X-Sandbox-Exit-IP", exitIp);
	raw.length = 0;
	raw.push(...kept);
}

const BEHAVIOURS: readonly ProxyBehaviour[] = ["healthy", "dead", "slow", "flaky"];

function validateSpec(s: ProxySpec): void {
	if (!BEHAVIOURS.includes(s.behaviour)) throw new RangeError(`unknown proxy behaviour ${s.behaviour}`);
	if (!(s.latencyMs >= 0)) throw new RangeError("latencyMs must be >= 0");
	if (!(s.failRate >= 0 && s.failRate <= 1)) throw new RangeError("failRate must be within 0..1");
	if (!["502", "reset", "mixed"].includes(s.failMode)) throw new RangeError(`unknown failMode ${s.failMode}`);
}

function validateConfig(c: ProxyFarmConfig): void {
	if (!(Number.isInteger(c.count) && c.count >= 1 && c.count <= 254))
		throw new RangeError("proxy farm count must be 1..254 (one 203.0.113.N exit IP each)");
	const listed = c.listed ?? c.count;
	if (!(Number.isInteger(listed) && listed >= 1 && listed <= c.count))
		throw new RangeError("listed must be 1..count");
	if (c.providerKey.length < 8) throw new RangeError("providerKey must be at least 8 characters");
}

/** Starts the proxies and the provider list API. */
export async function startProxyFarm(options: Partial<ProxyFarmConfig> = {}): Promise<ProxyFarm> {
	const config: ProxyFarmConfig = { ...defaultProxyFarmConfig, ...options };
	validateConfig(config);
	const rng = new Rng(config.seed);
	const farm: FarmProxy[] = [];
	for (let i = 0; i < config.count; i++) {
		const spec: ProxySpec = {
			behaviour: config.behaviours[i] ?? "healthy",
			latencyMs: config.slowMs,
			failRate: config.flakyRate,
			failMode: config.failMode,
			countryCode: "US",
		};
		validateSpec(spec);
		farm.push(new FarmProxy(i, config.host, spec, rng.fork(`proxy-${i}`)));
	}
	try {
		await Promise.all(farm.map((p) => p.start()));
	} catch (err) {
		await Promise.all(farm.map((p) => p.close()));
		throw err;
	}
	// The listed set in provider order; rotation takes from the front and appends at the back.
	let listed = farm.slice(0, config.listed ?? config.count);
	for (const p of listed) p.listed = true;
	const listedAt = new Map<FarmProxy, string>();
	const stampListed = () => {
		const now = new Date().toISOString();
		for (const p of listed) if (!listedAt.has(p)) listedAt.set(p, now);
	};
	stampListed();

	const get = (index: number): FarmProxy => {
		const p = farm[index];
		if (!p) throw new RangeError(`no proxy ${index} (farm has ${farm.length})`);
		return p;
	};

	const rotate = (n = 1): void => {
		if (!(Number.isInteger(n) && n >= 1)) throw new RangeError("rotate(n) needs an integer n >= 1");
		const count = Math.min(n, listed.length);
		const out = listed.slice(0, count);
		const standby = farm.filter((p) => !p.listed);
		const incoming = standby.slice(0, count);
		for (const p of out) {
			p.listed = false;
			listedAt.delete(p);
			p.issueCredentials();
		}
		// Without enough standby proxies the replaced ones return (with their new credentials).
		const refill = [...incoming, ...out].slice(0, count);
		for (const p of refill) p.listed = true;
		listed = [...listed.slice(count), ...refill];
		stampListed();
	};

	const totals = (): ProxyCounts => {
		const t = emptyCounts();
		for (const p of farm) for (const k of Object.keys(t) as (keyof ProxyCounts)[]) t[k] += p.counts[k];
		return t;
	};

	// Knobs for other processes (the demo runs the sandbox in its own process).
	const control: Record<string, ControlHandler> = {
		"GET farm": () => ({ proxies: farm.map((p) => p.info()), totals: totals() }),
		"POST farm/set": async ({ body }) => {
			const b = (body ?? {}) as { index?: unknown } & Partial<ProxySpec>;
			if (typeof b.index !== "number") throw new HttpError(400, "index (number) is required");
			const { index, ...patch } = b;
			try {
				await get(index).apply(patch);
			} catch (err) {
				throw new HttpError(400, (err as Error).message);
			}
			return get(index).info();
		},
		"POST farm/rotate": ({ body }) => {
			const n = (body as { n?: unknown } | undefined)?.n ?? 1;
			if (typeof n !== "number") throw new HttpError(400, "n must be a number");
			try {
				rotate(n);
			} catch (err) {
				throw new HttpError(400, (err as Error).message);
			}
			return { urls: listed.map((p) => p.url) };
		},
	};

	let provider: SimServer;
	try {
		provider = await startProvider(config, () => listed, listedAt, control);
	} catch (err) {
		await Promise.all(farm.map((p) => p.close()));
		throw err;
	}

	return {
		proxies: () => farm.map((p) => p.info()),
		proxy: (index) => get(index).info(),
		urls: () => listed.map((p) => p.url),
		set: (index, patch) => get(index).apply(patch),
		rotate,
		providerUrl: provider.url,
		listUrl: `${provider.url}/api/v2/proxy/list/`,
		textListUrl: `${provider.url}/api/v2/proxy/list/download/${encodeURIComponent(config.providerKey)}/`,
		providerKey: config.providerKey,
		provider,
		totals,
		async close() {
			await Promise.all([provider.stop(), ...farm.map((p) => p.close())]);
		},
	};
}

/** The provider's list API, shaped like WebShare's (Django REST framework pagination and errors). */
function startProvider(
	config: ProxyFarmConfig,
	listed: () => FarmProxy[],
	listedAt: Map<FarmProxy, string>,
	control: Record<string, ControlHandler>,
): Promise<SimServer> {
	const downloadPrefix = "/api/v2/proxy/list/download/";
	return startSimServer({
		name: "proxy-provider",
		host: config.host,
		port: config.providerPort,
		faults: new FaultInjector(config.providerFaults, config.seed),
		counters: new RequestCounters(),
		classify: (url) => (url.pathname.startsWith(downloadPrefix) ? "download" : "list"),
		control,
		handle(ctx: SimContext) {
			const { url, req } = ctx;
			if (url.pathname.startsWith(downloadPrefix)) {
				const key = decodeURIComponent(url.pathname.slice(downloadPrefix.length).split("/")[0] ?? "");
				if (key !== config.providerKey) {
					ctx.send(401, "Invalid token.\n", { "content-type": "text/plain; charset=utf-8" });
					return;
				}
				const body = listed()
					.map((p) => `${p.url}\n`)
					.join("");
				ctx.send(200, body, { "content-type": "text/plain; charset=utf-8" });
				return;
			}
			if (url.pathname !== "/api/v2/proxy/list/" && url.pathname !== "/api/v2/proxy/list") {
				ctx.json(404, { detail: "Not found." });
				return;
			}
			if (req.method !== "GET") throw new HttpError(405, `Method "${req.method}" not allowed.`);
			const auth = String(req.headers.authorization ?? "");
			if (auth === "") {
				ctx.json(401, { detail: "Authentication credentials were not provided." });
				return;
			}
			if (auth !== `Token ${config.providerKey}`) {
				ctx.json(401, { detail: "Invalid token." });
				return;
			}
			const page = Number(url.searchParams.get("page") ?? "1");
			const pageSize = Math.min(100, Number(url.searchParams.get("page_size") ?? "25"));
			const all = listed();
			if (!(Number.isInteger(pageSize) && pageSize >= 1)) {
				ctx.json(400, { page_size: ["A valid integer is required."] });
				return;
			}
			const pages = Math.max(1, Math.ceil(all.length / pageSize));
			if (!(Number.isInteger(page) && page >= 1 && page <= pages)) {
				ctx.json(404, { detail: "Invalid page." });
				return;
			}
			const base = `http://${req.headers.host ?? `${config.host}`}/api/v2/proxy/list/`;
			const link = (n: number) => `${base}?page=${n}&page_size=${pageSize}`;
			const results = all.slice((page - 1) * pageSize, page * pageSize).map((p) => ({
				id: `d-${p.index + 1}-${p.generation}`,
				username: p.username,
				password: p.password,
				proxy_address: p.host,
				port: p.port,
				// Providers vouch for their list; a dead or flaky proxy is still "valid" until they recheck.
				valid: true,
				last_verification: listedAt.get(p) ?? new Date().toISOString(),
				country_code: p.spec.countryCode,
				city_name: "Phoenix",
				asn_name: "Sandbox Networks",
				asn_number: 64_496,
				high_country_confidence: true,
				created_at: listedAt.get(p) ?? new Date().toISOString(),
			}));
			ctx.json(200, {
				count: all.length,
				next: page < pages ? link(page + 1) : null,
				previous: page > 1 ? link(page - 1) : null,
				results,
			});
		},
	});
}
