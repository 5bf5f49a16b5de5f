/**
 * One record merged into its property (`PropertyStore.merge`). A parcel (APN) record goes to the
 * property keyed by its APN. If a listing reached the store first, its address-keyed property holds
 * the address claim: the parcel adopts it (re-keys it to the APN) or, when the parcel already has a
 * property, absorbs and deletes it — no orphan twin. A listing goes where its placement puts it
 * (listing-merge.ts).
 */
import { randomUUID } from "node:crypto";
import {
	identityOf,
	mergeProperty,
	type PropertyDoc,
	sourceKey,
	unmatchedPropertyKey,
} from "../domain/property.ts";
import type { Contribution } from "../domain/property-fields.ts";
import { contentionMs, WRITE_CONTENTION } from "../utils/backoff.ts";
import { sleep } from "../utils/time.ts";
import { DuplicateKeyError } from "./collection.ts";
import { placeListing, settle } from "./listing-merge.ts";
import {
	alreadyMerged,
	gaveUp,
	type MergeOutcome,
	mergeLockKeys,
	type PropertyWriter,
	UnjoinableRecordError,
	unchangedOutcome,
	unjoinableReason,
} from "./merge-rules.ts";

/**
 * Merge one record: refused when it cannot be joined, answered at once when its property holds it
 * as it is, else a listing is placed (listing-merge.ts) and a parcel written under its lock keys,
 * retried with backoff while it loses races to other writers.
 */
export async function mergeRecord(w: PropertyWriter, input: Contribution): Promise<MergeOutcome> {
	const identity = identityOf(input);
	const unjoinable = unjoinableReason(input);
	if (unjoinable) throw new UnjoinableRecordError(unjoinable);
	// Re-collection fast path: the record is already merged as it is, no lock or write needed.
	// A parcel's record is in the property keyed by its APN; a listing's, nearly always, in the
	// holder of its address claim (else the locked path below finds it).
	const holder = identity.apn
		? await w.col.findOne({ key: identity.apn })
		: identity.addressKey
			? await w.col.findOne({ claim: identity.addressKey })
			: await w.col.findOne({ key: unmatchedPropertyKey(input.source, input.sourceId) });
	if (holder && alreadyMerged(holder, input)) {
		return unchangedOutcome(holder);
	}
	const lockKeys = mergeLockKeys(input, identity);
	if (!identity.apn) return await placeListing(w, input, lockKeys);
	for (let attempt = 1; attempt <= w.maxAttempts; attempt++) {
		try {
			const out = await w.locks.withLocks(lockKeys, () =>
				writeParcel(w, input, identity.apn!, identity.addressKey),
			);
			if (out) {
				const { lines, ...outcome } = out;
				// A new parcel, or one whose address moved: listings on its street may now belong to it
				// (twins folded) or to it rather than where they are (wrong merges split).
				if (lines.length > 0) await settle(w, [], lines);
				return { ...outcome, attempts: attempt };
			}
		} catch (err) {
			if (!(err instanceof DuplicateKeyError)) throw err;
		}
		// Lost a race: back off a little, with jitter so racing writers do not collide in step.
		await sleep(contentionMs(attempt, WRITE_CONTENTION));
	}
	throw gaveUp(`merging ${sourceKey(input.source, input.sourceId)}`, w.maxAttempts);
}

/**
 * One try at a parcel's write, under its lock keys: into the property keyed by its APN (new, or
 * updated), adopting or absorbing the address-keyed property of a listing that came first. Null
 * when a version moved under it (try again); the street lines to settle after, with the outcome.
 */
async function writeParcel(
	w: PropertyWriter,
	input: Contribution,
	apn: string,
	addrKey: string | null,
): Promise<(Omit<MergeOutcome, "attempts"> & { lines: string[] }) | null> {
	const now = w.now();
	const doc = await w.col.findOne({ key: apn });
	const address = addrKey ?? doc?.addressKey ?? null;
	const holder = address ? await w.col.findOne({ claim: address }) : null;
	const orphan = holder && !holder.apn && holder._id !== doc?._id ? holder : null;
	/** Street lines to settle after this write: the parcel's, when it is new or its address moved. */
	const linesOf = (next: PropertyDoc) =>
		!doc || doc.street !== next.street || orphan
			? [...new Set([next.street, doc?.street].filter((x): x is string => !!x))]
			: [];

	if (!doc && orphan) {
		const res = mergeProperty(orphan, input, { id: orphan._id, now, claimAddress: true });
		if (!(await w.col.replaceIf({ _id: orphan._id, version: orphan.version }, res.doc))) return null;
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
		await w.col.insert(res.doc);
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
		if (!(await w.col.replaceIf({ _id: doc._id, version: doc.version }, res.doc))) return null;
		if (!(await w.col.deleteIf({ _id: orphan._id, version: orphan.version }))) return null;
		const claimed = mergeProperty(res.doc, input, { id: doc._id, now, claimAddress: true });
		if (claimed.status !== "unchanged") {
			await w.col.replaceIf({ _id: doc._id, version: res.doc.version }, claimed.doc);
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
	if (!(await w.col.replaceIf({ _id: doc._id, version: doc.version }, res.doc))) return null;
	return {
		key: res.doc.key,
		status: res.status,
		changes: res.changes,
		absorbed: [],
		lines: linesOf(res.doc),
	};
}
