/**
 * mls: the Phoenix MLS scraper (src/mls/). HTTP through proxy-pool sessions first, browser-pool for
 * pages whose facts need script, the host's cluster-wide budget and breaker (src/core/host-policy.ts),
 * captcha walls solved through proxy-pool.solveCaptcha. Listings go to the store (`properties.ingest`
 * through the StoreClient): kept raw as received, and merged onto their parcels.
 *
 * Actions:
 * - `searchZip` { zip } → { zip, pages, complete, cards: [{ mlsId, url, address }] }
 * - `listing` { url } → { record, extra, via } (parsed, not stored)
 * - `collectZip` { zip, jobId?, taskId?, attempt?, force? } → { listings, new, updated, unchanged, fresh,
 *   requests, failures, ... } (same shape as maricopa.collectZip: the orchestrator drives both; listings
 *   fetched within MLS_LISTING_MAX_AGE_H are not fetched again unless `force`)
 * - `stats` {} → host policy status and page/captcha counters of this node
 * - `status` {}, `resume` {} → the MLS host's budget, pause and breaker; clear a stop (polite-host mixin)
 */
import { resolve } from "node:path";
import type { Context } from "moleculer";
import { type PoliteHostSchema, politeHostMixin } from "../mixins/polite-host.mixin.ts";
import { callBrowserPool } from "../src/contracts/browser-pool.ts";
import { type ListingParams, listingParams, type SearchZipParams } from "../src/contracts/mls.ts";
import { type ForceParams, forceParams } from "../src/contracts/params.ts";
import { callProxyPool } from "../src/contracts/proxy-pool.ts";
import { notConfiguredOf, PermanentError } from "../src/core/errors.ts";
import type { HostPolicy } from "../src/core/host-policy.ts";
import type { MlsListingRecord } from "../src/domain/records.ts";
import { type CollectZipParams, collectZipParams, runSourceTask } from "../src/jobs/source-contract.ts";
import { loadFieldConfig } from "../src/mls/fields.ts";
import type { FieldValue } from "../src/mls/parser.ts";
import { type ListingSink, MlsScraper, type ProxyProvider, type ScraperEvent } from "../src/mls/scraper.ts";
import type { ServiceFactory } from "../src/node/context.ts";
import { acquireGatewayLease } from "../src/proxy/gateway-lease.ts";
import { StoreClient } from "../src/store/client.ts";
import { redact } from "../src/utils/redact.ts";

const M = {
	pages: "saguaro_mls_pages_total",
	captchas: "saguaro_mls_captchas_total",
	listings: "saguaro_mls_listings_total",
} as const;

/** Shared-state flag of a listing fetched recently (expires after MLS_LISTING_MAX_AGE_H). */
const fetchedKey = (mlsId: string) => `mls:fetched:${mlsId}`;

const mlsService: ServiceFactory = ({ config, state }) => {
	const c = config.mls;
	let scraper: MlsScraper;
	let policy: HostPolicy;
	const counts: Record<string, number> = {};
	const bump = (key: string) => {
		counts[key] = (counts[key] ?? 0) + 1;
	};

	const schema: PoliteHostSchema = {
		name: "mls",
		// Budget, pause and breaker metrics, plus `status` and `resume` actions for the MLS host.
		mixins: [politeHostMixin(state)],
		created() {
			const broker = this.broker;
			const fields = loadFieldConfig(resolve(c.fieldsFile));
			policy = this.createHostPolicy({
				host: "mls",
				rate: { points: c.ratePerMin, durationMs: 60_000 },
				retry: { maxAttempts: c.maxAttempts, baseMs: 250, maxMs: 5000 },
				breaker: c.breaker,
			});
			const proxies: ProxyProvider = {
				acquire: (req) => acquireGatewayLease(broker, req),
				async release(lease, outcome) {
					await callProxyPool(broker, "proxy-pool.release", {
						leaseId: lease.leaseId,
						...outcome,
						...(outcome.error ? { error: String(redact(outcome.error)).slice(0, 500) } : {}),
					});
				},
			};
			const metrics = config.core.enableMetrics ? broker.metrics : null;
			if (metrics) {
				metrics.register({
					type: "counter",
					name: M.pages,
					labelNames: ["via", "verdict"],
					description: "MLS pages by outcome",
				});
				metrics.register({
					type: "counter",
					name: M.captchas,
					labelNames: ["solved"],
					description: "MLS captcha walls",
				});
				metrics.register({
					type: "counter",
					name: M.listings,
					labelNames: ["ok"],
					description: "MLS listings collected or failed",
				});
			}
			const onEvent = (e: ScraperEvent) => {
				if (e.type === "page") {
					bump(`page.${e.via}.${e.verdict}`);
					metrics?.increment(M.pages, { via: e.via, verdict: e.verdict });
				} else if (e.type === "captcha") {
					bump(`captcha.${e.solved ? "solved" : "unsolved"}`);
					metrics?.increment(M.captchas, { solved: String(e.solved) });
				} else {
					bump(`listing.${e.ok ? "ok" : "failed"}`);
					metrics?.increment(M.listings, { ok: String(e.ok) });
				}
			};
			scraper = new MlsScraper({
				baseUrl: c.baseUrl,
				fields,
				policy,
				proxies: c.useProxies ? proxies : null,
				solver: {
					async solve(challenge) {
						return (await callProxyPool(broker, "proxy-pool.solveCaptcha", challenge)).token;
					},
				},
				renderer: c.useBrowser
					? {
							async render(req) {
								return callBrowserPool(broker, "browser-pool.render", req, {
									timeout: (config.browser.pageTimeoutS * 2 + 15 + config.browser.queueTimeoutS) * 1000,
								})
									.then((r) => ({ ...r, html: r.html ?? "" }))
									.catch((err: unknown) => {
										// No Chromium there: a permanent, named failure of the page, not a retry.
										throw notConfiguredOf(err) ?? err;
									});
							},
						}
					: null,
				requestTimeoutMs: c.requestTimeoutS * 1000,
				maxPages: c.maxPages,
				concurrency: c.concurrency,
				captchaBudget: c.captchaBudget,
				onEvent,
			});
		},
		async stopped() {
			await scraper.close();
		},
		actions: {
			searchZip: {
				params: { zip: collectZipParams.zip },
				async handler(ctx: Context<SearchZipParams>) {
					// The work stops when its caller gives up (or the service stops), never runs on unseen.
					return scraper.searchZip(ctx.params.zip, undefined, callerSignal(ctx));
				},
			},
			listing: {
				params: listingParams,
				async handler(ctx: Context<ListingParams>) {
					const url = new URL(ctx.params.url);
					if (url.origin !== new URL(c.baseUrl).origin) {
						throw new PermanentError("url is not on the MLS site (MLS_BASE_URL)", { type: "FOREIGN_URL" });
					}
					return scraper.listing(url.toString(), undefined, callerSignal(ctx));
				},
			},
			collectZip: {
				params: { ...collectZipParams, ...forceParams },
				async handler(ctx: Context<CollectZipParams & ForceParams>) {
					const store = new StoreClient(ctx, config.store.callTimeoutMs);
					const checkFreshness = c.listingMaxAgeMs > 0 && ctx.params.force !== true;
					const sink: ListingSink = {
						// Fetched listings are remembered for MLS_LISTING_MAX_AGE_H (cluster-wide), so a
						// retried task or a second run the same day does not fetch them again.
						...(checkFreshness
							? {
									isFresh: async (mlsId: string) => (await state.get(fetchedKey(mlsId))) !== undefined,
								}
							: {}),
						async save(record: MlsListingRecord, extra: Record<string, FieldValue>) {
							const out = await store.ingestOne({
								source: "mls",
								sourceId: record.mlsId,
								record,
								raw: { source: "mls", payload: { ...record, extra } },
							});
							if (c.listingMaxAgeMs > 0) await state.set(fetchedKey(record.mlsId), true, c.listingMaxAgeMs);
							return out.status;
						},
					};
					return runSourceTask(state, ctx.params, (signal, report) =>
						scraper.collectZip(ctx.params.zip, sink, signal, (r, expect) =>
							report({ ...r, items: r.listings }, expect),
						),
					);
				},
			},
			stats: {
				async handler() {
					return { host: await policy.status(), counts: { ...counts } };
				},
			},
		},
	};
	return schema;
};

/** Aborts when the call's own timeout passes: its caller has given up by then. */
function callerSignal(ctx: Context): AbortSignal | undefined {
	const timeout = Number(ctx.options?.timeout ?? 0);
	return timeout > 0 ? AbortSignal.timeout(timeout) : undefined;
}

export default mlsService;
