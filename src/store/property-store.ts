/**
 * Writes canonical properties so that concurrent writers on any number of nodes end with one
 * property per parcel: every write is an insert guarded by unique indexes (`key`, `claim`) or a
 * replace conditional on the version read; a clash or a lost race re-reads and tries again.
 *
 * Lookups go by top-level indexed fields (`key`, `claim`): a parcel's record lives in the property
 * keyed by its APN, and a listing's nearly always in the holder of its address claim; only a listing
 * found in neither is looked for by `sourceKeys` (an array, which FerretDB scans).
 *
 * This class is the store's one entry point; each path is its own module: one record
 * (record-merge.ts), a page (batch-merge.ts), a listing's placement and reconciliation
 * (listing-merge.ts, listing-placement.ts), enrichments (enrichment-write.ts), list reads
 * (property-queries.ts), and the rules they share (merge-rules.ts).
 */
import type { PropertyDoc, PropertyEnrichment } from "../domain/property.ts";
import type { Contribution } from "../domain/property-fields.ts";
import { mergeMany } from "./batch-merge.ts";
import {
	CountingCollection,
	type DocCollection,
	type FindOptions,
	type Query,
	type Tally,
} from "./collection.ts";
import { type EnrichmentWrite, setEnrichment } from "./enrichment-write.ts";
import { type KeyLocks, LocalKeyLocks } from "./key-lock.ts";
import { reconcileZip, settle } from "./listing-merge.ts";
import type { MergeOutcome, PropertyWriter } from "./merge-rules.ts";
import { type KeysetPage, keysetPage, offsetPage, type PropertyPage } from "./property-queries.ts";
import { mergeRecord } from "./record-merge.ts";

export class PropertyStore implements PropertyWriter {
	readonly col: DocCollection<PropertyDoc>;
	readonly maxAttempts: number;
	readonly now: () => string;
	readonly locks: KeyLocks;

	constructor(
		col: DocCollection<PropertyDoc>,
		options: { maxAttempts?: number; now?: () => string; locks?: KeyLocks } = {},
	) {
		this.col = col;
		this.locks = options.locks ?? new LocalKeyLocks();
		this.maxAttempts = options.maxAttempts ?? 50;
		this.now = options.now ?? (() => new Date().toISOString());
	}

	/** The same store, its round trips (documents and locks) counted in `tallies` too. */
	counting(tallies: Tally[], lockTallies: Tally[] = tallies): PropertyStore {
		return new PropertyStore(new CountingCollection(this.col, tallies), {
			maxAttempts: this.maxAttempts,
			now: this.now,
			locks: this.locks.counting(lockTallies),
		});
	}

	async ensureIndexes(): Promise<void> {
		await this.col.ensureIndex("key", true);
		await this.col.ensureIndex("claim", true);
		await this.col.ensureIndex("sourceKeys", false);
		await this.col.ensureIndex("apn", false);
		await this.col.ensureIndex("zip", false);
		// Candidates of a listing (same street line in any ZIP, its building's line) and a parcel's
		// street group for reconciliation: a top-level field, so FerretDB uses the index.
		await this.col.ensureIndex("street", false);
		await this.col.ensureIndex("status", false);
		await this.col.ensureIndex("changedAt", false);
	}

	/** One record merged into its property (record-merge.ts). */
	merge(input: Contribution): Promise<MergeOutcome> {
		return mergeRecord(this, input);
	}

	/** `merge` for a page, same outcomes in input order, in a few round trips (batch-merge.ts). */
	mergeMany(inputs: Contribution[]): Promise<MergeOutcome[]> {
		return mergeMany(this, inputs);
	}

	/** The listings of these street lines (and of `seed`'s parcels) put where they belong now. */
	settle(seed: PropertyDoc[], lines: string[]): Promise<{ listings: number; moved: number }> {
		return settle(this, seed, lines);
	}

	/** Reconciliation across a ZIP (`properties.reconcile`, nightly), a page at a time. */
	reconcileZip(
		zip: string,
		pageSize?: number,
	): Promise<{ zip: string; properties: number; listings: number; moved: number }> {
		return reconcileZip(this, zip, pageSize);
	}

	/** An enrichment stored while the facts it was made from still hold (enrichment-write.ts). */
	setEnrichment(
		key: string,
		enrichment: PropertyEnrichment,
		expectedInputHash: string,
	): Promise<EnrichmentWrite> {
		return setEnrichment(this, key, enrichment, expectedInputHash);
	}

	get(key: string): Promise<PropertyDoc | null> {
		return this.col.findOne({ key });
	}

	getById(id: string): Promise<PropertyDoc | null> {
		return this.col.findOne({ _id: id });
	}

	page(query: Query, page: number, pageSize: number, sort: FindOptions["sort"]): Promise<PropertyPage> {
		return offsetPage(this.col, query, page, pageSize, sort);
	}

	/** Keyset paging: the `pageSize` properties after `afterKey` in key order (property-queries.ts). */
	pageAfter(query: Query, afterKey: string, pageSize: number): Promise<KeysetPage> {
		return keysetPage(this.col, query, afterKey, pageSize);
	}

	count(query: Query = {}): Promise<number> {
		return this.col.count(query);
	}
}
