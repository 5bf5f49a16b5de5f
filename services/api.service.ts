/**
 * REST gateway (moleculer-web): the dashboard page at `/`, and under `/api` the routes of
 * src/api/routes.ts (properties, jobs, schedules, proxies, sites, nodes). Bearer-token auth when
 * API_TOKENS is set; a per-client rate limit shared by every api node; every answer passes through
 * the redactor so no secret leaves over HTTP.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Context, ServiceSchema } from "moleculer";
import ApiGateway, { type ApiSettingsSchema, type IncomingRequest } from "moleculer-web";
import { DASHBOARD_HTML } from "../src/api/dashboard.ts";
import { sharedRateLimitStore } from "../src/api/rate-limit-store.ts";
import { API_ALIASES } from "../src/api/routes.ts";
import type { ServiceFactory } from "../src/node/context.ts";
import { redact } from "../src/utils/redact.ts";

/** Rate-limit key of a request: its token (hashed: the key lands in shared state), else its address. */
function clientKey(req: IncomingMessage): string {
	const auth = req.headers.authorization;
	if (auth) return `t:${createHash("sha256").update(auth).digest("hex").slice(0, 24)}`;
	return `a:${req.socket?.remoteAddress ?? "unknown"}`;
}

const apiService: ServiceFactory = ({ config, state }) => {
	const tokens = new Set(config.core.apiTokens);
	const schema: ServiceSchema<ApiSettingsSchema> = {
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
			routes: [
				{
					path: "/api",
					authorization: tokens.size > 0,
					mappingPolicy: "restrict",
					bodyParsers: { json: { limit: "1mb" } },
					aliases: { ...API_ALIASES },
					onBeforeCall(_ctx: Context, _route: unknown, req: IncomingRequest) {
						// Jobs started over HTTP say so in their origin, unless the caller named one.
						if (req.$action?.name === "orchestrator.collect" && req.$params && !req.$params.origin) {
							req.$params.origin = "api";
						}
					},
					onAfterCall(_ctx: Context, _route: unknown, _req: unknown, _res: unknown, data: unknown) {
						return redact(data);
					},
				},
				{
					// The page carries no data (it calls /api with the user's token), so it needs no auth.
					path: "/",
					mappingPolicy: "restrict",
					aliases: { "GET /": "api.dashboard" },
				},
			],
		},
		actions: {
			health: {
				handler(this: { broker: { nodeID: string; registry: { getNodeList(o: object): unknown[] } } }) {
					const nodes = this.broker.registry.getNodeList({ onlyAvailable: true }) as { id: string }[];
					return { status: "ok", node: this.broker.nodeID, nodes: nodes.map((n) => n.id) };
				},
			},
			dashboard: {
				visibility: "published",
				handler(ctx: Context<unknown, Record<string, unknown>>) {
					ctx.meta.$responseType = "text/html; charset=utf-8";
					ctx.meta.$responseHeaders = {
						"Content-Security-Policy":
							"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
						"X-Content-Type-Options": "nosniff",
					};
					return DASHBOARD_HTML;
				},
			},
		},
		methods: {
			authorize(_ctx: Context, _route: unknown, req: IncomingRequest) {
				const header = req.headers.authorization ?? "";
				const token = header.startsWith("Bearer ") ? header.slice(7) : "";
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
