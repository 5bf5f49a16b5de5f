/**
 * Writes canonical properties so that concurrent writers on any number of nodes end with one
 * property per parcel: every write is an insert guarded by unique indexes (`key`, `claim`) or a
 * replace conditional on the version read; a clash or a lost race re-reads and tries again.
 *
 * - A parcel (APN) record goes to the property keyed by its APN. If a listing reached the store
 *   first, its address-keyed property holds the address claim: the parcel adopts it (re-keys it to
 *   the APN) or, when the parcel already has a property, absorbs and deletes it — no orphan twin.
 * - A listing goes to the property that already holds it, else to the holder of its address claim,
 *   else to a new address-keyed property claiming the address.
 */
import { randomUUID } from "node:crypto";
import { propertyInputHash } from "../domain/enrichment-input.ts";
import {
	type Contribution,
	canonicalJson,
	type HistoryEntry,
	identityOf,
	type MergeResult,
	mergeProperty,
	overlayRecord,
	type PropertyDoc,
	type PropertyEnrichment,
	sourceKey,
} from "../domain/property.ts";
import { sleep } from "../utils/time.ts";
import { type DocCollection, DuplicateKeyError, type FindOptions, type Query } from "./collection.ts";
import { type KeyLocks, LocalKeyLocks } from "./key-lock.ts";

export class MergeConflictError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "MergeConflictError";
	}
}

export class UnjoinableRecordError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "UnjoinableRecordError";
	}
}

export interface MergeOutcome {
	key: string;
	status: MergeResult["status"];
	changes: HistoryEntry[];
	/** Tries it took (1 unless another writer raced this one). */
	attempts: number;
	/** Keys of address-keyed properties folded into this one. */
	absorbed: string[];
}

export interface PropertyPage {
	rows: PropertyDoc[];
	total: number;
	page: number;
	pageSize: number;
	totalPages: number;
}

/** What `setEnrichment` did: stored; refused because the facts changed since; no such property. */
export type EnrichmentWrite = "stored" | "stale" | "missing";

/** Too big for list answers; `get` returns it. */
const LIST_OMIT = ["contributions", "history"];

/** The property holds this exact record already (and, for a parcel, owns its address claim). */
function alreadyMerged(doc: PropertyDoc, input: Contribution): boolean {
	const prev = doc.contributions.find((c) => c.source === input.source && c.sourceId === input.sourceId);
	if (!prev || canonicalJson(overlayRecord(prev.record, input.record)) !== canonicalJson(prev.record))
		return false;
	return input.source !== "maricopa" || !doc.addressKey || doc.claim === doc.addressKey;
}

export class PropertyStore {
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

	async ensureIndexes(): Promise<void> {
		await this.col.ensureIndex("key", true);
		await this.col.ensureIndex("claim", true);
		await this.col.ensureIndex("sourceKeys", false);
		await this.col.ensureIndex("apn", false);
		await this.col.ensureIndex("zip", false);
		await this.col.ensureIndex("status", false);
		await this.col.ensureIndex("changedAt", false);
	}

	async merge(input: Contribution): Promise<MergeOutcome> {
		const identity = identityOf(input);
		if (!identity.apn && !identity.addressKey) {
			throw new UnjoinableRecordError(
				input.source === "maricopa"
					? `'${(input.record as { apn: string }).apn}' is not a parcel number`
					: "listing address has no house number or no ZIP: cannot be joined to a parcel",
			);
		}
		// Re-collection fast path: the record is already merged as it is, no lock or write needed.
		const holder = await this.col.findOne({ sourceKeys: sourceKey(input.source, input.sourceId) });
		if (holder && alreadyMerged(holder, input)) {
			return { key: holder.key, status: "unchanged", changes: [], attempts: 1, absorbed: [] };
		}
		// Every writer of a property holds at least one key in common with every other writer of it:
		// parcels take their APN and address, listings their address and their own source key.
		const lockKeys = [sourceKey(input.source, input.sourceId)];
		if (identity.apn) lockKeys.push(`apn:${identity.apn}`);
		if (identity.addressKey) lockKeys.push(`addr:${identity.addressKey}`);
		for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
			try {
				const out = await this.locks.withLocks(lockKeys, () =>
					identity.apn
						? this.tryParcel(input, identity.apn, identity.addressKey)
						: this.tryListing(input, identity.addressKey!),
				);
				if (out) return { ...out, attempts: attempt };
			} catch (err) {
				if (!(err instanceof DuplicateKeyError)) throw err;
			}
			// Lost a race: back off a little, with jitter so racing writers do not collide in step.
			await sleep(Math.min(50, attempt * 2) * Math.random());
		}
		throw new MergeConflictError(
			`gave up merging ${sourceKey(input.source, input.sourceId)} after ${this.maxAttempts} conflicts`,
		);
	}

	private async tryParcel(
		input: Contribution,
		apn: string,
		addrKey: string | null,
	): Promise<Omit<MergeOutcome, "attempts"> | null> {
		const now = this.now();
		const doc = await this.col.findOne({ key: apn });
		const address = addrKey ?? doc?.addressKey ?? null;
		const holder = address ? await this.col.findOne({ claim: address }) : null;
		const orphan = holder && !holder.apn && holder._id !== doc?._id ? holder : null;

		if (!doc && orphan) {
			const res = mergeProperty(orphan, input, { id: orphan._id, now, claimAddress: true });
			if (!(await this.col.replaceIf({ _id: orphan._id, version: orphan.version }, res.doc))) return null;
			return { key: res.doc.key, status: "updated", changes: res.changes, absorbed: [orphan.key] };
		}
		if (!doc) {
			const res = mergeProperty(null, input, { id: randomUUID(), now, claimAddress: !holder });
			await this.col.insert(res.doc);
			return { key: res.doc.key, status: res.status, changes: res.changes, absorbed: [] };
		}
		if (orphan) {
			// Fold the listing property in, delete it, then take over its address claim. A crash
			// between the steps leaves the listing in both; the next merge of the parcel finishes.
			const res = mergeProperty(doc, input, { id: doc._id, now, absorb: [orphan] });
			if (!(await this.col.replaceIf({ _id: doc._id, version: doc.version }, res.doc))) return null;
			if (!(await this.col.deleteIf({ _id: orphan._id, version: orphan.version }))) return null;
			const claimed = mergeProperty(res.doc, input, { id: doc._id, now, claimAddress: true });
			if (claimed.status !== "unchanged") {
				await this.col.replaceIf({ _id: doc._id, version: res.doc.version }, claimed.doc);
			}
			return { key: res.doc.key, status: "updated", changes: res.changes, absorbed: [orphan.key] };
		}
		const res = mergeProperty(doc, input, {
			id: doc._id,
			now,
			claimAddress: !holder || holder._id === doc._id,
		});
		if (res.status === "unchanged") return { key: doc.key, status: "unchanged", changes: [], absorbed: [] };
		if (!(await this.col.replaceIf({ _id: doc._id, version: doc.version }, res.doc))) return null;
		return { key: res.doc.key, status: res.status, changes: res.changes, absorbed: [] };
	}

	private async tryListing(
		input: Contribution,
		addrKey: string,
	): Promise<Omit<MergeOutcome, "attempts"> | null> {
		const now = this.now();
		const doc =
			(await this.col.findOne({ sourceKeys: sourceKey(input.source, input.sourceId) })) ??
			(await this.col.findOne({ claim: addrKey }));
		if (!doc) {
			const res = mergeProperty(null, input, { id: randomUUID(), now, claimAddress: true });
			await this.col.insert(res.doc);
			return { key: res.doc.key, status: res.status, changes: res.changes, absorbed: [] };
		}
		const res = mergeProperty(doc, input, { id: doc._id, now });
		if (res.status === "unchanged") return { key: doc.key, status: "unchanged", changes: [], absorbed: [] };
		if (!(await this.col.replaceIf({ _id: doc._id, version: doc.version }, res.doc))) return null;
		return { key: res.doc.key, status: res.status, changes: res.changes, absorbed: [] };
	}

	/**
	 * Put an enrichment on a property, only while the property's facts are still the ones it was
	 * made from (`expectedInputHash`, recomputed here with the enrichment's model); else "stale".
	 * A conditional replace on the version read, under the same locks as a merge of the property
	 * (FerretDB's conditional replace alone is not atomic), so a merge is never lost and a lost
	 * race re-reads. Neither `changedAt` nor the history move: an enrichment is not a fact change.
	 */
	async setEnrichment(
		key: string,
		enrichment: PropertyEnrichment,
		expectedInputHash: string,
	): Promise<EnrichmentWrite> {
		for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
			const seen = await this.col.findOne({ key });
			if (!seen) return "missing";
			const out = await this.locks.withLocks(
				writerLockKeys(seen),
				async (): Promise<EnrichmentWrite | null> => {
					const doc = await this.col.findOne({ _id: seen._id });
					if (!doc || doc.key !== key) return "missing";
					// A merge in between may have given the property other lock keys: take those first.
					if (canonicalJson(writerLockKeys(doc)) !== canonicalJson(writerLockKeys(seen))) return null;
					if (propertyInputHash(doc, enrichment.processing.llm_model) !== expectedInputHash) return "stale";
					const next: PropertyDoc = { ...doc, enrichment, version: doc.version + 1 };
					return (await this.col.replaceIf({ _id: doc._id, version: doc.version }, next)) ? "stored" : null;
				},
			);
			if (out) return out;
			await sleep(Math.min(50, attempt * 2) * Math.random());
		}
		throw new MergeConflictError(
			`gave up storing the enrichment of ${key} after ${this.maxAttempts} conflicts`,
		);
	}

	get(key: string): Promise<PropertyDoc | null> {
		return this.col.findOne({ key });
	}

	getById(id: string): Promise<PropertyDoc | null> {
		return this.col.findOne({ _id: id });
	}

	async page(query: Query, page: number, pageSize: number, sort: FindOptions["sort"]): Promise<PropertyPage> {
		const [rows, total] = await Promise.all([
			this.col.find(query, { sort, skip: (page - 1) * pageSize, limit: pageSize, omit: LIST_OMIT }),
			this.col.count(query),
		]);
		return { rows, total, page, pageSize, totalPages: Math.ceil(total / pageSize) };
	}

	count(query: Query = {}): Promise<number> {
		return this.col.count(query);
	}
}

/**
 * Lock keys of every writer that may merge into `doc` (see `merge`): its APN, its address and its
 * address claim, and each of its records' source keys. Holding them all excludes any merge of it.
 */
function writerLockKeys(doc: PropertyDoc): string[] {
	const keys = [...doc.sourceKeys];
	if (doc.apn) keys.push(`apn:${doc.apn}`);
	if (doc.addressKey) keys.push(`addr:${doc.addressKey}`);
	if (!doc.claim.startsWith("#")) keys.push(`addr:${doc.claim}`);
	return [...new Set(keys)].sort();
}
