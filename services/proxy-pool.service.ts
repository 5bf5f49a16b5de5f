/**
 * proxy-pool: the cluster's upstream proxies (replaces the mubeng sidecar). State that matters to
 * every node (health, bans, leases, sessions, captcha spend) lives in the shared state, so any
 * proxy-pool node answers the same. Domain logic is in src/proxy/; this file maps actions to it.
 *
 * Actions (params → result). No result, log or event ever carries a proxy password.
 *
 * - `acquire` { domain?, session?, exclude?: string[], strategy? }
 *     → { leaseId, proxy: PublicProxy, sticky, proxyUrl: string | null }
 *   Leases one upstream (skipping dead ones, ones `domain` banned, and full ones). `proxyUrl` is the
 *   gateway with the lease pinned (`http://lease.<leaseId>@host:port`): use it as the HTTP proxy
 *   (no password needed; null when the gateway is off). Call `release` when done. Throws
 *   NO_PROXY_AVAILABLE (429) when nothing fits, PROXY_NOT_CONFIGURED (424, permanent) when no proxy
 *   source is configured at all.
 * - `release` { leaseId, ok, status?, latencyMs?, blocked?, error? } → { known, banned }
 *   `ok` = the proxy carried the request (false for refused/reset/timeout/407/502). A 403/429 or
 *   `blocked: true` (captcha/block page) bans the proxy for the lease's domain for the cooldown.
 * - `list` { domain? } → ProxyStatus[] (id, label, state, health, inFlight, uses, bans)
 * - `stats` {} → { total, byState, banned, inFlight, gateway, captcha, lastCheckAt }
 * - `check` { ids?: string[] } → CheckResult[] (active check now, results recorded)
 * - `add` { url } → PublicProxy (shared with every node through the shared state, the URL sealed
 *   with PROXY_SECRETS_KEY when it has a password; 422 without a key on Redis-backed nodes);
 *   `remove` { id } → { removed }; `ban` { id, domain, cooldownS? }; `unban` { id, domain }
 * - `solveCaptcha` { type: recaptcha|hcaptcha|image, sitekey?, pageurl?, body? }
 *     → { id, token, costUsd, shared }  (one solve per challenge cluster-wide; daily budget)
 * - `reportCaptcha` { id, correct } → { reported: true }  (bad tokens are refunded by 2captcha)
 *
 * Gateway (PROXY_GATEWAY_PORT): `http://127.0.0.1:<port>` rotates per request with failover;
 * `http://<session>@127.0.0.1:<port>` keeps a sticky upstream per session key.
 */
import { hostname } from "node:os";
import moleculer, { type ActionSchema, type Context, type ServiceSchema } from "moleculer";
import {
	type AcquireParams,
	type AddParams,
	acquireParams,
	addParams,
	type BanParams,
	banParams,
	type CaptchaChallenge,
	type CheckParams,
	checkParams,
	type ListParams,
	listParams,
	type ReleaseParams,
	type RemoveParams,
	type ReportCaptchaParams,
	releaseParams,
	removeParams,
	reportCaptchaParams,
	solveCaptchaParams,
	type UnbanParams,
	unbanParams,
} from "../src/contracts/proxy-pool.ts";
import { NotConfiguredError } from "../src/core/errors.ts";
import type { ServiceFactory } from "../src/node/context.ts";
import { NoProxyAvailableError } from "../src/proxy/pool.ts";
import { toPublic } from "../src/proxy/proxy-url.ts";
import { ProxyRuntime } from "../src/proxy/runtime.ts";
import { redact } from "../src/utils/redact.ts";

const { MoleculerClientError } = moleculer.Errors;

const M = {
	proxies: "saguaro_proxy_proxies",
	checks: "saguaro_proxy_checks_total",
	bans: "saguaro_proxy_bans_total",
	leases: "saguaro_proxy_leases_total",
	attempts: "saguaro_proxy_gateway_attempts_total",
	solves: "saguaro_captcha_solves_total",
	cost: "saguaro_captcha_cost_usd_total",
} as const;

const STATES = ["unknown", "healthy", "degraded", "dead"] as const;

const proxyPoolService: ServiceFactory = ({ config, state }) => {
	let runtime: ProxyRuntime;
	const advertisedHost =
		config.proxy.gatewayHost === "0.0.0.0" || config.proxy.gatewayHost === "::"
			? hostname()
			: config.proxy.gatewayHost;

	const schema: ServiceSchema = {
		name: "proxy-pool",

		created() {
			const metrics = this.broker.isMetricsEnabled() ? this.broker.metrics : null;
			if (metrics) {
				metrics.register({
					type: "gauge",
					name: M.proxies,
					labelNames: ["state"],
					description: "Proxies by health state",
				});
				metrics.register({
					type: "counter",
					name: M.checks,
					labelNames: ["result"],
					description: "Active health checks",
				});
				metrics.register({ type: "counter", name: M.bans, description: "Per-domain proxy bans recorded" });
				metrics.register({
					type: "counter",
					name: M.leases,
					labelNames: ["result"],
					description: "Proxy leases",
				});
				metrics.register({
					type: "counter",
					name: M.attempts,
					labelNames: ["kind", "result"],
					description: "Gateway upstream attempts (result: ok, failed, failover)",
				});
				metrics.register({
					type: "counter",
					name: M.solves,
					labelNames: ["result"],
					description: "Captcha solves",
				});
				metrics.register({ type: "counter", name: M.cost, description: "Captcha spending, USD" });
			}
			const log = this.logger;
			runtime = new ProxyRuntime(
				config.proxy,
				state,
				config.core.nodeId,
				{ info: (m, e) => log.info(m, redact(e ?? {})), warn: (m, e) => log.warn(m, redact(e ?? {})) },
				{
					onCheck: (results) => {
						for (const r of results)
							metrics?.increment(M.checks, { result: r.targetDown ? "target-down" : r.ok ? "ok" : "failed" });
						void this.updateStateGauge();
					},
					onAttempt: (e) =>
						metrics?.increment(M.attempts, {
							kind: e.kind,
							result: e.ok ? (e.failover ? "failover" : "ok") : "failed",
						}),
					captcha: {
						onSolved: (r) => {
							metrics?.increment(M.solves, { result: "solved" });
							metrics?.increment(M.cost, undefined, r.costUsd);
						},
						onFailed: (code) => metrics?.increment(M.solves, { result: code }),
						onBudgetRefused: () => metrics?.increment(M.solves, { result: "budget" }),
					},
				},
			);
			this.metrics = metrics;
		},

		async started() {
			await runtime.start();
			await this.updateStateGauge();
		},

		async stopped() {
			await runtime.stop();
		},

		methods: {
			async updateStateGauge() {
				if (!this.metrics) return;
				const list = await runtime.pool.status();
				for (const s of STATES)
					this.metrics.set(M.proxies, list.filter((p) => p.state === s).length, { state: s });
			},
		},

		actions: {
			acquire: {
				params: acquireParams,
				async handler(ctx: Context<AcquireParams>) {
					try {
						const lease = await runtime.pool.acquire(ctx.params);
						this.metrics?.increment(M.leases, { result: "acquired" });
						const port = runtime.gateway?.port;
						return {
							leaseId: lease.leaseId,
							proxy: toPublic(lease.proxy),
							sticky: lease.sticky,
							proxyUrl: port ? `http://lease.${lease.leaseId}@${advertisedHost}:${port}` : null,
						};
					} catch (err) {
						if (err instanceof NoProxyAvailableError) {
							this.metrics?.increment(M.leases, { result: "none" });
							// Nothing will ever be in the pool: permanent, and worded as what to set.
							const c = config.proxy;
							if (runtime.pool.proxies().length === 0 && c.proxies.length === 0 && !c.file && !c.listUrl) {
								throw new NotConfiguredError(
									"proxy",
									"no proxy configured: set PROXIES, PROXY_FILE or PROXY_LIST_URL (or MLS_USE_PROXIES=false to reach sites directly)",
								);
							}
							throw new NoProxyAvailableError(err.reason, { domain: ctx.params.domain });
						}
						throw err;
					}
				},
			},

			release: {
				params: releaseParams,
				async handler(ctx: Context<ReleaseParams>) {
					const { leaseId, ...outcome } = ctx.params;
					if (outcome.error) outcome.error = redact(outcome.error);
					const r = await runtime.pool.release(leaseId, outcome);
					if (r.banned) this.metrics?.increment(M.bans);
					return r;
				},
			},

			list: {
				params: listParams,
				async handler(ctx: Context<ListParams>) {
					return redact(await runtime.pool.status(ctx.params.domain));
				},
			},

			stats: {
				async handler() {
					const list = await runtime.pool.status();
					const byState: Record<string, number> = {};
					for (const s of STATES) byState[s] = list.filter((p) => p.state === s).length;
					return {
						total: list.length,
						byState,
						banned: list.filter((p) => p.bans.length > 0).length,
						inFlight: list.reduce((n, p) => n + p.inFlight, 0),
						gateway: runtime.gateway ? { port: runtime.gateway.port, ...runtime.gateway.stats() } : null,
						captcha: runtime.solver
							? {
									protocol: config.proxy.captcha.protocol,
									spentTodayUsd: await runtime.solver.spentToday(),
									budgetUsdPerDay: config.proxy.captcha.budgetUsdPerDay,
								}
							: null,
						lastCheckAt: runtime.lastCheckAt,
					};
				},
			},

			check: withTimeout(0, {
				params: checkParams,
				async handler(ctx: Context<CheckParams>) {
					const results = await runtime.check(ctx.params.ids);
					return redact(results);
				},
			}),

			add: {
				params: addParams,
				async handler(ctx: Context<AddParams>) {
					// A bad URL is a ProxyUrlError (INVALID_PROXY_URL, 422), answered by the middleware.
					return toPublic(await runtime.pool.add(ctx.params.url));
				},
			},

			remove: {
				params: removeParams,
				async handler(ctx: Context<RemoveParams>) {
					return { removed: await runtime.pool.remove(ctx.params.id) };
				},
			},

			ban: {
				params: banParams,
				async handler(ctx: Context<BanParams>) {
					const { id, domain, cooldownS } = ctx.params;
					await runtime.pool.ban(id, domain, "manual", cooldownS ? cooldownS * 1000 : undefined);
					this.metrics?.increment(M.bans);
					return { banned: true };
				},
			},

			unban: {
				params: unbanParams,
				async handler(ctx: Context<UnbanParams>) {
					await runtime.pool.unban(ctx.params.id, ctx.params.domain);
					return { banned: false };
				},
			},

			// Solves take 10-60 s in reality: the action's own limit is the captcha timeout.
			solveCaptcha: withTimeout((config.proxy.captcha.timeoutS + 10) * 1000, {
				params: solveCaptchaParams,
				async handler(ctx: Context<CaptchaChallenge>) {
					if (!runtime.solver)
						throw new MoleculerClientError("CAPTCHA_KEY is not configured", 503, "CAPTCHA_DISABLED");
					// A failed solve is a CaptchaError: the bus-errors middleware answers it by its kind.
					return await runtime.solver.solve(ctx.params);
				},
			}),

			reportCaptcha: {
				params: reportCaptchaParams,
				async handler(ctx: Context<ReportCaptchaParams>) {
					if (!runtime.solver)
						throw new MoleculerClientError("CAPTCHA_KEY is not configured", 503, "CAPTCHA_DISABLED");
					await runtime.solver.report(ctx.params.id, ctx.params.correct);
					return { reported: true };
				},
			},
		},
	};
	return schema;
};

/** Moleculer honours an action's own `timeout` (0 = none); its typings do not declare it. */
function withTimeout<A extends ActionSchema>(timeoutMs: number, action: A): A {
	return Object.assign(action, { timeout: timeoutMs });
}

export default proxyPoolService;
