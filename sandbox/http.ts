/**
 * The HTTP skeleton every sandbox simulator shares (node:http, no framework).
 *
 * Per request, in the order a real site behind a CDN would apply them: count it (per client, per
 * route kind), decide a fault, wait the injected latency, answer 429/5xx if the fault says so, else
 * hand over to the simulator's handler. `/__sandbox/*` control routes bypass counting and faults:
 *
 * - `GET  /__sandbox/stats[?windowMs=60000&records=1]` counters (see counters.ts)
 * - `POST /__sandbox/stats/reset`
 * - `GET  /__sandbox/faults` current knobs; `POST /__sandbox/faults` JSON `Partial<FaultKnobs>`
 * - `POST /__sandbox/faults/reset`
 * - plus the simulator's own control routes (`control` option).
 */

import type { IncomingMessage, OutgoingHttpHeaders, Server, ServerResponse } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { RequestCounters } from "./counters.ts";
import { clientIdOf } from "./counters.ts";
import type { FaultDecision, FaultInjector, FaultKnobs } from "./faults.ts";
import { malformBody } from "./faults.ts";

export const CONTROL_PREFIX = "/__sandbox/";

/** An error a handler throws to answer with a given status and JSON message. */
export class HttpError extends Error {
	readonly status: number;
	constructor(status: number, message: string) {
		super(message);
		this.status = status;
	}
}

export interface SendOptions {
	/** Reason phrase, e.g. the Assessor's `[parcel]:Requested content was not found`. */
	statusMessage?: string;
	/** Whether a "malformed" fault may spoil this body (default: true for JSON, false otherwise). */
	malformable?: boolean;
}

export interface SimContext {
	req: IncomingMessage;
	res: ServerResponse;
	url: URL;
	client: string;
	kind: string;
	/** The fault decided for this request: "ok" or "malformed" by the time a handler runs. */
	decision: FaultDecision;
	/** Aborted when the simulator stops, so long waits inside handlers end with it. */
	signal: AbortSignal;
	/** Reads the request body (UTF-8, capped at 5 MB). */
	body(): Promise<string>;
	send(status: number, body: string, headers?: OutgoingHttpHeaders, opts?: SendOptions): void;
	json(status: number, value: unknown, headers?: OutgoingHttpHeaders, opts?: SendOptions): void;
}

export interface ControlRequest {
	req: IncomingMessage;
	url: URL;
	method: string;
	/** Parsed JSON body for POST/PUT (undefined when empty). */
	body: unknown;
}

/** A control route handler returns the JSON to answer with (200), or throws HttpError. */
export type ControlHandler = (c: ControlRequest) => unknown | Promise<unknown>;

export interface SimServerOptions {
	name: string;
	host?: string;
	port?: number;
	faults: FaultInjector;
	counters: RequestCounters;
	/** Route class for counters, e.g. "search" | "parcel" | "other". */
	classify(url: URL, req: IncomingMessage): string;
	handle(ctx: SimContext): void | Promise<void>;
	/** Writes an injected 429 or 5xx; default: a CDN-style HTML page (429 with Retry-After). */
	renderFault?(ctx: SimContext, decision: Extract<FaultDecision, { kind: "rate-limited" | "error" }>): void;
	/** Extra control routes under /__sandbox/, keyed "METHOD path", e.g. "GET truth". */
	control?: Record<string, ControlHandler>;
	/** Who the caller is; default clientIdOf (token, exit IP, remote address). */
	clientOf?(req: IncomingMessage): string;
	/**
	 * "body" (default): a malformed decision spoils the JSON body sent with ctx.json/send.
	 * "manual": the handler reads ctx.decision and spoils what it likes (the LLM spoils the content).
	 */
	malform?: "body" | "manual";
}

export interface SimServer {
	name: string;
	/** Base URL without trailing slash, e.g. http://127.0.0.1:41234 */
	url: string;
	port: number;
	server: Server;
	counters: RequestCounters;
	faults: FaultInjector;
	stop(): Promise<void>;
}

const MAX_BODY = 5 * 1024 * 1024;

export function readBody(req: IncomingMessage, limit = MAX_BODY): Promise<string> {
	return new Promise((resolve, reject) => {
		const chunks: Buffer[] = [];
		let size = 0;
		req.on("data", (c: Buffer) => {
			size += c.length;
			if (size > limit) {
				reject(new HttpError(413, "request body too large"));
				req.destroy();
				return;
			}
			chunks.push(c);
		});
		req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
		req.on("error", reject);
	});
}

function defaultRenderFault(
	ctx: SimContext,
	d: Extract<FaultDecision, { kind: "rate-limited" | "error" }>,
): void {
	if (d.kind === "rate-limited") {
		ctx.send(
			429,
			"<!DOCTYPE html><html><head><title>429 Too Many Requests</title></head><body><h1>Too Many Requests</h1></body></html>",
			{ "content-type": "text/html; charset=UTF-8", "retry-after": String(d.retryAfterS) },
		);
		return;
	}
	ctx.send(
		d.status,
		`<!DOCTYPE html><html><head><title>Error ${d.status}</title></head><body><h1>Error ${d.status}</h1><p>The origin server did not answer in time.</p></body></html>`,
		{ "content-type": "text/html; charset=UTF-8" },
	);
}

/** Starts a simulator on host:port (default 127.0.0.1:0 = a free port). */
export async function startSimServer(opts: SimServerOptions): Promise<SimServer> {
	const abort = new AbortController();
	const { faults, counters } = opts;
	const clientOf = opts.clientOf ?? clientIdOf;
	const renderFault = opts.renderFault ?? defaultRenderFault;
	const malformMode = opts.malform ?? "body";

	const control: Record<string, ControlHandler> = {
		"GET stats": ({ url }) => {
			const windowMs = Number(url.searchParams.get("windowMs") ?? 60_000);
			if (!(windowMs > 0)) throw new HttpError(400, "windowMs must be > 0");
			const stats = counters.stats(windowMs);
			return url.searchParams.get("records") ? { ...stats, records: counters.records() } : stats;
		},
		"POST stats/reset": () => {
			counters.reset();
			return { ok: true };
		},
		"GET faults": () => faults.knobs,
		"POST faults": ({ body }) => {
			if (typeof body !== "object" || body === null)
				throw new HttpError(400, "expected a JSON object of knobs");
			try {
				return faults.set(body as Partial<FaultKnobs>);
			} catch (err) {
				throw new HttpError(400, (err as Error).message);
			}
		},
		"POST faults/reset": () => {
			faults.reset();
			return faults.knobs;
		},
		...opts.control,
	};

	async function handleControl(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
		const method = req.method ?? "GET";
		const route = control[`${method} ${url.pathname.slice(CONTROL_PREFIX.length).replace(/\/$/, "")}`];
		const reply = (status: number, value: unknown) => {
			res.writeHead(status, { "content-type": "application/json" });
			res.end(JSON.stringify(value));
		};
		if (!route) return reply(404, { error: `no control route ${method} ${url.pathname}` });
		try {
			let body: unknown;
			if (method === "POST" || method === "PUT") {
				const text = await readBody(req);
				if (text.trim() !== "") {
					try {
						body = JSON.parse(text);
					} catch {
						throw new HttpError(400, "body is not JSON");
					}
				}
			}
			reply(200, await route({ req, url, method, body }));
		} catch (err) {
			reply(err instanceof HttpError ? err.status : 500, { error: (err as Error).message });
		}
	}

	async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
		const url = new URL(req.url ?? "/", "http://sandbox.local");
		if (url.pathname.startsWith(CONTROL_PREFIX)) return handleControl(req, res, url);

		const client = clientOf(req);
		const kind = opts.classify(url, req);
		const rec = counters.record(client, kind);
		res.on("finish", () => {
			rec.status = res.statusCode;
		});
		const decision = faults.decide(client);

		const ctx: SimContext = {
			req,
			res,
			url,
			client,
			kind,
			decision,
			signal: abort.signal,
			body: () => readBody(req),
			send(status, body, headers = {}, sendOpts = {}) {
				const malformable = sendOpts.malformable ?? false;
				const out =
					malformable && malformMode === "body" && decision.kind === "malformed"
						? malformBody(body, faults.rng)
						: body;
				if (sendOpts.statusMessage !== undefined) res.statusMessage = sendOpts.statusMessage;
				res.writeHead(status, { "content-length": Buffer.byteLength(out), ...headers });
				res.end(out);
			},
			json(status, value, headers = {}, sendOpts = {}) {
				ctx.send(
					status,
					JSON.stringify(value),
					{ "content-type": "application/json; charset=utf-8", ...headers },
					{ malformable: true, ...sendOpts },
				);
			},
		};

		if (decision.delayMs > 0) {
			try {
				await sleep(decision.delayMs, undefined, { signal: abort.signal });
			} catch {
				res.destroy();
				return;
			}
		}
		if (decision.kind === "rate-limited" || decision.kind === "error") return renderFault(ctx, decision);
		try {
			await opts.handle(ctx);
		} catch (err) {
			if (res.headersSent) {
				res.destroy();
				return;
			}
			const status = err instanceof HttpError ? err.status : 500;
			ctx.send(status, JSON.stringify({ error: (err as Error).message }), {
				"content-type": "application/json",
			});
		}
	}

	const server = createServer((req, res) => {
		onRequest(req, res).catch(() => res.destroy());
	});
	await new Promise<void>((resolve, reject) => {
		server.once("error", reject);
		server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => {
			server.off("error", reject);
			resolve();
		});
	});
	const { port, address } = server.address() as AddressInfo;
	let stopped: Promise<void> | undefined;
	return {
		name: opts.name,
		url: `http://${address}:${port}`,
		port,
		server,
		counters,
		faults,
		stop() {
			stopped ??= new Promise<void>((resolve) => {
				abort.abort();
				server.close(() => resolve());
				server.closeAllConnections();
			});
			return stopped;
		},
	};
}
