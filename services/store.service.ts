/**
 * The store: `raw` (records as received) and `properties` (one canonical property per parcel,
 * cross-source merge, change history), moleculer-db services on NeDB (embedded) or MongoDB
 * (MONGO_URI). moleculer-db's generic read actions (list, count, ...) stay; its generic writes are
 * switched off so every write goes through the merge rules. Domain logic: src/domain, src/store.
 */
import moleculer, { type Context, type ServiceSchema } from "moleculer";
import DbService, { type DbAdapter, type DbServiceSettings } from "moleculer-db";
import {
	AGES_MAX_IDS,
	INGEST_MAX_RECORDS,
	type IngestOutcome,
	type IngestParams,
	type IngestRecord,
	type IngestResult,
	type RawAgesParams,
	type RoundTrips,
} from "../src/contracts/store.ts";
import {
	DependencyUnavailableError,
	InvalidInputError,
	NotFoundError,
	TransientError,
} from "../src/core/errors.ts";
import { normalizeApn } from "../src/domain/apn.ts";
import { enrichmentContentProps } from "../src/domain/enrichment-input.ts";
import type { PropertyDoc, PropertyEnrichment } from "../src/domain/property.ts";
import {
	assessorParcelSchema,
	LISTING_STATUSES,
	type MergeInput,
	mlsListingSchema,
	PROPERTY_SOURCES,
} from "../src/domain/records.ts";
import { ZIP_PARAM } from "../src/jobs/plan.ts";
import type { NodeContext, ServiceFactory } from "../src/node/context.ts";
import { createStoreAdapter } from "../src/store/adapters.ts";
import type { Query, Tally } from "../src/store/collection.ts";
import { MongoKeyLocks } from "../src/store/key-lock.ts";
import { UnjoinableRecordError, unjoinableReason } from "../src/store/merge-rules.ts";
import { photoIndexService } from "../src/store/photo-index.ts";
import { PropertyStore } from "../src/store/property-store.ts";
import { type RawDoc, type RawItem, RawStore } from "../src/store/raw-store.ts";
import { Validator } from "../src/utils/validator.ts";

const { ValidationError } = moleculer.Errors;

const validator = new Validator({ useNewCustomCheckerFunction: true });
type Check = (value: unknown) => true | { message?: string; field?: string }[] | Promise<unknown>;
const checkRecord: Record<string, Check> = {
	maricopa: validator.compile(assessorParcelSchema as never) as Check,
	mls: validator.compile(mlsListingSchema as never) as Check,
};

/** Counter map of rejected records, cluster-wide: field "<service>.<source>.<reason>". */
export const REJECTED_KEY = "store:rejected";

const isoTime = {
	type: "string",
	pattern: /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/,
} as const;
const rawSource = { type: "string", pattern: /^[a-z][a-z0-9-]{0,39}$/ } as const;

/**
 * A listing `status` filter: one of LISTING_STATUSES in any case (`active` finds `Active`), turned
 * into the stored spelling; anything else is refused with the allowed values.
 */
const statusParam = {
	type: "string",
	max: 40,
	optional: true,
	messages: { listingStatus: "The '{field}' field must be one of: {expected} (any case)." },
	custom(value: unknown, errors: { type: string; expected?: unknown; actual?: unknown }[]) {
		if (value === undefined || value === null) return value;
		const found = LISTING_STATUSES.find((s) => s.toLowerCase() === String(value).trim().toLowerCase());
		if (found) return found;
		errors.push({ type: "listingStatus", expected: LISTING_STATUSES.join(", "), actual: value });
		return value;
	},
};

/** One record of `properties.ingest`, judged on its own (a bad one is rejected, not the call). */
const checkIngestEnvelope = validator.compile({
	source: { type: "enum", values: [...PROPERTY_SOURCES] },
	sourceId: { type: "string", min: 1, max: 100 },
	record: { type: "object" },
	collectedAt: { ...isoTime, optional: true },
	raw: { type: "object", optional: true, props: { source: rawSource, payload: { type: "any" } } },
} as never) as Check;

/** Backend failures that mean "the store cannot be reached now": the whole call is retryable. */
function unavailable(err: unknown): boolean {
	const name = (err as { name?: string } | null)?.name ?? "";
	return /^Mongo.*(Network|ServerSelection|TopologyClosed|NotConnected|PoolCleared|Timeout)/.test(name);
}

/**
 * The database behind the store is unreachable: a retryable 503 marked `upstream`, so callers'
 * breakers do not take this healthy node out (they would keep calls away after the database is
 * back; see countsAsBreakerFailure in moleculer.config.ts), and collectors wait for the store.
 */
function databaseUnreachable(err: unknown): Error {
	return new DependencyUnavailableError("store", `its database is not reachable: ${(err as Error).message}`, {
		upstream: true,
	});
}

/** Every action of the store's services: database outages answered as `databaseUnreachable`. */
const storeErrorHooks = {
	error: {
		"*"(_ctx: Context, err: Error) {
			throw unavailable(err) ? databaseUnreachable(err) : err;
		},
	},
};

/** Highest page number any read accepts (a page past the data answers empty; an absurd one is refused). */
const PAGE_MAX = 1_000_000;

/**
 * moleculer-db's generic reads (list, count, find) stay for the REPL and scripts, validated like the
 * REST routes: `query` only names the given fields, each a plain value (no operators, no raw query
 * objects), no search (a regex over the whole collection) nor populate, bounded paging, a plain sort.
 * (moleculer-db's own definitions are merged under these, so each rule here replaces its one.)
 */
function guardedReads(queryProps: Record<string, unknown>, pageSizeMax: number) {
	const forbidden = { type: "forbidden" };
	const common = {
		query: { type: "object", optional: true, strict: true, props: queryProps },
		search: forbidden,
		iSearch: forbidden,
		searchFields: forbidden,
	};
	const sort = {
		type: "string",
		optional: true,
		pattern: /^-?[A-Za-z_][\w.]{0,39}([ ,]+-?[A-Za-z_][\w.]{0,39}){0,3}$/,
	};
	const count = (max: number) => ({
		type: "number",
		integer: true,
		min: 0,
		max,
		optional: true,
		convert: true,
	});
	return {
		list: {
			cache: false,
			params: {
				...common,
				populate: forbidden,
				page: { ...count(PAGE_MAX), min: 1 },
				pageSize: count(pageSizeMax),
				sort,
			},
		},
		count: { cache: false, params: common },
		find: {
			cache: false,
			params: {
				...common,
				populate: forbidden,
				limit: count(pageSizeMax),
				offset: count(PAGE_MAX * pageSizeMax),
				sort,
			},
		},
	};
}

const PROPERTY_FIELDS_OUT = [
	"_id",
	"key",
	"apn",
	"apnDisplay",
	"street",
	"city",
	"state",
	"zip",
	"addressKey",
	"propertyType",
	"subdivision",
	"mcr",
	"useCode",
	"zoning",
	"isRental",
	"lat",
	"long",
	"lotSize",
	"livableSpace",
	"constructionYear",
	"bathFixtures",
	"pool",
	"garages",
	"carports",
	"exteriorWalls",
	"roofType",
	"owner",
	"valuation",
	"valuations",
	"mlsId",
	"mlsIds",
	"price",
	"status",
	"listDate",
	"beds",
	"fullBaths",
	"halfBaths",
	"sqft",
	"hoaFee",
	"photos",
	"description",
	"listingUrl",
	"sources",
	"version",
	"createdAt",
	"updatedAt",
	"changedAt",
	"enrichment",
	"match",
	"matchLog",
];

/** A property as actions return it: no per-source contributions (internal), history on request. */
function publicProperty(doc: PropertyDoc, withHistory = false): Record<string, unknown> {
	const out: Record<string, unknown> = {};
	for (const f of PROPERTY_FIELDS_OUT) out[f] = (doc as unknown as Record<string, unknown>)[f];
	if (withHistory) out.history = doc.history;
	return out;
}

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
	/** A raw payload the store refuses (null, too large), or null when it is fine. */
	const rawProblem = (payload: unknown): { reason: string; message: string } | null => {
		if (payload === undefined || payload === null)
			return { reason: "empty", message: "raw record has no payload" };
		const bytes = Buffer.byteLength(JSON.stringify(payload));
		if (bytes > config.store.rawMaxBytes)
			return {
				reason: "too-large",
				message: `raw payload is ${bytes} bytes, over STORE_RAW_MAX_BYTES (${config.store.rawMaxBytes})`,
			};
		return null;
	};

	const raw: ServiceSchema<DbServiceSettings> & {
		adapter: unknown;
		afterConnected(this: { adapter: DbAdapter }): Promise<void>;
	} = {
		name: "raw",
		hooks: storeErrorHooks,
		mixins: [DbService as unknown as Partial<ServiceSchema>],
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
					const problem = rawProblem(payload);
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

	const pageParams = {
		page: { type: "number", integer: true, min: 1, max: PAGE_MAX, default: 1, convert: true },
		pageSize: {
			type: "number",
			integer: true,
			min: 1,
			max: config.store.pageSizeMax,
			default: 50,
			convert: true,
		},
	} as const;

	const properties: ServiceSchema<DbServiceSettings> & {
		adapter: unknown;
		afterConnected(this: { adapter: DbAdapter }): Promise<void>;
	} = {
		name: "properties",
		hooks: storeErrorHooks,
		mixins: [DbService as unknown as Partial<ServiceSchema>],
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
				params: {
					source: { type: "enum", values: [...PROPERTY_SOURCES] },
					sourceId: { type: "string", min: 1, max: 100 },
					record: { type: "object" },
					collectedAt: { ...isoTime, optional: true },
				},
				async handler(ctx: Context<MergeInput>) {
					const { source, sourceId, collectedAt } = ctx.params;
					// The validator strips unknown fields in place: work on a copy of the caller's record.
					const record = structuredClone(ctx.params.record);
					const verdict = await checkRecord[source]!(record);
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
					const raws = rawStore().counting([call.raw]);
					const props = propertyStore().counting([call.properties], [call.locks]);
					const now = new Date().toISOString();
					const outcomes: IngestOutcome[] = [];
					const rejected = new Map<string, number>();
					const accepted: { i: number; input: IngestRecord & { collectedAt: string } }[] = [];
					const refuse = (i: number, sourceId: unknown, counter: string, error: string) => {
						outcomes[i] = { sourceId: String(sourceId ?? ""), raw: null, status: "rejected", error };
						rejected.set(counter, (rejected.get(counter) ?? 0) + 1);
					};
					ctx.params.records.forEach((given, i) => {
						const source = PROPERTY_SOURCES.includes(given?.source) ? given.source : "unknown";
						const envelope = checkIngestEnvelope({ ...given });
						if (envelope !== true) {
							const problems = envelope as { message?: string }[];
							refuse(
								i,
								given?.sourceId,
								`properties.${source}.invalid`,
								problems.map((p) => p.message).join("; "),
							);
							return;
						}
						// The validator strips unknown fields in place: work on a copy of the caller's record.
						const record = structuredClone(given.record);
						const verdict = checkRecord[given.source]!(record);
						if (verdict !== true) {
							const problems = verdict as { message?: string }[];
							refuse(
								i,
								given.sourceId,
								`properties.${source}.invalid`,
								`invalid ${source} record ${given.sourceId}: ${problems.map((p) => p.message).join("; ")}`,
							);
							return;
						}
						const unjoinable = unjoinableReason({ source: given.source, record });
						if (unjoinable) {
							refuse(i, given.sourceId, `properties.${source}.unjoinable`, unjoinable);
							return;
						}
						const problem = given.raw ? rawProblem(given.raw.payload) : null;
						if (problem) {
							refuse(i, given.sourceId, `raw.${given.raw!.source}.${problem.reason}`, problem.message);
							return;
						}
						accepted.push({ i, input: { ...given, record, collectedAt: given.collectedAt ?? now } });
					});
					await Promise.all(
						[...rejected].map(([field, n]) => reject(...(field.split(".") as [string, string, string]), n)),
					);
					try {
						const withRaw = accepted.filter(({ input }) => input.raw);
						// Read the raw records first, merge what changed, then write the raw records: a raw
						// record is stored only after its merge, so "unchanged" proves the merge happened
						// (and a GIS row re-read unchanged is not merged over the details merged since).
						const rawPlan = await raws.prepareMany(
							withRaw.map(
								({ input }): RawItem => ({
									source: input.raw!.source,
									sourceId: input.sourceId,
									payload: input.raw!.payload,
									collectedAt: input.collectedAt,
								}),
							),
						);
						const rawStatus = new Map(withRaw.map(({ i }, j) => [i, rawPlan.statuses[j]!]));
						const toMerge = accepted.filter(({ i }) => ctx.params.force || rawStatus.get(i) !== "unchanged");
						const merged = await props.mergeMany(
							toMerge.map(({ input }) => ({
								source: input.source,
								sourceId: input.sourceId,
								record: input.record,
								collectedAt: input.collectedAt,
							})),
						);
						const mergedOf = new Map(toMerge.map(({ i }, j) => [i, merged[j]!]));
						const rawOut = await rawPlan.commit();
						const rawFinal = new Map(withRaw.map(({ i }, j) => [i, rawOut[j]!.status]));
						for (const { i, input } of accepted) {
							const out = mergedOf.get(i);
							outcomes[i] = {
								sourceId: input.sourceId,
								...(out ? { key: out.key } : {}),
								raw: rawFinal.get(i) ?? null,
								status: out?.status ?? "unchanged",
							};
							if (out && (out.changes.length > 0 || out.status === "new")) {
								ctx.emit("properties.changed", { key: out.key, status: out.status, changes: out.changes });
							}
						}
					} catch (err) {
						if (unavailable(err)) throw databaseUnreachable(err);
						throw err;
					}
					return { outcomes, roundTrips: tripsOf(call) };
				},
			},
			setEnrichment: {
				params: {
					key: { type: "string", min: 1, max: 300 },
					expectedInputHash: { type: "string", pattern: /^[0-9a-f]{16,64}$/ },
					enrichment: {
						type: "object",
						strict: "remove",
						props: {
							...enrichmentContentProps,
							processing: {
								type: "object",
								strict: "remove",
								props: {
									llm_model: { type: "string", min: 1, max: 200 },
									tokens_used: { type: "number", integer: true, min: 0 },
									processing_time_ms: { type: "number", integer: true, min: 0 },
									source: { type: "enum", values: ["llm", "cache", "rules"] },
									inputHash: { type: "string", pattern: /^[0-9a-f]{16,64}$/ },
									enrichedAt: isoTime,
								},
							},
						},
					},
				},
				async handler(
					ctx: Context<{ key: string; enrichment: PropertyEnrichment; expectedInputHash: string }>,
				) {
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
					...pageParams,
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
	return [raw, properties, photoIndexService(config, storeErrorHooks)] as unknown as ServiceSchema[];
};

export default storeService;
