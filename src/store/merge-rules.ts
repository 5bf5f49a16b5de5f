/**
 * What every merge path of the property store (one record, a page, a listing's placement) shares:
 * which records can be stored at all, when a record is already merged, what a merge answers, and
 * which lock keys a writer takes so that any two writers of one property exclude each other.
 */
import { PermanentError, TransientError } from "../core/errors.ts";
import { addressKeyProblem } from "../domain/address.ts";
import {
	canonicalJson,
	type HistoryEntry,
	identityOf,
	type MergeResult,
	overlayRecord,
	type PropertyDoc,
	sourceKey,
} from "../domain/property.ts";
import type { Contribution } from "../domain/property-fields.ts";
import type { MlsListingRecord } from "../domain/records.ts";
import type { DocCollection } from "./collection.ts";
import type { KeyLocks } from "./key-lock.ts";

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

/** What the write paths work with: the properties, the merge locks, the clock, the retry bound. */
export interface PropertyWriter {
	readonly col: DocCollection<PropertyDoc>;
	readonly locks: KeyLocks;
	readonly now: () => string;
	/** Tries before a write that keeps losing races gives up (MergeConflictError). */
	readonly maxAttempts: number;
}

export type Identity = ReturnType<typeof identityOf>;

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

/** The property holds this exact record already (and, for a parcel, owns its address claim). */
export function alreadyMerged(doc: PropertyDoc, input: Contribution): boolean {
	const prev = doc.contributions.find((c) => c.source === input.source && c.sourceId === input.sourceId);
	if (!prev || canonicalJson(overlayRecord(prev.record, input.record)) !== canonicalJson(prev.record))
		return false;
	return input.source !== "maricopa" || !doc.addressKey || doc.claim === doc.addressKey;
}

/** The answer for a record its property already holds as it is. */
export function unchangedOutcome(doc: PropertyDoc): MergeOutcome {
	return { key: doc.key, status: "unchanged", changes: [], attempts: 1, absorbed: [] };
}

/**
 * Every writer of a property holds at least one key in common with every other writer of it:
 * parcels take their APN and address, listings their address and their own source key.
 */
export function mergeLockKeys(input: Contribution, identity: Identity): string[] {
	const keys = [sourceKey(input.source, input.sourceId)];
	if (identity.apn) keys.push(`apn:${identity.apn}`);
	if (identity.addressKey) keys.push(`addr:${identity.addressKey}`);
	return keys;
}

/**
 * Lock keys of every writer that may merge into `doc` (see `mergeLockKeys`): its APN, its address
 * and its address claim, and each of its records' source keys. Holding them all excludes any merge
 * of it.
 */
export function writerLockKeys(doc: PropertyDoc): string[] {
	const keys = [...doc.sourceKeys];
	if (doc.apn) keys.push(`apn:${doc.apn}`);
	if (doc.addressKey) keys.push(`addr:${doc.addressKey}`);
	if (!doc.claim.startsWith("#")) keys.push(`addr:${doc.claim}`);
	return [...new Set(keys)].sort();
}

/** The error a write gives up with after `maxAttempts` lost races. */
export function gaveUp(what: string, attempts: number): MergeConflictError {
	return new MergeConflictError(`gave up ${what} after ${attempts} conflicts`);
}
