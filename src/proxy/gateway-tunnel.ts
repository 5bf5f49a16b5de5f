/**
 * The gateway's CONNECT tunnels (what undici and browsers use for https://). The client's bytes are
 * kept until the upstream answers its first byte, so a tunnel that fails before answering (refused,
 * 407, reset during the TLS handshake, a proxy's 502 to plain HTTP) is replayed through another
 * proxy. After the first answer byte the tunnel is committed and piped as is.
 */
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import {
	AttemptError,
	cachedProxyAuthorization,
	customStatus,
	type GatewayContext,
	type GatewayRoute,
	httpStatusOf,
	isProxyFailure,
	reasonOf,
	STATUS,
} from "./gateway-core.ts";
import type { ProxyEndpoint } from "./proxy-url.ts";

export interface TunnelTarget {
	hostname: string;
	port: number;
	route: GatewayRoute;
}

const IDEMPOTENT = /^(GET|HEAD|OPTIONS) /;

export class TunnelPath {
	readonly #ctx: GatewayContext;

	constructor(ctx: GatewayContext) {
		this.#ctx = ctx;
	}

	/** Serves one CONNECT tunnel whose client has been told `200 Connection Established`. */
	async open(client: Socket, target: TunnelTarget): Promise<void> {
		const ctx = this.#ctx;
		const kept: Buffer[] = [];
		let keptBytes = 0;
		let replayable = true;
		let upstream: Socket | null = null;
		let committed = false;
		let clientGone = false;
		client.on("data", (chunk: Buffer) => {
			if (committed) return;
			keptBytes += chunk.length;
			if (keptBytes > ctx.options.maxReplayBytes) replayable = false;
			else kept.push(chunk);
			upstream?.write(chunk);
		});
		client.on("error", () => {});
		client.once("close", () => {
			clientGone = true;
			upstream?.destroy();
		});

		const tried: string[] = [];
		for (let attempt = 0; attempt < ctx.options.maxAttempts && !clientGone; attempt++) {
			const lease = await ctx.lease(target.hostname, target.route, tried);
			if (!lease) break;
			tried.push(lease.proxy.id);
			const started = performance.now();
			let sock: Socket;
			try {
				sock = await this.#openTunnel(lease.proxy, target);
			} catch (err) {
				const reason = reasonOf(err);
				await ctx.release(lease, { ok: false, error: reason });
				ctx.attempted("tunnel", attempt, false, reason);
				continue;
			}
			if (clientGone) {
				sock.destroy();
				await ctx.release(lease, { ok: true });
				return;
			}
			upstream = sock;
			for (const chunk of kept) sock.write(chunk);
			const first = await this.#firstAnswer(sock, client);
			if (first === "client-gone") {
				sock.destroy();
				await ctx.release(lease, { ok: true });
				return;
			}
			const requestHead = kept.length > 0 ? kept[0]!.subarray(0, 16).toString("latin1") : "";
			const plainHttp = kept.length > 0 && kept[0]![0] !== 0x16;
			const canReplay = replayable && (!plainHttp || IDEMPOTENT.test(requestHead));
			if (first instanceof Error) {
				upstream = null;
				sock.destroy();
				const reason = reasonOf(first);
				await ctx.release(lease, { ok: false, error: reason });
				ctx.attempted("tunnel", attempt, false, reason);
				if (canReplay) continue;
				break;
			}
			const status = plainHttp ? httpStatusOf(first) : null;
			const latencyMs = Math.round(performance.now() - started);
			const proxyFailed = isProxyFailure(status);
			const refused = status !== null && ctx.banStatuses.has(status);
			const lastAttempt = attempt + 1 >= ctx.options.maxAttempts;
			if ((proxyFailed || refused) && canReplay && !lastAttempt) {
				upstream = null;
				sock.destroy();
				await ctx.release(
					lease,
					proxyFailed
						? { ok: false, error: `upstream answered ${status}` }
						: { ok: true, status: status!, latencyMs },
				);
				ctx.attempted(
					"tunnel",
					attempt,
					!proxyFailed,
					proxyFailed ? `upstream answered ${status}` : undefined,
				);
				continue;
			}
			// Commit: from here the tunnel is a plain pipe.
			committed = true;
			ctx.attempted("tunnel", attempt, !proxyFailed);
			client.write(first);
			sock.pipe(client);
			client.pipe(sock);
			sock.once("close", () => client.destroy());
			await new Promise<void>((resolve) => {
				if (client.destroyed) resolve();
				else client.once("close", () => resolve());
			});
			sock.destroy();
			await ctx.release(
				lease,
				proxyFailed
					? { ok: false, error: `upstream answered ${status}` }
					: { ok: true, latencyMs, ...(status !== null ? { status } : {}) },
			);
			return;
		}
		ctx.counters.failures++;
		// Plain HTTP still gets an answer saying why; a TLS client just sees the tunnel close.
		if (!clientGone && kept.length > 0 && kept[0]![0] !== 0x16) {
			client.end(customStatus(STATUS.GENERIC, "all upstream proxies failed"));
		} else client.destroy();
	}

	/** TCP (or TLS) to the proxy, `CONNECT host:port`, and its answer; resolves once the tunnel is up. */
	#openTunnel(proxy: ProxyEndpoint, target: TunnelTarget): Promise<Socket> {
		return new Promise((resolve, reject) => {
			const sock = this.#ctx.track(
				proxy.protocol === "https"
					? tlsConnect({ host: proxy.host, port: proxy.port, servername: proxy.host })
					: netConnect(proxy.port, proxy.host),
			);
			const hostPort = `${target.hostname.includes(":") ? `[${target.hostname}]` : target.hostname}:${target.port}`;
			const auth = cachedProxyAuthorization(proxy);
			let head = Buffer.alloc(0);
			const timer = setTimeout(
				() => fail(new AttemptError(STATUS.TIMEOUT, "upstream CONNECT timed out")),
				this.#ctx.options.connectTimeoutMs,
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
				this.#ctx.options.responseTimeoutMs,
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
