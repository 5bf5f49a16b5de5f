/**
 * REST gateway (moleculer-web): the dashboard page at `/`, and under `/api` the routes of
 * src/api/routes.ts (properties, jobs, schedules, proxies, sites, nodes). Bearer-token auth per
 * API_AUTH (on when API_TOKENS is set); a per-client rate limit shared by every api node; every answer passes through
 * the redactor so no secret leaves over HTTP. Bodies are bounded in size and depth, errors in size,
 * and a 5xx carries no internals, only a request id (src/api/http-guards.ts). Reads may be retried on
 * another node; writes (POST) are never retried by the gateway: a lost answer must not start a job twice.
 */
import { createHash, randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { CallingOptions, Context, ServiceBroker, ServiceSchema } from "moleculer";
import ApiGateway, { type ApiSettingsSchema, type IncomingRequest } from "moleculer-web";
import type { DataQuality } from "../src/analytics/data-quality.ts";
import { type HostStatusLike, type ProgressLike, ThroughputRecorder } from "../src/analytics/throughput.ts";
import { browserRows, type Call, dataQuality, nodeRows, queues } from "../src/api/composed.ts";
import { DASHBOARD_CSP, DASHBOARD_HTML, dashboardAsset } from "../src/api/dashboard.ts";
import { API_BODY_LIMIT, apiErrorBody, verifyJsonDepth } from "../src/api/http-guards.ts";
import { sharedRateLimitStore } from "../src/api/rate-limit-store.ts";
import { API_ALIASES } from "../src/api/routes.ts";
import { callOrchestrator } from "../src/contracts/orchestrator.ts";
import type { ServiceFactory } from "../src/node/context.ts";
import { redact } from "../src/utils/redact.ts";

/** Rate-limit key of a request: its token (hashed: the key lands in shared state), else its address. */
function clientKey(req: IncomingMessage): string {
	const auth = req.headers.authorization;
	if (auth) return `t:${createHash("sha256").update(auth).digest("hex").slice(0, 24)}`;
	return `a:${req.socket?.remoteAddress ?? "unknown"}`;
}

/** The 404 of a read whose action found nothing (GET /api/properties/<unknown key>, ...). */
function notFound(req: IncomingRequest): Error {
	const path = (req.originalUrl ?? req.url ?? "").split("?")[0] ?? "";
	return new ApiGateway.Errors.NotFoundError("NOT_FOUND", { path: path.slice(0, 200) });
}

/** The token of an Authorization header: the scheme is case-insensitive (RFC 9110 section 11.1). */
export function bearerToken(header: string | undefined): string {
	const m = /^bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? "");
	return m?.[1] ?? "";
}

/** A client's X-Request-ID is kept only when it is a plain short id; else the gateway makes one. */
const REQUEST_ID_SHAPE = /^[A-Za-z0-9._:-]{1,64}$/;

/** The aliases of one kind: reads (GET) or writes (every other method). */
function aliasesWhere(reads: boolean): Record<string, string> {
	return Object.fromEntries(
		Object.entries(API_ALIASES).filter(([path]) => path.startsWith("GET ") === reads),
	);
}

type GatewayThis = { logger: { error(...args: unknown[]): void } };

/**
 * The gateway's settings as moleculer-web reads them: its typings allow only an object for
 * `rootCallOptions`, but it also calls a function there per request with the call's options.
 */
interface GatewaySettings extends Omit<ApiSettingsSchema, "rootCallOptions"> {
	rootCallOptions?: CallingOptions | ((options: CallingOptions) => void);
}

/** What the ApiGateway mixin gives this service's methods. */
interface GatewayMethods {
	sendError(req: IncomingRequest, res: ServerResponse, err: unknown): void;
}

/** How often the api samples job progress and the sites' host state for the throughput chart. */
const SAMPLE_MS = 5000;
/** Data quality is recomputed at most this often (it pages through the stored properties). */
const DATA_QUALITY_TTL_MS = 60_000;
/** Properties data quality looks at, at most (past it the answer says `sampled`). */
const DATA_QUALITY_MAX_ROWS = 50_000;
/** Sites whose host state is sampled: the services offering a polite-host `status`. */
const HOST_SERVICES = ["maricopa", "mls", "llm"];

function brokerCall(broker: ServiceBroker): Call {
	return (action, params, opts) => broker.call(action, params ?? {}, opts);
}

const apiService: ServiceFactory = ({ config, state }) => {
	const tokens = new Set(config.core.apiTokens);
	const throughput = new ThroughputRecorder();
	let sampler: NodeJS.Timeout | null = null;
	let quality: { at: number; value: Promise<DataQuality> } | null = null;
	const apiRoute = {
		path: "/api",
		// API_AUTH (src/config/core.ts): on when asked for, or when tokens are set; off only when said so.
		authorization: config.core.apiAuth,
		mappingPolicy: "restrict",
		// JSON only, bounded in size (413) and depth (400) before it is parsed.
		bodyParsers: { json: { limit: API_BODY_LIMIT, verify: verifyJsonDepth } },
		onAfterCall(_ctx: Context, _route: unknown, req: IncomingRequest, _res: unknown, data: unknown) {
			// A read of something that does not exist (the action answers null): 404, never an empty 200.
			if ((data === null || data === undefined) && req.method === "GET") throw notFound(req);
			// A stream (a photo's bytes) is passed through as it is: there is no JSON to redact.
			if (data instanceof Readable) return data;
			return redact(data);
		},
	} as const;
	const schema: ServiceSchema<GatewaySettings, GatewayMethods> = {
		name: "api",
		mixins: [ApiGateway],
		settings: {
			port: config.core.apiPort,
			ip: "0.0.0.0",
			use: [],
			rateLimit: {
				window: 60_000,
				limit: config.core.apiRatePerMin,
				headers: true,
				key: clientKey,
				StoreFactory: sharedRateLimitStore(state),
			},
			// Called per request (GatewaySettings): a client's request id is kept only when it is plain.
			rootCallOptions(options: CallingOptions) {
				if (options.requestID !== undefined && !REQUEST_ID_SHAPE.test(options.requestID)) {
					delete options.requestID;
				}
			},
			onError(this: GatewayThis, req: IncomingRequest, res: ServerResponse, err: unknown) {
				// Absent on an error before the gateway made the request's context.
				const requestId = req.$ctx?.requestID ?? randomUUID();
				const body = apiErrorBody(err, requestId);
				if (body.code >= 500) {
					const e = err as { name?: string; message?: string; stack?: string; data?: unknown };
					this.logger.error(
						`API ${req.method} ${req.originalUrl ?? req.url} failed (request id ${requestId}): ${e?.name}: ${e?.message}`,
						redact({ stack: e?.stack, data: e?.data }),
					);
				}
				if (res.headersSent) {
					res.end();
					return;
				}
				res.setHeader("Content-Type", "application/json; charset=utf-8");
				res.setHeader("X-Request-ID", requestId);
				res.writeHead(body.code);
				res.end(JSON.stringify(body));
			},
			routes: [
				// Two routes on one path: moleculer-web tells routes apart by name.
				{ ...apiRoute, name: "api-reads", aliases: aliasesWhere(true) },
				{
					...apiRoute,
					name: "api-writes",
					aliases: aliasesWhere(false),
					// A write the gateway retried after a lost answer could start a second job.
					callOptions: { retries: 0 },
					onBeforeCall(_ctx: Context, _route: unknown, req: IncomingRequest) {
						// Jobs started over HTTP say so in their origin, unless the caller named one.
						if (req.$action?.name === "orchestrator.collect" && req.$params && !req.$params.origin) {
							req.$params.origin = "api";
						}
					},
				},
				{
					// The page carries no data (it calls /api with the user's token), so it needs no auth.
					path: "/",
					mappingPolicy: "restrict",
					aliases: { "GET /": "api.dashboard", "GET assets/:name": "api.asset" },
				},
			],
		},
		actions: {
			health: {
				handler(this: { broker: ServiceBroker }) {
					const nodes = this.broker.registry.getNodeList({ onlyAvailable: true });
					return { status: "ok", node: this.broker.nodeID, nodes: nodes.map((n) => n.id) };
				},
			},
			dashboard: {
				visibility: "published",
				handler(ctx: Context<unknown, Record<string, unknown>>) {
					ctx.meta.$responseType = "text/html; charset=utf-8";
					ctx.meta.$responseHeaders = {
						"Content-Security-Policy": DASHBOARD_CSP,
						"X-Content-Type-Options": "nosniff",
						"Cache-Control": "no-cache",
					};
					return DASHBOARD_HTML;
				},
			},
			asset: {
				visibility: "published",
				params: { name: { type: "string", max: 40 } },
				handler(ctx: Context<{ name: string }, Record<string, unknown>>) {
					const asset = dashboardAsset(ctx.params.name);
					if (!asset) throw new ApiGateway.Errors.NotFoundError("NOT_FOUND", { name: ctx.params.name });
					ctx.meta.$responseType = asset.type;
					ctx.meta.$responseHeaders = {
						"X-Content-Type-Options": "nosniff",
						"Cache-Control": "public, max-age=300",
					};
					return asset.body;
				},
			},
			// Analytics and system views composed from other services' actions (src/api/composed.ts).
			throughput: {
				handler() {
					return throughput.snapshot(Date.now());
				},
			},
			dataQuality: {
				async handler(this: { broker: ServiceBroker }) {
					const now = Date.now();
					if (!quality || now - quality.at > DATA_QUALITY_TTL_MS) {
						const value = dataQuality(
							brokerCall(this.broker),
							config.store.pageSizeMax,
							DATA_QUALITY_MAX_ROWS,
						);
						quality = { at: now, value };
						value.catch(() => {
							if (quality?.value === value) quality = null;
						});
					}
					return { ...(await quality.value), computedAt: new Date(quality.at).toISOString() };
				},
			},
			queues: {
				params: { limit: { type: "number", integer: true, min: 1, max: 500, optional: true, convert: true } },
				handler(this: { broker: ServiceBroker }, ctx: Context<{ limit?: number }>) {
					return queues(brokerCall(this.broker), ctx.params.limit ?? 100);
				},
			},
			nodes: {
				handler(this: { broker: ServiceBroker }) {
					return nodeRows(brokerCall(this.broker));
				},
			},
			browsers: {
				handler(this: { broker: ServiceBroker }) {
					return browserRows(brokerCall(this.broker), config.browser.maxRssMb);
				},
			},
		},
		events: {
			// The orchestrator's leader broadcasts each running job's progress about once a second.
			"job.progress"(ctx: Context<ProgressLike>) {
				if (ctx.params && typeof ctx.params.jobId === "string") throughput.observeJob(ctx.params, Date.now());
			},
		},
		started(this: { broker: ServiceBroker }) {
			const broker = this.broker;
			const sample = async () => {
				const now = Date.now();
				const has = (service: string) =>
					broker.registry.getServiceList({ onlyAvailable: true }).some((s) => s.name === service);
				const work: Promise<unknown>[] = [];
				if (has("orchestrator")) {
					work.push(
						callOrchestrator(broker, "orchestrator.list", { limit: 20 }).then((rows) => {
							for (const row of rows) throughput.observeJob(row, now);
						}),
					);
				}
				for (const service of HOST_SERVICES.filter(has)) {
					work.push(
						broker
							.call<HostStatusLike[], object>(`${service}.status`, {}, { timeout: 3000 })
							.then((statuses) => throughput.observeHosts(statuses, now)),
					);
				}
				await Promise.allSettled(work);
			};
			const loop = () => {
				sampler = setTimeout(() => void sample().finally(() => sampler && loop()), SAMPLE_MS);
				sampler.unref();
			};
			void sample();
			loop();
		},
		stopped() {
			if (sampler) clearTimeout(sampler);
			sampler = null;
		},
		methods: {
			// moleculer-web's default logs every 5xx with its stack and then answers; onError does both,
			// with the request id the answer names.
			errorHandler(req: IncomingRequest, res: ServerResponse, err: unknown) {
				this.sendError(req, res, err);
			},
			authorize(_ctx: Context, _route: unknown, req: IncomingRequest) {
				const token = bearerToken(req.headers.authorization);
				if (!tokens.has(token)) {
					throw new ApiGateway.Errors.UnAuthorizedError(
						token ? ApiGateway.Errors.ERR_INVALID_TOKEN : ApiGateway.Errors.ERR_NO_TOKEN,
						null,
					);
				}
			},
		},
	};
	return schema;
};

export default apiService;
