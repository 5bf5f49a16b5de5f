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
import { PermanentError, TransientError } from "../core/errors.ts";
import { addressKeyProblem } from "../domain/address.ts";
import { propertyInputHash } from "../domain/enrichment-input.ts";
import {
	candidateStreets,
	type ListingAddress,
	listingAddress,
	type ParcelCandidate,
	resolveListing,
	streetBase,
} from "../domain/matching.ts";
import {
	addressPropertyKey,
	type Contribution,
	canonicalJson,
	type HistoryEntry,
	identityOf,
	type MatchLogEntry,
	type MergeOptions,
	type MergeResult,
	mergeProperty,
	overlayRecord,
	type PropertyDoc,
	type PropertyEnrichment,
	removeContribution,
	sourceKey,
	unmatchedPropertyKey,
} from "../domain/property.ts";
import type { AssessorParcelRecord, MlsListingRecord } from "../domain/records.ts";
import { contentionMs, WRITE_CONTENTION } from "../utils/backoff.ts";
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

/** A merge kept losing to concurrent writers: retried later (MERGE_CONFLICT, 503). */
export class MergeConflictError extends TransientError {
	constructor(message: string) {
		super(message, { type: "MERGE_CONFLICT" });
	}
}

/** A record with no key to join it by: no retry changes that (UNJOINABLE_RECORD, 422). */
export class UnjoinableRecordError extends PermanentError {
	constructor(message: string, data?: Record<string, unknown>) {
		super(message, { type: "UNJOINABLE_RECORD", ...(data ? { data } : {}) });
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
		// Candidates of a listing (same street line in any ZIP, its building's line) and a parcel's
		// street group for reconciliation: a top-level field, so FerretDB uses the index.
		await this.col.ensureIndex("street", false);
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
		if (!identity.apn) return await this.placeListing(input, lockKeys);
		for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
			try {
				const out = await this.locks.withLocks(lockKeys, () =>
					this.tryParcel(input, identity.apn!, identity.addressKey),
				);
				if (out) {
					const { lines, ...outcome } = out;
					// A new parcel, or one whose address moved: listings on its street may now belong to it
					// (twins folded) or to it rather than where they are (wrong merges split).
					if (lines.length > 0) await this.settle([], lines);
					return { ...outcome, attempts: attempt };
				}
			} catch (err) {
				if (!(err instanceof DuplicateKeyError)) throw err;
			}
			// Lost a race: back off a little, with jitter so racing writers do not collide in step.
			await sleep(contentionMs(attempt, WRITE_CONTENTION));
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
		// Street lines of the parcels written new or with a moved address: settled after, like `merge` does.
		const settleLines: string[] = [];
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
					else {
						out[x.i] = outcome(x);
						if (x.res.doc.street) settleLines.push(x.res.doc.street);
					}
				}
				const replaced = await this.col.replaceManyIf(
					replaces.map(({ res, version }) => ({ query: { _id: res.doc._id, version }, doc: res.doc })),
				);
				replaces.forEach((x, j) => {
					if (!replaced[j]) {
						fallback.add(x.i);
						return;
					}
					out[x.i] = outcome(x);
					const before = byKey.get(items[x.i]!.identity.apn!);
					if (before?.street !== x.res.doc.street)
						for (const line of [before?.street, x.res.doc.street]) if (line) settleLines.push(line);
				});
			} finally {
				await held.release();
			}
		}

		if (settleLines.length > 0) await this.settle([], [...new Set(settleLines)]);

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
	): Promise<(Omit<MergeOutcome, "attempts"> & { lines: string[] }) | null> {
		const now = this.now();
		const doc = await this.col.findOne({ key: apn });
		const address = addrKey ?? doc?.addressKey ?? null;
		const holder = address ? await this.col.findOne({ claim: address }) : null;
		const orphan = holder && !holder.apn && holder._id !== doc?._id ? holder : null;
		/** Street lines to settle after this write: the parcel's, when it is new or its address moved. */
		const linesOf = (next: PropertyDoc) =>
			!doc || doc.street !== next.street || orphan
				? [...new Set([next.street, doc?.street].filter((x): x is string => !!x))]
				: [];

		if (!doc && orphan) {
			const res = mergeProperty(orphan, input, { id: orphan._id, now, claimAddress: true });
			if (!(await this.col.replaceIf({ _id: orphan._id, version: orphan.version }, res.doc))) return null;
			return {
				key: res.doc.key,
				status: "updated",
				changes: res.changes,
				absorbed: [orphan.key],
				lines: linesOf(res.doc),
			};
		}
		if (!doc) {
			const res = mergeProperty(null, input, { id: randomUUID(), now, claimAddress: !holder });
			await this.col.insert(res.doc);
			return {
				key: res.doc.key,
				status: res.status,
				changes: res.changes,
				absorbed: [],
				lines: linesOf(res.doc),
			};
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
			return {
				key: res.doc.key,
				status: "updated",
				changes: res.changes,
				absorbed: [orphan.key],
				lines: linesOf(res.doc),
			};
		}
		const res = mergeProperty(doc, input, {
			id: doc._id,
			now,
			claimAddress: !holder || holder._id === doc._id,
		});
		if (res.status === "unchanged")
			return { key: doc.key, status: "unchanged", changes: [], absorbed: [], lines: [] };
		if (!(await this.col.replaceIf({ _id: doc._id, version: doc.version }, res.doc))) return null;
		return {
			key: res.doc.key,
			status: res.status,
			changes: res.changes,
			absorbed: [],
			lines: linesOf(res.doc),
		};
	}

	/**
	 * Place a listing (issue 12): on the parcel its address matches best (exact key, then candidates
	 * with a confidence), else under its address key waiting for its parcel, else (no key, or
	 * ambiguous, or below the threshold) unmatched under its own key with the reason. A listing held
	 * elsewhere moves, history kept. Every property it writes or leaves is written holding all of
	 * that property's writer lock keys (read under the locks held; when they are not all held, the
	 * locks are taken again with the missing ones), so a candidate join excludes the parcel's writers.
	 */
	private async placeListing(input: Contribution, baseKeys: string[]): Promise<MergeOutcome> {
		let keys = [...new Set(baseKeys)];
		for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
			try {
				const held = new Set(keys);
				const out = await this.locks.withLocks(keys, () => this.tryPlaceListing(input, held));
				if (out && "needLocks" in out) {
					keys = [...new Set([...keys, ...out.needLocks])];
					continue;
				}
				if (out) return { ...out, attempts: attempt };
			} catch (err) {
				if (!(err instanceof DuplicateKeyError)) throw err;
			}
			await sleep(contentionMs(attempt, WRITE_CONTENTION));
		}
		throw new MergeConflictError(
			`gave up merging ${sourceKey(input.source, input.sourceId)} after ${this.maxAttempts} conflicts`,
		);
	}

	private async tryPlaceListing(
		input: Contribution,
		held: Set<string>,
	): Promise<Omit<MergeOutcome, "attempts"> | { needLocks: string[] } | null> {
		const now = this.now();
		const skey = sourceKey(input.source, input.sourceId);
		const ownKey = unmatchedPropertyKey(input.source, input.sourceId);
		const a = addressOfListing(input);
		const claimHolder = a.key ? await this.col.findOne({ claim: a.key }) : null;
		const streets = candidateStreets(a);
		const onStreet = streets.length > 0 ? await this.col.find({ street: { $in: streets } }) : [];
		const docs = uniqueDocs([claimHolder, ...onStreet]);
		let holders = docs.filter((d) => d.sourceKeys.includes(skey));
		if (holders.length === 0) holders = await this.col.find({ sourceKeys: skey });

		const place = placementOf(input, a, docs);
		let target: PropertyDoc | null = null;
		const opts: Partial<MergeOptions> = {};
		if (place.kind === "parcel") {
			target = place.doc;
			opts.match = { method: place.method, confidence: place.confidence, at: now, reason: place.reason };
		} else if (place.kind === "address") {
			const addrKey = a.key!;
			const key = addressPropertyKey(addrKey);
			target =
				docs.find((d) => !d.apn && d.key === key) ??
				(claimHolder && !claimHolder.apn ? claimHolder : null) ??
				holders.find((h) => !h.apn && h.sourceKeys.length === 1) ??
				null;
			opts.key = key;
			opts.claim = !claimHolder || claimHolder._id === target?._id ? addrKey : `#${key}`;
			opts.match = { method: "address", confidence: 1, at: now };
		} else {
			target =
				holders.find((h) => h.key === ownKey) ??
				holders.find((h) => !h.apn && h.sourceKeys.length === 1) ??
				null;
			opts.key = ownKey;
			opts.claim = `#${ownKey}`;
			opts.match = { method: "unmatched", confidence: place.confidence, at: now, reason: place.reason };
		}

		// Every property written or left: all its writers' lock keys held.
		const needed = [...held, ...holders.flatMap(writerLockKeys), ...(target ? writerLockKeys(target) : [])];
		if (needed.some((k) => !held.has(k))) return { needLocks: needed };

		const leaving = holders.filter((h) => h._id !== target?._id);
		const prev = [...leaving, ...(target ? [target] : [])]
			.flatMap((d) => d.contributions)
			.find((c) => sourceKey(c.source, c.sourceId) === skey);
		// The record as stored where it was, overlaid by this one (a re-collection may leave fields out).
		const record: Contribution =
			prev && !target?.sourceKeys.includes(skey)
				? {
						...input,
						record: overlayRecord(prev.record, input.record),
						collectedAt: [prev.collectedAt, input.collectedAt].sort()[1] ?? input.collectedAt,
					}
				: input;
		const joins = !target?.sourceKeys.includes(skey);
		const entry = (event: MatchLogEntry["event"], other: string | null): MatchLogEntry => ({
			listing: skey,
			event,
			other,
			method: opts.match!.method,
			confidence: opts.match!.confidence,
			...(opts.match!.reason ? { reason: opts.match!.reason } : {}),
			at: now,
		});
		const res = mergeProperty(target, record, {
			id: target?._id ?? randomUUID(),
			now,
			...opts,
			carryHistory: leaving.flatMap((h) =>
				h.history.filter((e) => e.source === input.source && e.sourceId === input.sourceId),
			),
			...(joins && leaving.length > 0 ? { logEntry: entry("joined", leaving[0]!.key) } : {}),
		});
		if (res.status === "unchanged" && leaving.length === 0)
			return { key: res.doc.key, status: "unchanged", changes: [], absorbed: [] };
		if (!target) await this.col.insert(res.doc);
		else if (res.status !== "unchanged") {
			if (!(await this.col.replaceIf({ _id: target._id, version: target.version }, res.doc))) return null;
		}
		// Then leave the properties it was in (a crash in between leaves it in both: its next merge,
		// or the ZIP's reconciliation, finishes the move).
		const absorbed: string[] = [];
		for (const h of leaving) {
			const rest = removeContribution(h, skey, { now, logEntry: entry("left", res.doc.key) });
			if (rest === null) {
				if (!(await this.col.deleteIf({ _id: h._id, version: h.version }))) return null;
				absorbed.push(h.key);
			} else if (!(await this.col.replaceIf({ _id: h._id, version: h.version }, rest))) return null;
		}
		return {
			key: res.doc.key,
			status: target ? (res.status === "unchanged" ? "updated" : res.status) : "new",
			changes: res.changes,
			absorbed,
		};
	}

	/**
	 * Listings on the given street lines (and their buildings', and the parcels' of `seed`) put where
	 * they belong now: each listing whose best placement is not the property holding it is placed
	 * again (`placeListing`, under its locks). What a parcel's arrival or a key change leaves to do;
	 * idempotent and safe beside any merge. Returns the listings examined and moved.
	 */
	async settle(seed: PropertyDoc[], lines: string[]): Promise<{ listings: number; moved: number }> {
		const wanted = new Set<string>();
		const addLine = (street: string | null | undefined) => {
			if (!street) return;
			wanted.add(street);
			const base = streetBase(street);
			if (base) wanted.add(base);
		};
		for (const l of lines) addLine(l);
		for (const d of seed) if (d.apn) addLine(d.street);
		const read = new Set<string>();
		const readLines = async (streets: string[]) => {
			const todo = streets.filter((s) => !read.has(s));
			for (const s of todo) read.add(s);
			return todo.length > 0 ? await this.col.find({ street: { $in: todo } }) : [];
		};
		let docs = uniqueDocs([...seed, ...(await readLines([...wanted]))]);
		const listings = docs.flatMap((d) =>
			d.contributions.filter((c) => c.source !== "maricopa").map((c) => ({ c, d, a: addressOfListing(c) })),
		);
		if (listings.length === 0) return { listings: 0, moved: 0 };
		docs = uniqueDocs([...docs, ...(await readLines(listings.flatMap(({ a }) => candidateStreets(a))))]);
		let moved = 0;
		for (const { c, d, a } of listings) {
			const streets = candidateStreets(a);
			const candidates = docs.filter((x) => x.street && streets.includes(x.street));
			const place = placementOf(c, a, candidates);
			if (isPlaced(c, d, place)) continue;
			await this.placeListing(c, mergeLockKeys(c, identityOf(c)));
			moved++;
		}
		return { listings: listings.length, moved };
	}

	/**
	 * Reconciliation across a ZIP (`properties.reconcile`, nightly): its properties in key order, a
	 * page at a time, each page settled with the properties on its parcels' street lines (any ZIP:
	 * a listing-only twin in a neighbouring ZIP is found from its parcel) and its listings' candidate
	 * lines. Twins are folded, wrong merges split, unmatched listings retried; history kept.
	 */
	async reconcileZip(
		zip: string,
		pageSize = 200,
	): Promise<{ zip: string; properties: number; listings: number; moved: number }> {
		const out = { zip, properties: 0, listings: 0, moved: 0 };
		let after = "";
		for (;;) {
			const page = await this.col.find({ zip, key: { $gt: after } }, { sort: { key: 1 }, limit: pageSize });
			if (page.length === 0) break;
			out.properties += page.length;
			const r = await this.settle(page, []);
			out.listings += r.listings;
			out.moved += r.moved;
			after = page[page.length - 1]!.key;
			if (page.length < pageSize) break;
		}
		return out;
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
			await sleep(contentionMs(attempt, WRITE_CONTENTION));
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

type Placement =
	| { kind: "parcel"; doc: PropertyDoc; method: "address" | "candidate"; confidence: number; reason: string }
	| { kind: "address" }
	| { kind: "unmatched"; confidence: number; reason: string };

function addressOfListing(c: Pick<Contribution, "record">): ListingAddress {
	const address = (c.record as MlsListingRecord).address;
	return listingAddress(address?.street, address?.zip);
}

/** A parcel property as a candidate for `listing`: its address, its other listings' addresses, its facts. */
function candidateOf(doc: PropertyDoc, listing: string): ParcelCandidate {
	const parcel = doc.contributions.find((c) => c.source === "maricopa")?.record as
		| AssessorParcelRecord
		| undefined;
	const otherKeys = doc.contributions
		.filter((c) => c.source !== "maricopa" && sourceKey(c.source, c.sourceId) !== listing)
		.map((c) => addressOfListing(c).key)
		.filter((k): k is string => !!k && k !== doc.addressKey);
	return {
		id: doc._id,
		addressKey: doc.addressKey,
		street: doc.street,
		zip: doc.zip,
		otherKeys,
		facts: {
			sqft: parcel?.facts?.livableSpace,
			yearBuilt: parcel?.facts?.constructionYear,
			lotSqft: parcel?.facts?.lotSize,
		},
	};
}

/** Where a listing belongs among `docs` (the properties on its candidate street lines). */
function placementOf(input: Contribution, a: ListingAddress, docs: PropertyDoc[]): Placement {
	if (!a.key) {
		return {
			kind: "unmatched",
			confidence: 0,
			reason: unmatchedReason(input) ?? "listing address cannot be keyed",
		};
	}
	const r = input.record as MlsListingRecord;
	const skey = sourceKey(input.source, input.sourceId);
	const parcels = docs.filter((d) => d.apn);
	const res = resolveListing(
		a,
		{ sqft: r.sqft, yearBuilt: r.yearBuilt, lotSqft: r.lotSqft },
		parcels.map((d) => candidateOf(d, skey)),
	);
	if (res.kind === "matched") {
		const doc = parcels.find((d) => d._id === res.id)!;
		return { kind: "parcel", doc, method: res.method, confidence: res.confidence, reason: res.reason };
	}
	if (res.kind === "none") return { kind: "address" };
	return { kind: "unmatched", confidence: res.confidence, reason: res.reason };
}

/** The listing `c`, held by `doc`, is where `place` puts it. */
function isPlaced(c: Contribution, doc: PropertyDoc, place: Placement): boolean {
	if (place.kind === "parcel") return place.doc._id === doc._id;
	if (place.kind === "address") {
		const a = addressOfListing(c);
		return !doc.apn && !!a.key && doc.key === addressPropertyKey(a.key);
	}
	return doc.key === unmatchedPropertyKey(c.source, c.sourceId);
}

function uniqueDocs(docs: (PropertyDoc | null | undefined)[]): PropertyDoc[] {
	const byId = new Map<string, PropertyDoc>();
	for (const d of docs) if (d && !byId.has(d._id)) byId.set(d._id, d);
	return [...byId.values()];
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
