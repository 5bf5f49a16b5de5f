/**
 * REST gateway (moleculer-web): health, cluster overview and, as areas land, their REST routes.
 * Bearer-token auth when API_TOKENS is set; a per-client rate limit shared by every api node;
 * every answer passes through the redactor so no secret leaves over HTTP.
 */
import type { Context, ServiceSchema } from "moleculer";
import ApiGateway, { type ApiSettingsSchema } from "moleculer-web";
import { sharedRateLimitStore } from "../src/api/rate-limit-store.ts";
import type { ServiceFactory } from "../src/node/context.ts";
import { redact } from "../src/utils/redact.ts";

interface IncomingRequest {
	headers: Record<string, string | undefined>;
	$route?: unknown;
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
				limit: 600,
				headers: true,
				// Per token when authenticated, else per client address.
				key: (req) => req.headers.authorization ?? req.socket?.remoteAddress ?? "unknown",
				StoreFactory: sharedRateLimitStore(state),
			},
			routes: [
				{
					path: "/api",
					authorization: tokens.size > 0,
					mappingPolicy: "restrict",
					bodyParsers: { json: { limit: "1mb" } },
					aliases: {
						"GET health": "api.health",
						"GET nodes": "$node.list",
						"GET services": "$node.services",
					},
					onAfterCall(_ctx: Context, _route: unknown, _req: unknown, _res: unknown, data: unknown) {
						return redact(data);
					},
				},
			],
		},
		actions: {
			health: {
				rest: "GET /health",
				handler(this: { broker: { nodeID: string; registry: { getNodeList(o: object): unknown[] } } }) {
					const nodes = this.broker.registry.getNodeList({ onlyAvailable: true }) as { id: string }[];
					return { status: "ok", node: this.broker.nodeID, nodes: nodes.map((n) => n.id) };
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
