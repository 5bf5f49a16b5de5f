/**
 * Collecting the Assessor's parcels of a ZIP, a page at a time: a page of the GIS layer (at most
 * about 1,000 parcels with their core facts; the REST search, 25 a page, when the layer fails),
 * written to the store in a few batched calls, then REST parcel details for the configured property
 * types (and for parcels whose type the layer does not say), written in batches too.
 *
 * Page 1 also counts the ZIP's parcels, so the orchestrator plans the other pages as tasks of their
 * own: N workers share one ZIP, and a lost task redoes one page.
 *
 * Incremental, with its state in the store (nothing per parcel in the shared state): the raw store
 * recognizes a GIS row whose content is unchanged, and the raw REST detail's collectedAt is the age
 * of a parcel's details. A parcel whose bulk facts are unchanged keeps its details until they are
 * older than `detailMaxAgeMs`.
 *
 * Every write is an upsert keyed by (source, sourceId) and by the property key, so a re-run or a
 * retried page never duplicates. A store that cannot be reached fails the page (the orchestrator
 * retries it), never records one by one.
 */
import type { IngestOutcome, IngestRecord, IngestResult, MergeVerdict } from "../contracts/store.ts";
import { DependencyUnavailableError } from "../core/errors.ts";
import { HostFatalError, HostRequestError } from "../core/host-policy.ts";
import type { AssessorParcelRecord } from "../domain/records.ts";
import { sleep } from "../utils/time.ts";
import type { MaricopaApiClient } from "./api-client.ts";
import { addPage, type CollectResult, combine, emptyResult, fail, finishCounts } from "./collect-result.ts";
import type { MaricopaGisClient } from "./gis-client.ts";
import type { RequestTally } from "./http.ts";
import type { AssessorPropertyType } from "./normalize.ts";

export type { CollectResult, ParcelFailure } from "./collect-result.ts";

/** The store as the collector needs it (the service wires it to `properties.ingest` and `raw.ages`). */
export interface StoreGateway {
	/**
	 * Raw payloads and their merges, in input order (the gateway splits what does not fit one call);
	 * a record whose raw payload is unchanged is not merged again unless `force`.
	 */
	ingest(records: IngestRecord[], force?: boolean): Promise<IngestResult>;
	/** When each parcel's raw REST details were stored (absent: never). */
	detailAges(apns: string[]): Promise<Record<string, string>>;
}

/** Raw-record sources: the bulk rows and the REST details are kept apart as received. */
export const RAW_SOURCE = { gis: "maricopa-gis", search: "maricopa-search", parcel: "maricopa" } as const;

export interface BulkParcel {
	apn: string;
	propertyType: AssessorPropertyType | null;
	record: AssessorParcelRecord;
	raw: unknown;
}

export interface CollectOptions {
	zip: string;
	/** Upper-case Assessor types whose REST details are fetched (and parcels of unknown type). */
	detailTypes: AssessorPropertyType[];
	detailMaxAgeMs: number;
	/** Detail requests in flight (the host budget paces them cluster-wide). */
	concurrency: number;
	/** Details written to the store at once (MARICOPA_DETAIL_BATCH); default 50. */
	detailBatch?: number;
	/** Ignore the incremental state: write and fetch everything. */
	force?: boolean;
	signal?: AbortSignal;
	/**
	 * collectPage: the parcels done so far (bulk facts stored, and details when due) and the ZIP's
	 * size once known (page 1), after the bulk write and after each detail batch.
	 */
	onProgress?: (
		soFar: {
			items: number;
			new: number;
			updated: number;
			unchanged: number;
			requests: number;
			failures: number;
		},
		expectItems: number | null,
	) => void;
	/** Internal: APNs whose details were just written. */
	onStored?: (apns: string[]) => void;
}

/**
 * Details are written in batches of `detailBatch` (one store call each), or what was fetched in the
 * last DETAIL_FLUSH_MS, whichever comes first: a page retried after a fault fetches again only
 * what was not yet written, however slow the budget makes the page.
 */
const DETAIL_FLUSH_MS = 2000;
/** How long a page waits for an unreachable store before it gives up (and is retried later). */
const STORE_OUTAGE_WAIT_MS = 120_000;
/** A parcel's detail fetch is tried again this many times within the task after its retries failed. */
const DETAIL_PASSES = 2;

export class ZipCollector {
	readonly #api: MaricopaApiClient;
	readonly #gis: MaricopaGisClient;
	readonly #store: StoreGateway;

	constructor(api: MaricopaApiClient, gis: MaricopaGisClient, store: StoreGateway) {
		this.#api = api;
		this.#gis = gis;
		this.#store = store;
	}

	/** Every page of the REST search for a ZIP (25 a page), rows of other ZIPs dropped. */
	async searchZip(zip: string, tally: RequestTally, signal?: AbortSignal): Promise<BulkParcel[]> {
		const first = await this.#api.searchPage(zip, 1, tally, signal);
		const pages = [first];
		const pageCount = Math.ceil(first.total / 25);
		for (let page = 2; page <= pageCount; page++)
			pages.push(await this.#api.searchPage(zip, page, tally, signal));
		const seen = new Set<string>();
		const out: BulkParcel[] = [];
		for (const row of pages.flatMap((p) => p.rows)) {
			const rowZip = row.record.address?.zip;
			if (seen.has(row.apn) || (rowZip && rowZip !== zip)) continue;
			seen.add(row.apn);
			out.push({ apn: row.apn, propertyType: row.propertyType, record: row.record, raw: row.record });
		}
		return out;
	}

	/** A whole ZIP: page 1, then the pages it reported, one after the other. */
	async collectZip(opts: CollectOptions): Promise<CollectResult> {
		const total = await this.collectPage({ ...opts, page: 1 });
		const pages = total.expect?.pages ?? 1;
		for (let page = 2; page <= pages; page++) {
			addPage(total, await this.collectPage({ ...opts, page }));
		}
		total.page = null;
		return finishCounts(total);
	}

	/** One page of a ZIP; page 1 sizes the ZIP (`expect`). */
	async collectPage(opts: CollectOptions & { page: number }): Promise<CollectResult> {
		const started = Date.now();
		const tally: RequestTally = { bulk: 0, detail: 0 };
		const result = emptyResult(opts.zip, opts.page, tally);
		// One fatal answer stops every worker of this page at once (the policy stops the other nodes).
		const stop = new AbortController();
		const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
		const parcels = await this.#listPage(opts.zip, opts.page, tally, result, signal);
		result.parcels = parcels.length;

		// 1. The page's bulk facts, in batched writes.
		const collectedAt = new Date().toISOString();
		const rawSource = result.bulkSource === "search" ? RAW_SOURCE.search : RAW_SOURCE.gis;
		const bulk = await this.#ingest(
			parcels.map((p) => ({
				source: "maricopa",
				sourceId: p.apn,
				record: p.record,
				collectedAt,
				raw: { source: rawSource, payload: p.raw },
			})),
			result,
			opts.force,
			signal,
		);
		const status = new Map<string, MergeVerdict>();
		const changed = new Set<string>();
		for (const [i, out] of bulk.entries()) {
			const apn = parcels[i]!.apn;
			if (out.status === "rejected") {
				fail(result, apn, out.error ?? "rejected by the store");
				continue;
			}
			status.set(apn, out.status);
			if (out.raw !== "unchanged") changed.add(apn);
		}

		// 2. REST details: the detail types, and parcels whose type the layer does not say.
		// No detail type at all (MARICOPA_PROPERTY_TYPES=none) is a bulk-only sweep.
		const candidates =
			opts.detailTypes.length === 0
				? []
				: parcels.filter(
						(p) =>
							status.has(p.apn) && (p.propertyType === null || opts.detailTypes.includes(p.propertyType)),
					);
		const ages =
			opts.force || candidates.length === 0 ? {} : await this.#store.detailAges(candidates.map((p) => p.apn));
		const now = Date.now();
		const due = candidates.filter((p) => {
			if (opts.force || changed.has(p.apn) || opts.detailMaxAgeMs <= 0) return true;
			const at = ages[p.apn] ? Date.parse(ages[p.apn]!) : Number.NaN;
			return !(now - at < opts.detailMaxAgeMs);
		});
		result.detailsFresh = candidates.length - due.length;
		// What is known of each parcel's type: the layer's, then the details' (gaps are what stays null).
		const typeOf = new Map<string, string | null>(parcels.map((p) => [p.apn, p.propertyType]));
		// Parcels done so far: stored in bulk and needing no details, then as their details are written.
		const dueApns = new Set(due.map((p) => p.apn));
		const done = new Set([...status.keys()].filter((apn) => !dueApns.has(apn)));
		const report = () => {
			if (!opts.onProgress) return;
			const verdicts = { new: 0, updated: 0, unchanged: 0 };
			for (const apn of done) verdicts[status.get(apn) ?? "unchanged"]++;
			opts.onProgress(
				{
					items: done.size,
					...verdicts,
					requests: tally.bulk + tally.detail,
					failures: result.failures,
				},
				result.expect?.items ?? null,
			);
		};
		report();
		const onStored = (apns: string[]) => {
			for (const apn of apns) if (status.has(apn)) done.add(apn);
			report();
		};
		await this.#details(due, { ...opts, onStored }, tally, result, status, typeOf, signal, stop);

		for (const p of parcels) {
			const s = status.get(p.apn);
			if (s) result[s]++;
			if (s && (typeOf.get(p.apn) === null || !p.record.address)) result.gaps++;
		}
		result.durationMs = Date.now() - started;
		return finishCounts(result);
	}

	/** The page's parcels from the GIS layer; page 1 falls back to the REST search of the whole ZIP. */
	async #listPage(
		zip: string,
		page: number,
		tally: RequestTally,
		result: CollectResult,
		signal: AbortSignal,
	): Promise<BulkParcel[]> {
		try {
			const check = await this.#gis.checkLayer(tally, signal);
			result.missingLayerFields = check.missing.map((m) => `${m.fact} (${m.field})`);
			if (page === 1) {
				const count = await this.#gis.countZip(zip, tally, signal);
				result.expect = { items: count, pages: this.#gis.pagesFor(count) };
			}
			const rows = (await this.#gis.zipPage(zip, page, tally, signal)).rows;
			return rows.map((r) => ({
				apn: r.apn,
				propertyType: r.propertyType,
				record: r.record,
				raw: r.attributes,
			}));
		} catch (err) {
			signal.throwIfAborted();
			const layerDown =
				err instanceof HostRequestError || err instanceof HostFatalError || err instanceof TypeError;
			// Later pages exist only because the layer answered page 1: retry them there.
			if (!layerDown || page !== 1) throw err;
			const parcels = await this.searchZip(zip, tally, signal);
			result.bulkSource = "search";
			result.bulkFallbackReason = (err as Error).message;
			result.expect = { items: parcels.length, pages: 1 };
			return parcels;
		}
	}

	/**
	 * Write records, waiting out a store outage of up to STORE_OUTAGE_WAIT_MS: what this page already
	 * fetched is kept and written once the store is back, instead of being fetched again by a retry.
	 * A longer outage fails the page (the orchestrator waits for the store without using attempts).
	 */
	async #ingest(
		records: IngestRecord[],
		result: CollectResult,
		force = false,
		signal?: AbortSignal,
	): Promise<IngestOutcome[]> {
		if (records.length === 0) return [];
		const started = Date.now();
		for (let attempt = 1; ; attempt++) {
			try {
				const answer = await this.#store.ingest(records, force);
				result.storeRoundTrips += answer.roundTrips.total;
				return answer.outcomes;
			} catch (err) {
				if (!(err instanceof DependencyUnavailableError) || Date.now() - started >= STORE_OUTAGE_WAIT_MS)
					throw err;
				await sleep(Math.min(5000, 250 * 2 ** attempt), signal);
			}
		}
	}

	async #details(
		due: BulkParcel[],
		opts: CollectOptions,
		tally: RequestTally,
		result: CollectResult,
		status: Map<string, MergeVerdict>,
		typeOf: Map<string, string | null>,
		signal: AbortSignal,
		stop: AbortController,
	): Promise<void> {
		let fatal: HostFatalError | null = null;
		let buffer: IngestRecord[] = [];
		let flushedAt = Date.now();
		const flush = async () => {
			const batch = buffer;
			buffer = [];
			flushedAt = Date.now();
			// Details are merged whenever fetched: they were due (changed facts, age, or force).
			const outcomes = await this.#ingest(batch, result, true, signal);
			for (const [i, out] of outcomes.entries()) {
				const apn = batch[i]!.sourceId;
				if (out.status === "rejected") fail(result, apn, out.error ?? "details rejected by the store");
				else status.set(apn, combine(status.get(apn) ?? "unchanged", out.status));
			}
			opts.onStored?.(batch.map((b) => b.sourceId));
		};
		let queue = due;
		for (let pass = 1; pass <= DETAIL_PASSES && queue.length > 0 && !fatal; pass++) {
			const failedThisPass: { parcel: BulkParcel; reason: string }[] = [];
			let next = 0;
			const worker = async () => {
				while (next < queue.length && !fatal) {
					signal.throwIfAborted();
					const parcel = queue[next++]!;
					try {
						const detail = await this.#api.parcel(parcel.apn, tally, signal);
						if (!detail) {
							result.notFound++;
							continue;
						}
						if (detail.record.propertyType) typeOf.set(parcel.apn, detail.record.propertyType);
						buffer.push({
							source: "maricopa",
							sourceId: parcel.apn,
							record: detail.record,
							collectedAt: new Date().toISOString(),
							raw: { source: RAW_SOURCE.parcel, payload: detail.raw },
						});
						result.detailsFetched++;
						if (buffer.length >= (opts.detailBatch ?? 50) || Date.now() - flushedAt >= DETAIL_FLUSH_MS)
							await flush();
					} catch (err) {
						if (err instanceof HostFatalError) {
							fatal ??= err;
							stop.abort(err);
							return;
						}
						if (opts.signal?.aborted) throw err;
						if (!(err instanceof HostRequestError)) throw err;
						failedThisPass.push({ parcel, reason: err.message });
					}
				}
			};
			const workers = Array.from({ length: Math.max(1, Math.min(opts.concurrency, queue.length)) }, worker);
			const settled = await Promise.allSettled(workers);
			if (fatal) throw fatal;
			opts.signal?.throwIfAborted();
			const crashed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
			if (crashed) throw crashed.reason;
			if (buffer.length > 0) await flush();
			if (pass === DETAIL_PASSES) for (const f of failedThisPass) fail(result, f.parcel.apn, f.reason);
			queue = failedThisPass.map((f) => f.parcel);
		}
	}
}
