/**
 * photos: listing photos fetched politely, deduplicated and kept in object storage (issue 18;
 * src/photos/). The photo CDN is one host with a cluster-wide budget, Retry-After pauses and a
 * breaker (polite-host mixin, host "photos-cdn"); requests go through proxy-pool's gateway. The
 * index (which property has which photos, which image each is) lives in the store's `photo-index`
 * service; the bytes in the object store (files under DATA_DIR/photos, or an S3-compatible bucket).
 *
 * Actions:
 * - `collectZip` { zip, jobId?, taskId?, attempt? } -> { items, new, updated, unchanged, requests,
 *   failures, failed, photos: { seen, new, duplicate, exact, near, unchanged, failed, bytes } }: the
 *   photos of every property of the ZIP with a listing (a source: `collect({sources: ["photos"]})`,
 *   or `collect({sources: ["mls"], photos: true})`, which runs it after the ZIP's listings).
 *   `updated` counts duplicates (photos folded onto a stored image), `unchanged` photos stored before.
 * - `collect` { key } -> the same counts for one property
 * - `list` { key } -> { key, photos: [...] } in the listing's order, each with its hashes, size,
 *   source URL, first/last seen, duplicate kind, and `href` (the REST route streaming it)
 * - `object` { key, photoId } -> the photo's bytes as a stream (content type set for the api)
 * - `job` { jobId } -> the job's photo counts (all nodes)
 * - `sweep` { olderThanH? = 24 } -> removes image objects older than that which no index entry names
 *   (left by a worker killed between an object and its index entry); { objects, removed }
 * - `stats` {} -> storage, index counts, this node's counters
 * - `status` {}, `resume` {} -> the CDN host's budget, pause and breaker (polite-host mixin)
 *
 * A job whose new photos pass PHOTOS_WARN_NEW raises `photos.warning` (broadcast) and a log line, once.
 */
import { join } from "node:path";
import type moleculer from "moleculer";
import type { Context } from "moleculer";
import { type PoliteHostSchema, politeHostMixin } from "../mixins/polite-host.mixin.ts";
import {
	type PhotoJobParams,
	type PhotoList,
	type PhotoObjectParams,
	type PropertyKeyParams,
	photoJobParams,
	photoObjectParams,
	propertyKeyParams,
	type SweepParams,
	sweepParams,
} from "../src/contracts/photos.ts";
import { callProxyPool } from "../src/contracts/proxy-pool.ts";
import { callStore, findAfterKey } from "../src/contracts/store.ts";
import { NotFoundError } from "../src/core/errors.ts";
import type { HostPolicy } from "../src/core/host-policy.ts";
import { normalizeApn } from "../src/domain/apn.ts";
import { type CollectZipParams, collectZipParams, runSourceTask } from "../src/jobs/source-contract.ts";
import type { ServiceFactory } from "../src/node/context.ts";
import {
	emptyPhotoCounts,
	type FailedPhoto,
	PhotoCollector,
	type PhotoCounts,
	type PhotoEvent,
	type PhotoIndexPort,
} from "../src/photos/collector.ts";
import { PhotoFetcher } from "../src/photos/fetcher.ts";
import {
	FsObjectStore,
	type ObjectStore,
	S3ObjectStore,
	sweepUnindexed,
} from "../src/photos/object-store.ts";
import { acquireGatewayLease } from "../src/proxy/gateway-lease.ts";
import type { ImageDoc, PhotoDoc } from "../src/store/photo-index.ts";
import { redact } from "../src/utils/redact.ts";

const M = {
	photos: "saguaro_photos_total",
	bytes: "saguaro_photos_bytes_total",
	warnings: "saguaro_photos_job_warnings_total",
} as const;

/** Shared-state counter map of a job's photos (fields of PhotoCounts). */
export const jobCountsKey = (jobId: string) => `photos:job:${jobId}`;
const JOB_COUNT_FIELDS = [
	"seen",
	"new",
	"duplicate",
	"exact",
	"near",
	"unchanged",
	"failed",
	"bytes",
] as const;

/** Properties read per store call while walking a ZIP (whole property rows: kept well under 1 MB). */
const PAGE_SIZE = 25;

const photosService: ServiceFactory = ({ config, state }) => {
	const c = config.photos;
	let policy: HostPolicy;
	let fetcher: PhotoFetcher;
	let objects: ObjectStore;
	let onEvent: (e: PhotoEvent) => void;
	const counts: Record<string, number> = {};
	const cdnHost = new URL(c.cdnUrl).hostname;

	const indexVia = (ctx: Context): PhotoIndexPort => {
		const opts = { timeout: config.store.callTimeoutMs };
		return {
			photos: (key) => ctx.call<PhotoDoc[], object>("photo-index.photos", { key }, opts),
			image: (sha256) => ctx.call<ImageDoc | null, object>("photo-index.image", { sha256 }, opts),
			byBands: (bands) => ctx.call<ImageDoc[], object>("photo-index.byBands", { bands }, opts),
			addImage: (image) =>
				ctx.call<{ image: ImageDoc; created: boolean }, object>("photo-index.addImage", { image }, opts),
			savePhotos: async (photos) => {
				await ctx.call("photo-index.savePhotos", { photos }, opts);
			},
		};
	};

	const collectorFor = (ctx: Context) =>
		new PhotoCollector({
			index: indexVia(ctx),
			objects,
			fetcher,
			state,
			cdnUrl: c.cdnUrl,
			size: c.size,
			maxBytes: c.maxBytes,
			nearDistance: c.nearDistance,
			concurrency: c.concurrency,
			onEvent,
		});

	const schema: PoliteHostSchema = {
		name: "photos",
		mixins: [politeHostMixin(state)],
		dependencies: [],
		created() {
			const broker = this.broker;
			policy = this.createHostPolicy({
				host: "photos-cdn",
				rate: { points: c.ratePerWindow, durationMs: c.rateWindowMs },
				lateToleranceMs: c.rateSlackMs,
				retry: { maxAttempts: c.maxAttempts, baseMs: 250, maxMs: 5000 },
				breaker: c.breaker,
			});
			fetcher = new PhotoFetcher({
				policy,
				timeoutMs: c.timeoutMs,
				maxBytes: c.maxBytes,
				proxies: c.useProxies
					? {
							acquire: (session) => acquireGatewayLease(broker, { domain: cdnHost, session }),
							async release(lease, outcome) {
								await callProxyPool(broker, "proxy-pool.release", {
									leaseId: lease.leaseId,
									...outcome,
									...(outcome.error ? { error: String(redact(outcome.error)).slice(0, 500) } : {}),
								});
							},
						}
					: null,
			});
			objects =
				c.storage === "s3"
					? new S3ObjectStore({ ...c.s3, bucket: c.s3.bucket as string })
					: new FsObjectStore(join(config.core.dataDir, "photos"));
			const metrics = config.core.enableMetrics ? broker.metrics : null;
			if (metrics && !metrics.getMetric(M.photos)) {
				metrics.register({
					type: "counter",
					name: M.photos,
					labelNames: ["outcome"],
					description: "Listing photos by outcome: new, exact, near (duplicates), unchanged, failed",
				});
				metrics.register({ type: "counter", name: M.bytes, description: "Photo bytes downloaded" });
				metrics.register({
					type: "counter",
					name: M.warnings,
					description: "Jobs whose new photos passed PHOTOS_WARN_NEW",
				});
			}
			onEvent = (e) => {
				if (e.type !== "photo") return;
				counts[e.outcome] = (counts[e.outcome] ?? 0) + 1;
				counts.bytes = (counts.bytes ?? 0) + e.bytes;
				metrics?.increment(M.photos, { outcome: e.outcome });
				if (e.bytes > 0) metrics?.increment(M.bytes, {}, e.bytes);
			};
		},
		async started() {
			if (objects instanceof FsObjectStore) {
				const swept = await objects.sweepTemporary().catch(() => 0);
				if (swept > 0)
					this.logger.info(`Photos: removed ${swept} temporary file(s) left by a killed writer.`);
			}
			this.logger.info(`Photos: objects in ${objects.where}`);
		},
		async stopped() {
			await fetcher.close();
			await objects.close();
		},
		actions: {
			collectZip: {
				params: collectZipParams,
				async handler(ctx: Context<CollectZipParams>) {
					const { zip, jobId } = ctx.params;
					return runSourceTask(state, ctx.params, async (signal) => {
						const collector = collectorFor(ctx);
						const total = emptyPhotoCounts();
						const failed: FailedPhoto[] = [];
						const requestsBefore = fetcher.requests;
						let afterKey = "";
						for (;;) {
							signal.throwIfAborted();
							const page = await findAfterKey(
								ctx,
								{ zip, afterKey, pageSize: PAGE_SIZE },
								{ timeout: config.store.callTimeoutMs },
							);
							for (const row of page.rows) {
								if (!row.photos || row.photos.length === 0) continue;
								const one = emptyPhotoCounts();
								try {
									await collector.collectListing(
										{ key: row.key, zip: row.zip ?? zip, photos: row.photos },
										one,
										failed,
										signal,
									);
								} finally {
									addCounts(total, one);
									if (jobId) await jobCounts.call(this, jobId, one);
								}
							}
							if (!page.nextKey) break;
							afterKey = page.nextKey;
						}
						return answerOf(total, failed, fetcher.requests - requestsBefore);
					});
				},
			},
			collect: {
				params: propertyKeyParams,
				async handler(ctx: Context<PropertyKeyParams>) {
					const key = normalizeApn(ctx.params.key) ?? ctx.params.key;
					const row = await callStore(ctx, "properties.get", { key });
					if (!row) throw new NotFoundError(`no property ${key}`);
					const total = emptyPhotoCounts();
					const failed: FailedPhoto[] = [];
					const before = fetcher.requests;
					await collectorFor(ctx).collectListing(
						{ key: row.key, zip: row.zip ?? null, photos: row.photos ?? [] },
						total,
						failed,
					);
					return answerOf(total, failed, fetcher.requests - before);
				},
			},
			list: {
				params: propertyKeyParams,
				async handler(ctx: Context<PropertyKeyParams>): Promise<PhotoList> {
					const key = normalizeApn(ctx.params.key) ?? ctx.params.key;
					const docs = await ctx.call<PhotoDoc[], object>("photo-index.photos", { key });
					return {
						key,
						photos: docs.map((d) => ({
							photoId: d.photoId,
							position: d.position,
							status: d.status,
							sourceUrl: d.sourceUrl,
							size: d.size,
							sha256: d.sha256,
							phash: d.phash,
							bytes: d.bytes,
							width: d.width,
							height: d.height,
							image: d.imageSha256,
							duplicate: d.duplicate,
							distance: d.distance,
							firstSeen: d.firstSeen,
							lastSeen: d.lastSeen,
							failure: d.failure,
							href:
								d.status === "ok"
									? `/api/properties/${encodeURIComponent(key)}/photos/${encodeURIComponent(d.photoId)}`
									: null,
						})),
					};
				},
			},
			object: {
				params: photoObjectParams,
				async handler(ctx: Context<PhotoObjectParams, Record<string, unknown>>) {
					const key = normalizeApn(ctx.params.key) ?? ctx.params.key;
					const doc = await ctx.call<PhotoDoc | null, object>("photo-index.photo", {
						key,
						photoId: ctx.params.photoId,
					});
					if (doc?.status !== "ok" || !doc.imageSha256)
						throw new NotFoundError(`no stored photo ${ctx.params.photoId} of ${key}`);
					const image = await ctx.call<ImageDoc | null, object>("photo-index.image", {
						sha256: doc.imageSha256,
					});
					const obj = image ? await objects.get(image.objectKey) : null;
					if (!image || !obj)
						throw new NotFoundError(`photo ${ctx.params.photoId} is indexed but its object is missing`);
					ctx.meta.$responseType = obj.contentType;
					ctx.meta.$responseHeaders = {
						"Cache-Control": "private, max-age=86400, immutable",
						"Content-Length": String(obj.size),
					};
					return obj.body;
				},
			},
			job: {
				params: photoJobParams,
				async handler(ctx: Context<PhotoJobParams>) {
					const raw = await state.hgetall(jobCountsKey(ctx.params.jobId));
					return {
						jobId: ctx.params.jobId,
						...Object.fromEntries(JOB_COUNT_FIELDS.map((f) => [f, raw[f] ?? 0])),
						warned: (raw.warned ?? 0) > 0,
					};
				},
			},
			sweep: {
				params: sweepParams,
				async handler(ctx: Context<SweepParams>) {
					const r = await sweepUnindexed(
						objects,
						async (sha256) => (await ctx.call("photo-index.image", { sha256 })) !== null,
						(ctx.params.olderThanH ?? 24) * 3_600_000,
					);
					if (r.removed.length > 0)
						this.logger.info(`Photos: swept ${r.removed.length} unindexed object(s).`);
					return { objects: r.objects, removed: r.removed.length, keys: r.removed.slice(0, 100) };
				},
			},
			stats: {
				async handler(ctx: Context) {
					const index = await ctx.call("photo-index.counts", {}).catch(() => null);
					return {
						storage: { kind: objects.kind, where: objects.where },
						size: c.size,
						index,
						counts: { ...counts },
						host: await policy.status(),
					};
				},
			},
		},
	};

	/** Add one listing's counts to the job's (cluster-wide); warn once when its new photos pass the cap. */
	async function jobCounts(
		this: { broker: moleculer.ServiceBroker; logger: { warn(msg: string): void } },
		jobId: string,
		one: PhotoCounts,
	) {
		const key = jobCountsKey(jobId);
		let after = 0;
		for (const f of JOB_COUNT_FIELDS) {
			if (one[f] === 0) continue;
			const v = await state.hincr(key, f, one[f]).catch(() => 0);
			if (f === "new") after = v;
		}
		if (c.warnNew > 0 && one.new > 0 && after > c.warnNew && after - one.new <= c.warnNew) {
			await state.hincr(key, "warned", 1).catch(() => 0);
			const payload = { jobId, newPhotos: after, threshold: c.warnNew };
			this.logger.warn(
				`Photos: job ${jobId} has stored ${after} new photos, past PHOTOS_WARN_NEW (${c.warnNew}): an unexpectedly large batch.`,
			);
			if (config.core.enableMetrics) this.broker.metrics.increment(M.warnings);
			this.broker.broadcast("photos.warning", payload);
		}
	}

	return schema;
};

function addCounts(into: PhotoCounts, add: PhotoCounts): void {
	for (const k of Object.keys(into) as (keyof PhotoCounts)[]) into[k] += add[k];
}

function answerOf(total: PhotoCounts, failed: FailedPhoto[], requests: number) {
	return {
		items: total.seen,
		new: total.new,
		updated: total.duplicate,
		unchanged: total.unchanged,
		requests,
		failures: total.failed,
		failed,
		photos: total,
	};
}

export default photosService;
