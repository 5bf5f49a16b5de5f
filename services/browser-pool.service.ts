/**
 * browser-pool: this node's Playwright Chromium pool (src/browser/pool.ts). Each context is bound to
 * a proxy session leased from proxy-pool; Chromium cannot send proxy credentials unasked, so the
 * lease's gateway URL is fronted by a local unauthenticated proxy-chain endpoint per context.
 * Captchas met in a page are solved through proxy-pool.solveCaptcha.
 *
 * Actions:
 * - `render` { url, session?, domain?, cookies?, waitFor?, extract?, noHtml?, solveCaptchas? }
 *     → { status, url, html (capped at BROWSER_MAX_HTML_KB), truncated, fields, captcha, ms }
 * - `stats` {} → pages, failures by kind, recycles, reclaimed slots, memory per browser
 */
import moleculer, { type Context, type ServiceSchema } from "moleculer";
import { anonymizeProxy, closeAnonymizedProxy } from "proxy-chain";
import {
	BrowserPool,
	type BrowserProxy,
	type BrowserProxyProvider,
	type FailureKind,
	RenderError,
	type RenderParams,
} from "../src/browser/pool.ts";
import { renderParams } from "../src/contracts/browser-pool.ts";
import { callProxyPool } from "../src/contracts/proxy-pool.ts";
import { NotConfiguredError, toBusError } from "../src/core/errors.ts";
import type { ServiceFactory } from "../src/node/context.ts";
import { CHROMIUM_HINT, chromiumProblem } from "../src/node/preflight.ts";
import { acquireGatewayLease } from "../src/proxy/gateway-lease.ts";
import { redact } from "../src/utils/redact.ts";

const { MoleculerRetryableError, MoleculerClientError } = moleculer.Errors;

/** Render failures that are the page's or its proxy's doing, not the browser node's. */
const UPSTREAM_FAILURES = new Set<FailureKind>(["proxy", "navigation", "timeout", "captcha"]);

const M = {
	pages: "saguaro_browser_pages_total",
	failures: "saguaro_browser_failures_total",
	memory: "saguaro_browser_memory_bytes",
	busy: "saguaro_browser_busy_slots",
	recycles: "saguaro_browser_recycles_total",
} as const;

const browserPoolService: ServiceFactory = ({ config }) => {
	const c = config.browser;
	let pool: BrowserPool;
	let metricsTimer: NodeJS.Timeout | null = null;

	const schema: ServiceSchema = {
		name: "browser-pool",
		created() {
			const broker = this.broker;
			const hasProxyPool = () =>
				broker.registry.getServiceList({ onlyAvailable: true }).some((s) => s.name === "proxy-pool");
			const proxies: BrowserProxyProvider = {
				async acquire({ domain, session }) {
					if (!hasProxyPool()) throw new Error("proxy-pool is not available");
					const lease = await acquireGatewayLease(broker, { domain, session });
					const local = await anonymizeProxy({ url: lease.proxyUrl, port: 0 });
					return { leaseId: lease.leaseId, server: local };
				},
				async release(proxy: BrowserProxy, outcome) {
					await closeAnonymizedProxy(proxy.server, true).catch(() => false);
					await callProxyPool(broker, "proxy-pool.release", { leaseId: proxy.leaseId, ...outcome });
				},
			};
			pool = new BrowserPool({
				executablePath: c.chromiumPath,
				browsers: c.browsers,
				contextsPerBrowser: c.contextsPerBrowser,
				recyclePages: c.recyclePages,
				recycleMs: c.recycleMinutes * 60_000,
				maxBrowserBytes: c.maxRssMb * 1024 * 1024,
				pageTimeoutMs: c.pageTimeoutS * 1000,
				blockResources: c.blockResources,
				maxHtmlBytes: c.maxHtmlKb * 1024,
				queueTimeoutMs: c.queueTimeoutS * 1000,
				proxies: config.mls.useProxies ? proxies : null,
				solver: {
					async solve(challenge) {
						return (await callProxyPool(broker, "proxy-pool.solveCaptcha", challenge)).token;
					},
				},
			});
			const metrics = broker.metrics;
			if (metrics && config.core.enableMetrics) {
				metrics.register({ type: "counter", name: M.pages, description: "Pages rendered" });
				metrics.register({
					type: "counter",
					name: M.failures,
					labelNames: ["kind"],
					description: "Failed renders by kind",
				});
				metrics.register({
					type: "gauge",
					name: M.memory,
					description: "Memory (PSS) of this node's browsers",
				});
				metrics.register({ type: "gauge", name: M.busy, description: "Busy page slots" });
				metrics.register({
					type: "gauge",
					name: M.recycles,
					labelNames: ["what"],
					description: "Contexts and browsers replaced",
				});
			}
		},
		started() {
			pool.start();
			const metrics = this.broker.metrics;
			if (metrics && config.core.enableMetrics) {
				metricsTimer = setInterval(() => {
					const s = pool.stats();
					metrics.set(M.memory, s.memoryMb * 1048576);
					metrics.set(M.busy, s.busy);
					metrics.set(M.recycles, s.recycles.contexts, { what: "context" });
					metrics.set(M.recycles, s.recycles.browsers, { what: "browser" });
				}, 5000);
				metricsTimer.unref();
			}
		},
		async stopped() {
			if (metricsTimer) clearInterval(metricsTimer);
			await pool.close();
		},
		actions: {
			render: {
				params: renderParams,
				async handler(ctx: Context<RenderParams>) {
					// No Chromium (or one that does not start) is permanent: said so, never retried.
					const missing = chromiumProblem(c.chromiumPath);
					if (missing) throw toBusError(new NotConfiguredError("browser", `${missing}: ${CHROMIUM_HINT}`));
					try {
						const result = await pool.render(ctx.params);
						this.broker.metrics?.increment(M.pages);
						return result;
					} catch (err) {
						const kind = err instanceof RenderError ? err.kind : "navigation";
						this.broker.metrics?.increment(M.failures, { kind });
						const message = String(redact((err as Error).message));
						// Playwright's launch failed (the executable is not a working Chromium): no retry helps.
						if (/browserType\.launch/.test(message)) {
							throw toBusError(
								new NotConfiguredError("browser", `Chromium at ${c.chromiumPath} does not start: ${message}`),
							);
						}
						if (kind === "queue") throw new MoleculerRetryableError(message, 503, "BROWSER_BUSY", { kind });
						// The site or its proxy failed the page: the node is fine, its breaker must not open.
						const upstream = UPSTREAM_FAILURES.has(kind);
						throw new MoleculerClientError(message, 502, "RENDER_FAILED", { kind, upstream });
					}
				},
			},
			stats: {
				handler() {
					return pool.stats();
				},
			},
		},
	};
	return schema;
};

export default browserPoolService;
