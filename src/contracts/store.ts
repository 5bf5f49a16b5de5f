/**
 * The store's actions (services/store.service.ts: `properties.*`, `raw.*`) as its callers see them.
 *
 * `properties.ingest`: a page of records (1..INGEST_MAX_RECORDS) stored in a few round trips — their
 * raw payloads upserted in bulk (`RawStore.upsertMany`), then merged in bulk
 * (`PropertyStore.mergeMany`). Each record is judged on its own: an invalid or unjoinable one is
 * answered "rejected" (and counted like a rejected `merge`) and nothing of it is stored, while the
 * others go on. A store that cannot be reached fails the whole call (retryable, 503): a caller
 * retries the page, which is idempotent.
 *
 * Callers (the collectors) import these types; the store service implements the action.
 */

import type { CallingOptions } from "moleculer";
import { PermanentError } from "../core/errors.ts";
import type { MergeVerdict, PropertyEnrichment } from "../domain/property.ts";
import type { PropertyFields } from "../domain/property-fields.ts";
import type { PropertySource, SourceRecord } from "../domain/records.ts";
import { type Action, type Caller, callerOf } from "./call.ts";

export type { MergeVerdict };

export const INGEST_MAX_RECORDS = 500;
/** `raw.ages` answers for at most this many ids per call. */
export const AGES_MAX_IDS = 1000;

export interface IngestRecord {
	source: PropertySource;
	/** maricopa: the APN; mls: the MLS number. */
	sourceId: string;
	record: SourceRecord;
	/** ISO time the record was collected; defaults to the time of the call. */
	collectedAt?: string;
	/** The upstream payload to keep as received, under its raw source (e.g. "maricopa-gis", "maricopa"). */
	raw?: { source: string; payload: unknown };
}

export interface IngestParams {
	records: IngestRecord[];
	/**
	 * Merge every record. By default a record whose raw payload is stored unchanged is not merged
	 * again: the raw record is written only after its merge, so an unchanged one proves the merge.
	 */
	force?: boolean;
}

/** What became of one record: the merge's verdict, or refused. */
export type IngestStatus = MergeVerdict | "rejected";
export type RawStatus = "created" | "updated" | "unchanged";

export interface IngestOutcome {
	sourceId: string;
	/** The property's key (absent when rejected). */
	key?: string;
	/** What became of the raw payload; null when none was given or the record was rejected. */
	raw: RawStatus | null;
	status: IngestStatus;
	/** Why it was rejected. */
	error?: string;
}

/** Requests one call sent to the store's backend, per collection (locks: the merge locks). */
export interface RoundTrips {
	raw: number;
	properties: number;
	locks: number;
	total: number;
}

export interface IngestResult {
	/** In input order. */
	outcomes: IngestOutcome[];
	roundTrips: RoundTrips;
}

export interface RawAgesParams {
	source: string;
	sourceIds: string[];
}

/** collectedAt (ISO) of each stored record, by sourceId; ids not stored are absent. */
export type RawAges = Record<string, string>;

/** A property as `properties.get` / `properties.find` / `properties.byApn` answer it. */
export interface PropertyRow extends PropertyFields {
	key: string;
	enrichment?: PropertyEnrichment | null;
}

/** `properties.setEnrichment`: stored, or refused because the property changed or is gone. */
export type EnrichmentVerdict = "stored" | "stale" | "missing";

export interface SetEnrichmentParams {
	key: string;
	enrichment: PropertyEnrichment;
	/** The input hash the enrichment was made from; a property that changed since is "stale". */
	expectedInputHash: string;
}

export interface FindParams {
	zip?: string;
	status?: string;
	changedSince?: string;
	/** Keyset paging ("" = from the start): answers `{ rows, nextKey }` instead of pages. */
	afterKey?: string;
	page?: number;
	pageSize?: number;
}

/** `properties.find` by page number: the page and the total. */
export interface PropertyPage {
	rows: PropertyRow[];
	total: number;
	page: number;
	pageSize: number;
	totalPages: number;
}

/** `properties.find` with `afterKey`: the rows after that key, and the key to ask for next. */
export interface PropertyKeysetPage {
	rows: PropertyRow[];
	pageSize: number;
	/** Pass as `afterKey` for the next page; null when this was the last. */
	nextKey: string | null;
}

/** The catalog (a type alias, not an interface: only aliases fit `ActionCatalog`). */
export type StoreActions = {
	"properties.ingest": Action<IngestParams, IngestResult>;
	"properties.get": Action<{ key?: string; id?: string; history?: boolean }, PropertyRow | null>;
	"properties.byApn": Action<{ apn: string; history?: boolean }, PropertyRow | null>;
	"properties.find": Action<FindParams, PropertyPage | PropertyKeysetPage>;
	"properties.setEnrichment": Action<SetEnrichmentParams, { key: string; status: EnrichmentVerdict }>;
	"properties.stats": Action<Record<string, never>, Record<string, unknown>>;
	"raw.ages": Action<RawAgesParams, RawAges>;
	"raw.count": Action<Record<string, unknown>, number>;
};

/** `callStore(ctx, "properties.get", { key })`: a store call typed by its action. */
export const callStore = callerOf<StoreActions>();

/** `properties.find` by page number (`findAfterKey` reads by key). */
export async function findPage(
	caller: Caller,
	params: Omit<FindParams, "afterKey">,
	opts?: CallingOptions,
): Promise<PropertyPage> {
	const page = await callStore(caller, "properties.find", params, opts);
	if ("nextKey" in page)
		throw new PermanentError("properties.find answered a keyset page to a page request", {
			type: "BAD_ANSWER",
		});
	return page;
}

/** `properties.find` by key: every property once, in key order, however the store changes meanwhile. */
export async function findAfterKey(
	caller: Caller,
	params: FindParams & { afterKey: string },
	opts?: CallingOptions,
): Promise<PropertyKeysetPage> {
	const page = await callStore(caller, "properties.find", params, opts);
	if (!("nextKey" in page))
		throw new PermanentError("properties.find answered an offset page to a keyset request", {
			type: "BAD_ANSWER",
		});
	return page;
}
