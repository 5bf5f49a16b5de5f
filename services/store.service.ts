/**
 * The store: `raw` (records as received) and `properties` (one canonical property per parcel,
 * cross-source merge, change history), moleculer-db services on NeDB (embedded) or MongoDB
 * (MONGO_URI). moleculer-db's generic read actions (list, count, ...) stay; its generic writes are
 * switched off so every write goes through the merge rules. Domain logic: src/domain, src/store.
 */
import moleculer, { type Context } from "moleculer";
import type { DbAdapter } from "moleculer-db";
import {
	AGES_MAX_IDS,
	INGEST_MAX_RECORDS,
	type IngestParams,
	type IngestResult,
	type RawAgesParams,
	type RoundTrips,
	type SetEnrichmentParams,
} from "../src/contracts/store.ts";
import { InvalidInputError, NotFoundError, TransientError } from "../src/core/errors.ts";
import { normalizeApn } from "../src/domain/apn.ts";
import type { PropertyDoc } from "../src/domain/property.ts";
import type { MergeInput } from "../src/domain/records.ts";
import { ZIP_PARAM } from "../src/jobs/plan.ts";
import type { NodeContext, ServiceFactory } from "../src/node/context.ts";
import {
	guardedReads,
	isoTime,
	mergeParams,
	pageParams,
	rawSource,
	setEnrichmentParams,
	statusParam,
} from "../src/store/action-params.ts";
import { createStoreAdapter } from "../src/store/adapters.ts";
import type { Query, Tally } from "../src/store/collection.ts";
import { storeErrorHooks } from "../src/store/database-errors.ts";
import { type DbServiceSchema, dbMixin } from "../src/store/db-mixin.ts";
import { ingestRecords } from "../src/store/ingest.ts";
import { MongoKeyLocks } from "../src/store/key-lock.ts";
import { UnjoinableRecordError } from "../src/store/merge-rules.ts";
import { photoIndexService } from "../src/store/photo-index.ts";
import { PropertyStore } from "../src/store/property-store.ts";
import { PROPERTY_FIELDS_OUT, publicProperty } from "../src/store/property-view.ts";
import { type RawDoc, RawStore } from "../src/store/raw-store.ts";
import { checkRecord, rawProblem } from "../src/store/record-validation.ts";

const { ValidationError } = moleculer.Errors;

/** Counter map of rejected records, cluster-wide: field "<service>.<source>.<reason>". */
export const REJECTED_KEY = "store:rejected";

const storeService: ServiceFactory = ({ config, state }: NodeContext) => {
	// Requests sent to the backend since start, per collection (properties.stats).
	const trips = { raw: { n: 0 }, properties: { n: 0 }, locks: { n: 0 } } satisfies Record<string, Tally>;
	const tripsOf = (t: typeof trips): RoundTrips => ({
		raw: t.raw.n,
		properties: t.properties.n,
		locks: t.locks.n,
		total: t.raw.n + t.properties.n + t.locks.n,
	});
	const rawAdapter = createStoreAdapter<RawDoc>(config, "raw");
	const propAdapter = createStoreAdapter<PropertyDoc>(config, "properties");
	// Set once each service's adapter has connected (moleculer-db's afterConnected hook).
	let rawStoreInstance: RawStore | null = null;
	let propertyStoreInstance: PropertyStore | null = null;
	const rawStore = () => {
		if (!rawStoreInstance)
			throw new TransientError("raw store is not connected yet", {
				type: "STORE_NOT_READY",
				data: { upstream: true },
			});
		return rawStoreInstance;
	};
	const propertyStore = () => {
		if (!propertyStoreInstance)
			throw new TransientError("property store is not connected yet", {
				type: "STORE_NOT_READY",
				data: { upstream: true },
			});
		return propertyStoreInstance;
	};
	const reject = (service: string, source: string, reason: string, by = 1) =>
		state.hincr(REJECTED_KEY, `${service}.${source}.${reason}`, by).catch(() => 0);

	const raw: DbServiceSchema = {
		name: "raw",
		hooks: storeErrorHooks,
		mixins: [dbMixin],
		adapter: rawAdapter.adapter,
		settings: {
			idField: "_id",
			fields: ["_id", "source", "sourceId", "hash", "bytes", "collectedAt", "firstCollectedAt", "revisions"],
		},
		actions: {
			create: false,
			insert: false,
			update: false,
			remove: false,
			// Writes bypass moleculer-db's entity events, so its action cache would serve stale reads
			// (and its cache keys know nothing of this service's own params): reads are not cached.
			get: { cache: false },
			...guardedReads(
				{
					source: { type: "string", pattern: /^[a-z][a-z0-9-]{0,39}$/, optional: true },
					sourceId: { type: "string", min: 1, max: 200, optional: true },
				},
				config.store.pageSizeMax,
			),
			upsertRaw: {
				params: {
					source: rawSource,
					sourceId: { type: "string", min: 1, max: 200 },
					payload: { type: "any" },
					collectedAt: { ...isoTime, optional: true },
				},
				async handler(
					ctx: Context<{ source: string; sourceId: string; payload: unknown; collectedAt?: string }>,
				) {
					const { source, sourceId, payload } = ctx.params;
					const problem = rawProblem(payload, config.store.rawMaxBytes);
					if (problem) {
						await reject("raw", source, problem.reason);
						throw new ValidationError(problem.message, "VALIDATION_ERROR", [{ field: "payload" }]);
					}
					const collectedAt = ctx.params.collectedAt ?? new Date().toISOString();
					return await rawStore().upsert(source, sourceId, payload, collectedAt);
				},
			},
			record: {
				params: { source: "string", sourceId: "string" },
				handler(ctx: Context<{ source: string; sourceId: string }>) {
					return rawStore().get(ctx.params.source, ctx.params.sourceId);
				},
			},
			// When each of these records was last collected ({ sourceId: collectedAt }, stored ones only).
			ages: {
				params: {
					source: rawSource,
					sourceIds: {
						type: "array",
						max: AGES_MAX_IDS,
						items: { type: "string", min: 1, max: 200 },
					},
				},
				handler(ctx: Context<RawAgesParams>) {
					return rawStore().ages(ctx.params.source, ctx.params.sourceIds);
				},
			},
		},
		async afterConnected(this: { adapter: DbAdapter }) {
			const store = new RawStore(rawAdapter.collection(this.adapter));
			await store.ensureIndexes();
			rawStoreInstance = store.counting([trips.raw]);
		},
	};

	const propertyReads = guardedReads(
		{
			key: { type: "string", min: 1, max: 300, optional: true },
			apn: { type: "string", min: 1, max: 40, optional: true },
			zip: { ...ZIP_PARAM, optional: true },
			status: statusParam,
			propertyType: { type: "string", max: 40, optional: true },
			mlsId: { type: "string", max: 40, optional: true },
		},
		config.store.pageSizeMax,
	);

	const properties: DbServiceSchema = {
		name: "properties",
		hooks: storeErrorHooks,
		mixins: [dbMixin],
		adapter: propAdapter.adapter,
		settings: { idField: "_id", fields: PROPERTY_FIELDS_OUT, maxPageSize: config.store.pageSizeMax },
		actions: {
			create: false,
			insert: false,
			update: false,
			remove: false,
			// Not cached (see the raw service), and validated like the REST routes (guardedReads).
			list: propertyReads.list,
			count: propertyReads.count,
			merge: {
				params: mergeParams,
				async handler(ctx: Context<MergeInput>) {
					const { source, sourceId, collectedAt } = ctx.params;
					// The validator strips unknown fields in place: work on a copy of the caller's record.
					const record = structuredClone(ctx.params.record);
					const verdict = await checkRecord[source](record);
					if (verdict !== true) {
						await reject("properties", source, "invalid");
						const problems = verdict as { message?: string }[];
						throw new ValidationError(
							`invalid ${source} record ${sourceId}: ${problems.map((p) => p.message).join("; ")}`,
							"VALIDATION_ERROR",
							problems,
						);
					}
					try {
						const out = await propertyStore().merge({
							source,
							sourceId,
							record,
							collectedAt: collectedAt ?? new Date().toISOString(),
						});
						if (out.changes.length > 0 || out.status === "new") {
							ctx.emit("properties.changed", { key: out.key, status: out.status, changes: out.changes });
						}
						return out;
					} catch (err) {
						if (err instanceof UnjoinableRecordError) {
							await reject("properties", source, "unjoinable");
							throw new UnjoinableRecordError(err.message, { source, sourceId });
						}
						throw err;
					}
				},
			},
			ingest: {
				params: {
					records: { type: "array", min: 1, max: INGEST_MAX_RECORDS, items: { type: "object" } },
					force: { type: "boolean", optional: true },
				},
				async handler(ctx: Context<IngestParams>): Promise<IngestResult> {
					const call = { raw: { n: 0 }, properties: { n: 0 }, locks: { n: 0 } };
					const outcomes = await ingestRecords(ctx.params, {
						raws: rawStore().counting([call.raw]),
						props: propertyStore().counting([call.properties], [call.locks]),
						rawMaxBytes: config.store.rawMaxBytes,
						reject,
						changed: (out) =>
							ctx.emit("properties.changed", { key: out.key, status: out.status, changes: out.changes }),
					});
					return { outcomes, roundTrips: tripsOf(call) };
				},
			},
			setEnrichment: {
				params: setEnrichmentParams,
				async handler(ctx: Context<SetEnrichmentParams>) {
					const { key, enrichment, expectedInputHash } = ctx.params;
					return { key, status: await propertyStore().setEnrichment(key, enrichment, expectedInputHash) };
				},
			},
			// Reconciliation (issue 12): each ZIP's listings put where they belong now — twins folded into
			// their parcel, wrong merges split, unmatched listings retried — history kept; safe beside any
			// merge on any node. `zip` or `zips` (the scheduler gives `zips`).
			reconcile: {
				params: {
					zip: { ...ZIP_PARAM, optional: true },
					zips: { type: "array", optional: true, max: 1000, items: ZIP_PARAM },
					pageSize: { type: "number", integer: true, min: 1, max: 1000, optional: true, convert: true },
				},
				async handler(ctx: Context<{ zip?: string; zips?: string[]; pageSize?: number }>) {
					const zips = [
						...new Set([...(ctx.params.zip ? [ctx.params.zip] : []), ...(ctx.params.zips ?? [])]),
					];
					if (zips.length === 0)
						throw new ValidationError("properties.reconcile needs a zip (or zips)", "VALIDATION_ERROR", [
							{ field: "zip" },
						]);
					// MergeConflictError and LockTimeoutError answer as the taxonomy's transient errors (503).
					const results = [];
					for (const zip of zips) results.push(await propertyStore().reconcileZip(zip, ctx.params.pageSize));
					return {
						zips: results,
						listings: results.reduce((n, r) => n + r.listings, 0),
						moved: results.reduce((n, r) => n + r.moved, 0),
					};
				},
			},
			get: {
				// By canonical key; moleculer-db's `id` (the document _id) still works.
				cache: false,
				params: {
					key: { type: "string", min: 1, max: 300, optional: true },
					id: { type: "string", min: 1, max: 100, optional: true },
					history: { type: "boolean", optional: true, convert: true },
				},
				async handler(ctx: Context<{ key?: string; id?: string; history?: boolean }>) {
					const { key, id } = ctx.params;
					if (!key && !id) {
						throw new ValidationError("properties.get needs a key (or an id)", "VALIDATION_ERROR", [
							{ field: "key" },
						]);
					}
					const doc = key ? await propertyStore().get(key) : await propertyStore().getById(id!);
					return doc ? publicProperty(doc, ctx.params.history ?? false) : null;
				},
			},
			byApn: {
				params: {
					apn: { type: "string", min: 1, max: 40 },
					history: { type: "boolean", optional: true, convert: true },
				},
				async handler(ctx: Context<{ apn: string; history?: boolean }>) {
					const apn = normalizeApn(ctx.params.apn);
					if (!apn)
						throw new InvalidInputError(`'${ctx.params.apn}' is not a parcel number`, {
							type: "INVALID_APN",
						});
					const doc = await propertyStore().get(apn);
					return doc ? publicProperty(doc, ctx.params.history ?? false) : null;
				},
			},
			find: {
				cache: false,
				params: {
					zip: { ...ZIP_PARAM, optional: true },
					status: statusParam,
					changedSince: { ...isoTime, optional: true },
					// Keyset paging ("" = from the start): answers { rows, nextKey } instead of pages;
					// rows written meanwhile never shift a page, unlike `page`. `after` is its REST name.
					afterKey: { type: "string", max: 300, optional: true },
					after: { type: "string", max: 300, optional: true },
					...pageParams(config.store.pageSizeMax),
				},
				async handler(
					ctx: Context<{
						zip?: string;
						status?: string;
						changedSince?: string;
						afterKey?: string;
						after?: string;
						page: number;
						pageSize: number;
					}>,
				) {
					const { zip, status, changedSince, page, pageSize } = ctx.params;
					const afterKey = ctx.params.afterKey ?? ctx.params.after;
					const query: Query = {};
					if (zip) query.zip = zip;
					if (status) query.status = status;
					if (afterKey !== undefined) {
						if (changedSince)
							throw new ValidationError("afterKey pages by key: not with changedSince", "VALIDATION_ERROR", [
								{ field: "afterKey" },
							]);
						const res = await propertyStore().pageAfter(query, afterKey, pageSize);
						return { ...res, rows: res.rows.map((d) => publicProperty(d)) };
					}
					if (changedSince) query.changedAt = { $gte: new Date(changedSince).toISOString() };
					const sort: Record<string, 1 | -1> = changedSince ? { changedAt: 1, key: 1 } : { key: 1 };
					const res = await propertyStore().page(query, page, pageSize, sort);
					return { ...res, rows: res.rows.map((d) => publicProperty(d)) };
				},
			},
			history: {
				params: { key: { type: "string", min: 1, max: 300 } },
				async handler(ctx: Context<{ key: string }>) {
					const key = normalizeApn(ctx.params.key) ?? ctx.params.key;
					const doc = await propertyStore().get(key);
					if (!doc) throw new NotFoundError(`no property ${ctx.params.key}`);
					return { key: doc.key, history: doc.history };
				},
			},
			stats: {
				async handler(ctx: Context) {
					const [propertiesCount, withApn, unmatched, rawCount, rejected] = await Promise.all([
						propertyStore().count(),
						propertyStore().count({ apn: { $ne: null } }),
						propertyStore().count({ "match.method": "unmatched" }),
						ctx.call<number, object>("raw.count", {}),
						state.hgetall(REJECTED_KEY),
					]);
					return {
						backend: propAdapter.kind,
						properties: propertiesCount,
						withApn,
						addressOnly: propertiesCount - withApn,
						// Listings stored under their own key: their address gave no key (match.reason says why).
						unmatched,
						raw: rawCount,
						rejected,
						roundTrips: tripsOf(trips),
					};
				},
			},
		},
		async afterConnected(this: { adapter: DbAdapter }) {
			const locks = propAdapter.locks(this.adapter);
			const store = new PropertyStore(propAdapter.collection(this.adapter), { locks });
			await store.ensureIndexes();
			// Locks left by a store node that was killed mid-merge: gone once expired, not only when met.
			if (locks instanceof MongoKeyLocks) await locks.deleteExpired();
			propertyStoreInstance = store.counting([trips.properties], [trips.locks]);
		},
	};

	// photo-index: listing photos and their stored images (issue 18, src/store/photo-index.ts).
	return [raw, properties, photoIndexService(config, storeErrorHooks)];
};

export default storeService;
