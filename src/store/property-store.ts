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
 *
 * Lookups go by top-level indexed fields (`key`, `claim`): a parcel's record lives in the property
 * keyed by its APN, and a listing's nearly always in the holder of its address claim; only a listing
 * found in neither is looked for by `sourceKeys` (an array, which FerretDB scans).
 *
 * `mergeMany` merges a page: two reads for the whole page, the merges in memory, one insert of the
 * new properties and one version-guarded replace of the changed ones under batch locks. Whatever is
 * not that simple case goes through `merge` on its own.
 */
import { randomUUID } from "node:crypto";
import { addressKeyProblem } from "../domain/address.ts";
import { propertyInputHash } from "../domain/enrichment-input.ts";
import {
	type Contribution,
	canonicalJson,
	type HistoryEntry,
	identityOf,
	type MatchInfo,
	type MergeResult,
	mergeProperty,
	overlayRecord,
	type PropertyDoc,
	type PropertyEnrichment,
	sourceKey,
	unmatchedPropertyKey,
} from "../domain/property.ts";
import type { MlsListingRecord } from "../domain/records.ts";
import { sleep } from "../utils/time.ts";
import {
	CountingCollection,
	type DocCollection,
	DuplicateKeyError,
	type FindOptions,
	type Query,
	type Tally,
} from "./collection.ts";
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

export interface KeysetPage {
	rows: PropertyDoc[];
	pageSize: number;
	/** Pass as `afterKey` for the next page; null when this was the last. */
	nextKey: string | null;
}

/** What `setEnrichment` did: stored; refused because the facts changed since; no such property. */
export type EnrichmentWrite = "stored" | "stale" | "missing";

/** Per-record merges `mergeMany` runs at once (records sharing a lock key run one after another). */
const FALLBACK_CONCURRENCY = 8;

type Identity = ReturnType<typeof identityOf>;

/**
 * Why a record cannot be stored at all, or null when it can: a parcel without a parcel number. A
 * listing always can: one without an address key is stored unmatched (see `unmatchedReason`).
 */
export function unjoinableReason(input: Pick<Contribution, "source" | "record">): string | null {
	if (input.source !== "maricopa") return null;
	const identity = identityOf(input);
	if (identity.apn) return null;
	return `'${(input.record as { apn: string }).apn}' is not a parcel number`;
}

/** Why a listing cannot be keyed by its address (it is stored unmatched), or null when it can. */
export function unmatchedReason(input: Pick<Contribution, "source" | "record">): string | null {
	if (input.source === "maricopa") return null;
	const identity = identityOf(input);
	if (identity.addressKey) return null;
	const address = (input.record as MlsListingRecord).address;
	return `listing address cannot be keyed: ${addressKeyProblem(address?.street ?? "", address?.zip) ?? "no address"}`;
}

/**
 * Every writer of a property holds at least one key in common with every other writer of it:
 * parcels take their APN and address, listings their address and their own source key.
 */
function mergeLockKeys(input: Contribution, identity: Identity): string[] {
	const keys = [sourceKey(input.source, input.sourceId)];
	if (identity.apn) keys.push(`apn:${identity.apn}`);
	if (identity.addressKey) keys.push(`addr:${identity.addressKey}`);
	return keys;
}

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
		await this.col.ensureIndex("status", false);
		await this.col.ensureIndex("changedAt", false);
	}

	async merge(input: Contribution): Promise<MergeOutcome> {
		const identity = identityOf(input);
		const unjoinable = unjoinableReason(input);
		if (unjoinable) throw new UnjoinableRecordError(unjoinable);
		// Re-collection fast path: the record is already merged as it is, no lock or write needed.
		// A parcel's record is in the property keyed by its APN; a listing's, nearly always, in the
		// holder of its address claim (else the locked path below finds it).
		const holder = identity.apn
			? await this.col.findOne({ key: identity.apn })
			: identity.addressKey
				? await this.col.findOne({ claim: identity.addressKey })
				: await this.col.findOne({ key: unmatchedPropertyKey(input.source, input.sourceId) });
		if (holder && alreadyMerged(holder, input)) {
			return { key: holder.key, status: "unchanged", changes: [], attempts: 1, absorbed: [] };
		}
		const lockKeys = mergeLockKeys(input, identity);
		for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
			try {
				const out = await this.locks.withLocks(lockKeys, () =>
					identity.apn
						? this.tryParcel(input, identity.apn, identity.addressKey)
						: identity.addressKey
							? this.tryListing(input, identity.addressKey)
							: this.tryUnmatched(input),
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

	/**
	 * `merge` for a page of records, with the same outcomes (in input order) as merging them one by
	 * one. Round trips for the page: a read by key and a read by address claim, then, for the records
	 * that change something, one batch of locks, one insert of the new properties, one guarded replace
	 * of the updated ones and the locks' release. A listing that is new or changed, a parcel meeting an
	 * address-keyed property to adopt or absorb, a record sharing a lock key with another of the page,
	 * a lock not obtained, a clash or a version that moved: those records go through `merge`.
	 */
	async mergeMany(inputs: Contribution[]): Promise<MergeOutcome[]> {
		const items = inputs.map((input) => {
			const unjoinable = unjoinableReason(input);
			if (unjoinable) throw new UnjoinableRecordError(unjoinable);
			const identity = identityOf(input);
			return { input, identity, lockKeys: mergeLockKeys(input, identity) };
		});
		const out: (MergeOutcome | null)[] = items.map(() => null);
		const fallback = new Set<number>();
		// A record given twice keeps its order: both go through `merge`.
		const perSourceKey = new Map<string, number>();
		for (const { lockKeys } of items)
			perSourceKey.set(lockKeys[0]!, (perSourceKey.get(lockKeys[0]!) ?? 0) + 1);
		items.forEach(({ lockKeys }, i) => {
			if (perSourceKey.get(lockKeys[0]!)! > 1) fallback.add(i);
		});
		const open = (i: number) => out[i] === null && !fallback.has(i);
		const unchanged = (doc: PropertyDoc): MergeOutcome => ({
			key: doc.key,
			status: "unchanged",
			changes: [],
			attempts: 1,
			absorbed: [],
		});

		// Read 1: the parcels' properties, by key.
		const apns = [
			...new Set(items.flatMap(({ identity }, i) => (open(i) && identity.apn ? [identity.apn] : []))),
		];
		const byKey = new Map(
			apns.length > 0 ? (await this.col.find({ key: { $in: apns } })).map((d) => [d.key, d]) : [],
		);
		items.forEach(({ input, identity }, i) => {
			const doc = identity.apn ? byKey.get(identity.apn) : undefined;
			if (open(i) && doc && alreadyMerged(doc, input)) out[i] = unchanged(doc);
		});
		// Read 2: the holders of the addresses the others name.
		const addressOf = (identity: Identity) =>
			identity.addressKey ?? (identity.apn ? (byKey.get(identity.apn)?.addressKey ?? null) : null);
		const addresses = [
			...new Set(
				items.flatMap(({ identity }, i) => {
					const address = open(i) ? addressOf(identity) : null;
					return address ? [address] : [];
				}),
			),
		];
		const byClaim = new Map(
			addresses.length > 0
				? (await this.col.find({ claim: { $in: addresses } })).map((d) => [d.claim, d])
				: [],
		);
		items.forEach(({ input, identity }, i) => {
			if (!open(i)) return;
			if (identity.apn) {
				const doc = byKey.get(identity.apn);
				const address = addressOf(identity);
				const holder = address ? byClaim.get(address) : undefined;
				// An address-keyed property to adopt or absorb: the careful path.
				if (holder && !holder.apn && holder._id !== doc?._id) fallback.add(i);
				return;
			}
			const holder = byClaim.get(identity.addressKey!);
			if (holder && alreadyMerged(holder, input)) out[i] = unchanged(holder);
			else fallback.add(i);
		});

		// The parcels left write; each must be the only record of the page its locks cover.
		const pending = items.map((_, i) => i).filter((i) => out[i] === null);
		const lockUse = new Map<string, number>();
		for (const i of pending) for (const k of items[i]!.lockKeys) lockUse.set(k, (lockUse.get(k) ?? 0) + 1);
		const writers = pending.filter((i) => {
			if (fallback.has(i)) return false;
			if (items[i]!.lockKeys.every((k) => lockUse.get(k) === 1)) return true;
			fallback.add(i);
			return false;
		});
		if (writers.length > 0) {
			const held = await this.locks.tryLockMany(writers.flatMap((i) => items[i]!.lockKeys));
			try {
				const now = this.now();
				const inserts: { i: number; res: MergeResult }[] = [];
				const replaces: { i: number; res: MergeResult; version: number }[] = [];
				for (const i of writers) {
					const { input, identity, lockKeys } = items[i]!;
					if (!lockKeys.every((k) => held.acquired.has(k))) {
						fallback.add(i);
						continue;
					}
					const doc = byKey.get(identity.apn!) ?? null;
					const address = addressOf(identity);
					const holder = address ? (byClaim.get(address) ?? null) : null;
					if (!doc) {
						const res = mergeProperty(null, input, { id: randomUUID(), now, claimAddress: !holder });
						inserts.push({ i, res });
						continue;
					}
					const res = mergeProperty(doc, input, {
						id: doc._id,
						now,
						claimAddress: !holder || holder._id === doc._id,
					});
					if (res.status === "unchanged") out[i] = unchanged(doc);
					else replaces.push({ i, res, version: doc.version });
				}
				const { duplicates } = await this.col.insertMany(inserts.map(({ res }) => res.doc));
				const clashed = new Set(duplicates);
				const outcome = ({ res }: { res: MergeResult }): MergeOutcome => ({
					key: res.doc.key,
					status: res.status,
					changes: res.changes,
					attempts: 1,
					absorbed: [],
				});
				for (const x of inserts) {
					if (clashed.has(x.res.doc._id)) fallback.add(x.i);
					else out[x.i] = outcome(x);
				}
				const replaced = await this.col.replaceManyIf(
					replaces.map(({ res, version }) => ({ query: { _id: res.doc._id, version }, doc: res.doc })),
				);
				replaces.forEach((x, j) => {
					if (replaced[j]) out[x.i] = outcome(x);
					else fallback.add(x.i);
				});
			} finally {
				await held.release();
			}
		}

		// The rest, one record at a time: records sharing a lock key in input order, others side by side.
		const groups = groupBySharedKeys(
			[...fallback].sort((a, b) => a - b),
			(i) => items[i]!.lockKeys,
		);
		let next = 0;
		await Promise.all(
			Array.from({ length: Math.min(FALLBACK_CONCURRENCY, groups.length) }, async () => {
				while (next < groups.length) {
					const group = groups[next++]!;
					for (const i of group) out[i] = await this.merge(items[i]!.input);
				}
			}),
		);
		return out as MergeOutcome[];
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
		const key = sourceKey(input.source, input.sourceId);
		const claimHolder = await this.col.findOne({ claim: addrKey });
		const match: MatchInfo = { method: "address", confidence: 1, at: now };
		const held = claimHolder?.sourceKeys.includes(key)
			? claimHolder
			: await this.col.findOne({ sourceKeys: key });
		// The listing was stored unmatched before (its address could not be keyed then): it moves.
		const unmatched = held && held.key === unmatchedPropertyKey(input.source, input.sourceId) ? held : null;
		if (unmatched && claimHolder) {
			const res = mergeProperty(claimHolder, input, { id: claimHolder._id, now, absorb: [unmatched], match });
			if (!(await this.col.replaceIf({ _id: claimHolder._id, version: claimHolder.version }, res.doc)))
				return null;
			await this.col.deleteIf({ _id: unmatched._id, version: unmatched.version });
			return { key: res.doc.key, status: "updated", changes: res.changes, absorbed: [unmatched.key] };
		}
		if (unmatched) {
			const res = mergeProperty(unmatched, input, { id: unmatched._id, now, claimAddress: true, match });
			if (!(await this.col.replaceIf({ _id: unmatched._id, version: unmatched.version }, res.doc)))
				return null;
			return { key: res.doc.key, status: "updated", changes: res.changes, absorbed: [] };
		}
		const doc = held ?? claimHolder;
		if (!doc) {
			const res = mergeProperty(null, input, { id: randomUUID(), now, claimAddress: true, match });
			await this.col.insert(res.doc);
			return { key: res.doc.key, status: res.status, changes: res.changes, absorbed: [] };
		}
		const res = mergeProperty(doc, input, { id: doc._id, now, ...(doc === claimHolder ? { match } : {}) });
		if (res.status === "unchanged") return { key: doc.key, status: "unchanged", changes: [], absorbed: [] };
		if (!(await this.col.replaceIf({ _id: doc._id, version: doc.version }, res.doc))) return null;
		return { key: res.doc.key, status: res.status, changes: res.changes, absorbed: [] };
	}

	/**
	 * A listing whose address gives no key: stored under its own key ("mls:<id>") with the reason,
	 * never dropped; a later record of it that can be keyed moves it (see `tryListing`).
	 */
	private async tryUnmatched(input: Contribution): Promise<Omit<MergeOutcome, "attempts"> | null> {
		const now = this.now();
		const key = unmatchedPropertyKey(input.source, input.sourceId);
		const doc =
			(await this.col.findOne({ key })) ??
			(await this.col.findOne({ sourceKeys: sourceKey(input.source, input.sourceId) }));
		if (!doc) {
			const reason = unmatchedReason(input) ?? "listing address cannot be keyed";
			const res = mergeProperty(null, input, {
				id: randomUUID(),
				now,
				fallbackKey: key,
				match: { method: "unmatched", confidence: 0, at: now, reason },
			});
			await this.col.insert(res.doc);
			return { key: res.doc.key, status: res.status, changes: res.changes, absorbed: [] };
		}
		// Already stored (unmatched, or joined to a parcel by an earlier, better address): stays there.
		const res = mergeProperty(doc, input, { id: doc._id, now, fallbackKey: key });
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

	/**
	 * Keyset paging: the `pageSize` properties after `afterKey` in key order, and the key to ask
	 * after next (null at the end). Unlike offset paging it costs the same on the last page as on
	 * the first, and a property written meanwhile never shifts a page (a full export reads each
	 * property once).
	 */
	async pageAfter(query: Query, afterKey: string, pageSize: number): Promise<KeysetPage> {
		const rows = await this.col.find(
			{ ...query, key: { $gt: afterKey } },
			{ sort: { key: 1 }, limit: pageSize, omit: LIST_OMIT },
		);
		return { rows, pageSize, nextKey: rows.length === pageSize ? rows[rows.length - 1]!.key : null };
	}

	count(query: Query = {}): Promise<number> {
		return this.col.count(query);
	}
}

/** `indexes` split into groups of records linked by shared keys, each group in input order. */
function groupBySharedKeys(indexes: number[], keysOf: (i: number) => string[]): number[][] {
	const parent = new Map<number, number>();
	const find = (i: number): number => {
		let root = i;
		while (parent.get(root) !== root) root = parent.get(root)!;
		parent.set(i, root);
		return root;
	};
	const owner = new Map<string, number>();
	for (const i of indexes) {
		parent.set(i, i);
		for (const k of keysOf(i)) {
			const j = owner.get(k);
			if (j === undefined) owner.set(k, i);
			else parent.set(find(i), find(j));
		}
	}
	const groups = new Map<number, number[]>();
	for (const i of indexes) {
		const root = find(i);
		const group = groups.get(root);
		if (group) group.push(i);
		else groups.set(root, [i]);
	}
	return [...groups.values()];
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
