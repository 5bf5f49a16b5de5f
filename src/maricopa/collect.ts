/**
 * Collecting one ZIP from the Assessor: the parcel list and core facts in bulk from the GIS layer
 * (~1,000 parcels a request; the REST search, 25 a page, when the GIS layer fails), then REST parcel
 * details for the configured property types, each normalized and handed to the store.
 *
 * Incremental: per parcel, a fingerprint of its bulk facts and the time its details were fetched are
 * kept in the shared state. A parcel whose bulk facts are unchanged is not written again, and its
 * details are fetched again only once they are older than `detailMaxAgeMs`.
 *
 * The store is reached through `StoreGateway` (the service wires it to `raw.upsertRaw` and
 * `properties.merge` over the broker); every write is an upsert, so a re-run never duplicates.
 */
import { createHash } from "node:crypto";
import { HostFatalError, HostRequestError } from "../core/host-policy.ts";
import type { AssessorParcelRecord } from "../domain/records.ts";
import type { SharedState } from "../shared-state/index.ts";
import type { MaricopaApiClient } from "./api-client.ts";
import type { MaricopaGisClient } from "./gis-client.ts";
import type { RequestTally } from "./http.ts";
import type { AssessorPropertyType } from "./normalize.ts";

export type MergeStatus = "new" | "updated" | "unchanged";

export interface StoreGateway {
	upsertRaw(source: string, sourceId: string, payload: unknown, collectedAt: string): Promise<void>;
	merge(sourceId: string, record: AssessorParcelRecord, collectedAt: string): Promise<MergeStatus>;
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
	/** Upper-case Assessor types whose REST details are fetched. */
	detailTypes: AssessorPropertyType[];
	detailMaxAgeMs: number;
	/** Detail requests in flight on this node (the host budget paces them cluster-wide). */
	concurrency: number;
	/** Ignore the incremental state: write and fetch everything. */
	force?: boolean;
	signal?: AbortSignal;
}

export interface ParcelFailure {
	apn: string;
	reason: string;
}

export interface CollectResult {
	zip: string;
	/** Where the parcel list came from. */
	bulkSource: "gis" | "search";
	/** Why the GIS layer was not used, when it was not. */
	bulkFallbackReason: string | null;
	/** Parcels in the ZIP. */
	parcels: number;
	new: number;
	updated: number;
	unchanged: number;
	/** Parcels whose REST details were fetched this run. */
	detailsFetched: number;
	/** Parcels of a detail type skipped because their details are fresh and their facts unchanged. */
	detailsFresh: number;
	/** Listed in bulk but unknown to the REST API (404). */
	notFound: number;
	failures: number;
	failed: ParcelFailure[];
	/** HTTP requests made (retries included), by kind, and their total. */
	requestsByKind: RequestTally;
	requests: number;
	/** Requests per parcel of the ZIP, by kind. */
	requestsPerParcel: { bulk: number; detail: number; total: number };
	durationMs: number;
}

interface ParcelState {
	/** Fingerprint of the bulk facts last written. */
	h: string;
	/** When the details were last fetched and stored (epoch ms), null if never. */
	d: number | null;
}

const stateKey = (apn: string) => `maricopa:parcel:${apn}`;
/** Failures listed in a result (the count is exact, the list is capped to keep replies small). */
const MAX_LISTED_FAILURES = 50;
/** Fingerprints outlive any sensible detail age; a lost one only costs one extra write. */
const STATE_TTL_MIN_MS = 30 * 24 * 3_600_000;

export function factsFingerprint(record: AssessorParcelRecord): string {
	return createHash("sha256").update(JSON.stringify(record)).digest("base64url").slice(0, 22);
}

export class ZipCollector {
	readonly #api: MaricopaApiClient;
	readonly #gis: MaricopaGisClient;
	readonly #store: StoreGateway;
	readonly #state: SharedState;

	constructor(api: MaricopaApiClient, gis: MaricopaGisClient, store: StoreGateway, state: SharedState) {
		this.#api = api;
		this.#gis = gis;
		this.#store = store;
		this.#state = state;
	}

	/** The parcels of a ZIP from the GIS layer, or from the REST search when the layer fails. */
	async listZip(
		zip: string,
		tally: RequestTally,
		signal?: AbortSignal,
	): Promise<{ parcels: BulkParcel[]; source: "gis" | "search"; fallbackReason: string | null }> {
		try {
			const rows = await this.#gis.listZip(zip, tally, signal);
			return {
				parcels: rows.map((r) => ({
					apn: r.apn,
					propertyType: r.propertyType,
					record: r.record,
					raw: r.attributes,
				})),
				source: "gis",
				fallbackReason: null,
			};
		} catch (err) {
			signal?.throwIfAborted();
			if (!(err instanceof HostRequestError || err instanceof HostFatalError || err instanceof TypeError))
				throw err;
			const parcels = await this.searchZip(zip, tally, signal);
			return { parcels, source: "search", fallbackReason: (err as Error).message };
		}
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

	async collectZip(opts: CollectOptions): Promise<CollectResult> {
		const started = Date.now();
		const tally: RequestTally = { bulk: 0, detail: 0 };
		// One fatal answer stops every worker of this run at once (the policy stops the other nodes).
		const stop = new AbortController();
		const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
		const listed = await this.listZip(opts.zip, tally, signal);
		const result: CollectResult = {
			zip: opts.zip,
			bulkSource: listed.source,
			bulkFallbackReason: listed.fallbackReason,
			parcels: listed.parcels.length,
			new: 0,
			updated: 0,
			unchanged: 0,
			detailsFetched: 0,
			detailsFresh: 0,
			notFound: 0,
			failures: 0,
			failed: [],
			requestsByKind: tally,
			requests: 0,
			requestsPerParcel: { bulk: 0, detail: 0, total: 0 },
			durationMs: 0,
		};
		const fail = (apn: string, reason: string) => {
			result.failures++;
			if (result.failed.length < MAX_LISTED_FAILURES) result.failed.push({ apn, reason });
		};
		const stateTtl = Math.max(STATE_TTL_MIN_MS, opts.detailMaxAgeMs * 2);
		let fatal: HostFatalError | null = null;

		const work = listed.parcels;
		let next = 0;
		const worker = async () => {
			while (next < work.length && !fatal) {
				signal.throwIfAborted();
				const parcel = work[next++]!;
				try {
					const status = await this.#collectParcel(parcel, opts, tally, stateTtl, result, signal);
					result[status]++;
				} catch (err) {
					if (err instanceof HostFatalError) {
						fatal ??= err;
						stop.abort(err);
						return;
					}
					if (opts.signal?.aborted) throw err;
					fail(parcel.apn, (err as Error).message);
				}
			}
		};
		const workers = Array.from({ length: Math.max(1, Math.min(opts.concurrency, work.length)) }, worker);
		const settled = await Promise.allSettled(workers);
		if (fatal) throw fatal;
		opts.signal?.throwIfAborted();
		const crashed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
		if (crashed) throw crashed.reason;

		result.requests = tally.bulk + tally.detail;
		const n = Math.max(1, result.parcels);
		result.requestsPerParcel = {
			bulk: round(tally.bulk / n),
			detail: round(tally.detail / n),
			total: round(result.requests / n),
		};
		result.durationMs = Date.now() - started;
		return result;
	}

	async #collectParcel(
		parcel: BulkParcel,
		opts: CollectOptions,
		tally: RequestTally,
		stateTtl: number,
		result: CollectResult,
		signal: AbortSignal,
	): Promise<MergeStatus> {
		const key = stateKey(parcel.apn);
		const known = opts.force ? undefined : await this.#state.get<ParcelState>(key);
		const fingerprint = factsFingerprint(parcel.record);
		const factsChanged = known?.h !== fingerprint;
		let status: MergeStatus = "unchanged";
		const collectedAt = new Date().toISOString();
		if (factsChanged) {
			const source = parcel.record.origin === "search" ? RAW_SOURCE.search : RAW_SOURCE.gis;
			await this.#store.upsertRaw(source, parcel.apn, parcel.raw, collectedAt);
			status = await this.#store.merge(parcel.apn, parcel.record, collectedAt);
			await this.#state.set<ParcelState>(key, { h: fingerprint, d: known?.d ?? null }, stateTtl);
		}
		if (!parcel.propertyType || !opts.detailTypes.includes(parcel.propertyType)) return status;
		const fresh =
			!factsChanged &&
			known?.d != null &&
			opts.detailMaxAgeMs > 0 &&
			Date.now() - known.d < opts.detailMaxAgeMs;
		if (fresh) {
			result.detailsFresh++;
			return status;
		}
		const detail = await this.#api.parcel(parcel.apn, tally, signal);
		if (!detail) {
			result.notFound++;
			return status;
		}
		const detailAt = new Date().toISOString();
		await this.#store.upsertRaw(RAW_SOURCE.parcel, parcel.apn, detail.raw, detailAt);
		const detailStatus = await this.#store.merge(parcel.apn, detail.record, detailAt);
		await this.#state.set<ParcelState>(key, { h: fingerprint, d: Date.now() }, stateTtl);
		result.detailsFetched++;
		return combine(status, detailStatus);
	}
}

function combine(a: MergeStatus, b: MergeStatus): MergeStatus {
	if (a === "new" || b === "new") return "new";
	if (a === "updated" || b === "updated") return "updated";
	return "unchanged";
}

function round(x: number): number {
	return Math.round(x * 1000) / 1000;
}
