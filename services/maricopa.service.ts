/**
 * maricopa: the Maricopa County Assessor (src/maricopa/). The public GIS layer gives a ZIP's parcels
 * and core facts in bulk, the REST API gives parcel details; each host has its own cluster-wide
 * budget, Retry-After pause, breaker and fatal stop (src/core/host-policy.ts), so every node of the
 * cluster together behaves as one polite client.
 *
 * Actions:
 * - `searchZip` { zip, via?: "gis"|"search", page? } -> one page of a ZIP's parcel list (not stored)
 * - `parcel` { apn, store? } -> { apn, found, record } (stored through the store unless store=false)
 * - `collectZip` { zip, page?, jobId?, taskId?, force? } -> { parcels, new, updated, unchanged,
 *   requests, failures, gaps, storeRoundTrips, expect (page 1), ... } (the orchestrator's source
 *   contract): one GIS page of the ZIP and its details when `page` is given, else the whole ZIP
 * - `status` {} -> both hosts' budget, pause, breaker and stop flag
 * - `resume` {} -> clear a fatal stop (after the token was replaced) and the breakers
 */
import type { Context } from "moleculer";
import { type PoliteHostSchema, politeHostMixin } from "../mixins/polite-host.mixin.ts";
import {
	type ParcelParams,
	parcelParams,
	type SearchZipParams,
	searchZipOptionParams,
} from "../src/contracts/maricopa.ts";
import { type ForceParams, forceParams } from "../src/contracts/params.ts";
import type { IngestOutcome } from "../src/contracts/store.ts";
import { DependencyUnavailableError, PermanentError } from "../src/core/errors.ts";
import type { RequestOutcome } from "../src/core/http.ts";
import { normalizeApn } from "../src/domain/apn.ts";
import type { AssessorParcelRecord } from "../src/domain/records.ts";
import { type CollectZipParams, collectZipParams, runSourceTask } from "../src/jobs/source-contract.ts";
import { MaricopaApiClient, SEARCH_PAGE_SIZE } from "../src/maricopa/api-client.ts";
import { RAW_SOURCE, type StoreGateway, ZipCollector } from "../src/maricopa/collect.ts";
import { GisLayerError, MaricopaGisClient } from "../src/maricopa/gis-client.ts";
import type { RequestTally } from "../src/maricopa/http.ts";
import type { AssessorPropertyType } from "../src/maricopa/normalize.ts";
import type { ServiceFactory } from "../src/node/context.ts";
import { StoreClient } from "../src/store/client.ts";
import { redact } from "../src/utils/redact.ts";

const M = {
	requests: "saguaro_maricopa_requests_total",
} as const;

/** How long collectZip waits for the store's services to be discovered before giving up. */
const STORE_WAIT_MS = 30_000;

const TYPE_OF_SETTING: Record<string, AssessorPropertyType> = {
	residential: "RESIDENTIAL",
	commercial: "COMMERCIAL",
	vacant: "VACANT LAND",
};

const maricopaService: ServiceFactory = ({ config, state }) => {
	const c = config.maricopa;
	let api: MaricopaApiClient;
	let gis: MaricopaGisClient;

	const storeVia = (ctx: Context): StoreGateway => {
		const store = new StoreClient(ctx, config.store.callTimeoutMs);
		return {
			ingest: (records, force) => store.ingest(records, force),
			detailAges: (apns) => store.ages(RAW_SOURCE.parcel, apns),
		};
	};

	const schema: PoliteHostSchema = {
		name: "maricopa",
		mixins: [politeHostMixin(state)],
		created() {
			const broker = this.broker;
			const metrics = config.core.enableMetrics ? broker.metrics : null;
			if (metrics) {
				metrics.register({
					type: "counter",
					name: M.requests,
					labelNames: ["host", "endpoint", "outcome"],
					description: "Assessor HTTP requests by outcome",
				});
			}
			const onRequest = (host: string) => (endpoint: string, outcome: RequestOutcome) =>
				metrics?.increment(M.requests, { host, endpoint, outcome });
			const policyFor = (host: string, points: number) =>
				this.createHostPolicy({
					host,
					rate: { points, durationMs: c.rateWindowMs },
					lateToleranceMs: c.rateSlackMs,
					retry: { maxAttempts: c.maxAttempts, baseMs: c.backoffBaseMs, maxMs: c.backoffMaxMs },
					breaker: c.breaker,
				});
			const apiPolicy = policyFor("maricopa-api", c.ratePerWindow);
			const gisPolicy = policyFor("maricopa-gis", c.gisRatePerWindow);
			api = new MaricopaApiClient({
				baseUrl: c.baseUrl,
				token: c.token,
				timeoutMs: c.timeoutMs,
				policy: apiPolicy,
				onRequest: onRequest("maricopa-api"),
			});
			gis = new MaricopaGisClient({
				queryUrl: c.gisUrl,
				pageSize: c.gisPageSize,
				fields: c.gisFields,
				timeoutMs: c.timeoutMs,
				policy: gisPolicy,
				onRequest: onRequest("maricopa-gis"),
			});
		},
		started() {
			// Check the configured GIS field names against the layer now, so a mismatch is in the log
			// at start rather than found by the first job (which checks again and reports it).
			void gis.checkLayer().then(
				(check) => {
					if (check.missing.length > 0)
						this.logger.warn(
							`GIS layer lacks ${check.missing.map((m) => `${m.field} (${m.fact})`).join(", ")}: those facts are gaps; see MARICOPA_GIS_FIELDS.`,
						);
				},
				(err: unknown) => {
					const message = String(redact((err as Error).message));
					if (err instanceof GisLayerError) this.logger.error(`GIS layer check: ${message}`);
					else this.logger.info(`GIS layer not checked yet (${message}); the first page checks it.`);
				},
			);
		},
		actions: {
			searchZip: {
				params: { zip: collectZipParams.zip, ...searchZipOptionParams },
				async handler(ctx: Context<SearchZipParams>) {
					const { zip, via, page } = ctx.params;
					const tally: RequestTally = { bulk: 0, detail: 0 };
					if (via === "gis") {
						const offset = (page - 1) * c.gisPageSize;
						const res = await gis.query(`PHYSICAL_ZIP='${zip}'`, offset, tally);
						return {
							zip,
							via,
							page,
							more: res.exceededTransferLimit,
							parcels: res.rows.map((r) => slim(r.record)),
							requests: tally.bulk,
						};
					}
					const res = await api.searchPage(zip, page, tally);
					return {
						zip,
						via,
						page,
						total: res.total,
						more: page * SEARCH_PAGE_SIZE < res.total,
						parcels: res.rows.map((r) => slim(r.record)),
						requests: tally.bulk,
					};
				},
			},
			parcel: {
				params: parcelParams,
				async handler(ctx: Context<ParcelParams>) {
					const apn = normalizeApn(ctx.params.apn);
					if (!apn)
						throw new PermanentError(`'${ctx.params.apn}' is not a parcel number`, { type: "INVALID_APN" });
					const tally: RequestTally = { bulk: 0, detail: 0 };
					const detail = await api.parcel(apn, tally);
					if (!detail) return { apn, found: false, record: null, stored: false, requests: tally.detail };
					// Without a bulk row the address comes from its sub-resource (the detail's line is ambiguous).
					const address = await api.parcelAddress(apn, tally);
					const record: AssessorParcelRecord = address ? { ...detail.record, address } : detail.record;
					let stored: IngestOutcome["status"] | false = false;
					if (ctx.params.store) {
						const out = await new StoreClient(ctx, config.store.callTimeoutMs).ingestOne({
							source: "maricopa",
							sourceId: apn,
							record,
							raw: { source: RAW_SOURCE.parcel, payload: detail.raw },
						});
						stored = out.status;
					}
					return { apn, found: true, record, stored, requests: tally.detail };
				},
			},
			collectZip: {
				params: { ...collectZipParams, ...forceParams },
				async handler(ctx: Context<CollectZipParams & ForceParams>) {
					// No request is spent on parcels that could not be stored.
					await this.broker.waitForServices(["raw", "properties"], STORE_WAIT_MS).catch(() => {
						throw new DependencyUnavailableError("store", "the store (raw, properties) is not reachable");
					});
					const collector = new ZipCollector(api, gis, storeVia(ctx));
					const page = ctx.params.page;
					return runSourceTask(state, ctx.params, (signal, report) => {
						const opts = {
							zip: ctx.params.zip,
							detailTypes: c.propertyTypes.map((t) => TYPE_OF_SETTING[t]!),
							detailMaxAgeMs: c.detailMaxAgeMs,
							concurrency: c.concurrency,
							detailBatch: c.detailBatch,
							force: ctx.params.force ?? false,
							signal,
						};
						// A page reports its parcels as they are done (job progress, and a cancelled task's counts).
						return page
							? collector.collectPage({ ...opts, page, onProgress: report })
							: collector.collectZip(opts);
					});
				},
			},
			// `status` and `resume` come from the polite-host mixin.
		},
	};
	return schema;
};

function slim(r: AssessorParcelRecord) {
	return {
		apn: r.apn,
		propertyType: r.propertyType ?? null,
		street: r.address?.street ?? null,
		city: r.address?.city ?? null,
		zip: r.address?.zip ?? null,
	};
}

export default maricopaService;
