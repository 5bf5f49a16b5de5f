/**
 * A listing's write path (issue 12): placed where it belongs (listing-placement.ts), moved there
 * with its history when it was held elsewhere, and the listings of street lines put right again
 * when a parcel arrives or moves (`settle`) or nightly across a ZIP (`reconcileZip`).
 */
import { randomUUID } from "node:crypto";
import { candidateStreets, streetBase } from "../domain/matching.ts";
import {
	addressPropertyKey,
	identityOf,
	type MatchLogEntry,
	type MergeOptions,
	mergeProperty,
	overlayRecord,
	type PropertyDoc,
	removeContribution,
	sourceKey,
	unmatchedPropertyKey,
} from "../domain/property.ts";
import type { Contribution } from "../domain/property-fields.ts";
import { contentionMs, WRITE_CONTENTION } from "../utils/backoff.ts";
import { sleep } from "../utils/time.ts";
import { DuplicateKeyError } from "./collection.ts";
import { addressOfListing, isPlaced, placementOf, uniqueDocs } from "./listing-placement.ts";
import {
	gaveUp,
	type MergeOutcome,
	mergeLockKeys,
	type PropertyWriter,
	writerLockKeys,
} from "./merge-rules.ts";

/**
 * Place a listing (issue 12): on the parcel its address matches best (exact key, then candidates
 * with a confidence), else under its address key waiting for its parcel, else (no key, or
 * ambiguous, or below the threshold) unmatched under its own key with the reason. A listing held
 * elsewhere moves, history kept. Every property it writes or leaves is written holding all of
 * that property's writer lock keys (read under the locks held; when they are not all held, the
 * locks are taken again with the missing ones), so a candidate join excludes the parcel's writers.
 */
export async function placeListing(
	w: PropertyWriter,
	input: Contribution,
	baseKeys: string[],
): Promise<MergeOutcome> {
	let keys = [...new Set(baseKeys)];
	for (let attempt = 1; attempt <= w.maxAttempts; attempt++) {
		try {
			const held = new Set(keys);
			const out = await w.locks.withLocks(keys, () => tryPlaceListing(w, input, held));
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
	throw gaveUp(`merging ${sourceKey(input.source, input.sourceId)}`, w.maxAttempts);
}

async function tryPlaceListing(
	w: PropertyWriter,
	input: Contribution,
	held: Set<string>,
): Promise<Omit<MergeOutcome, "attempts"> | { needLocks: string[] } | null> {
	const now = w.now();
	const skey = sourceKey(input.source, input.sourceId);
	const ownKey = unmatchedPropertyKey(input.source, input.sourceId);
	const a = addressOfListing(input);
	const claimHolder = a.key ? await w.col.findOne({ claim: a.key }) : null;
	const streets = candidateStreets(a);
	const onStreet = streets.length > 0 ? await w.col.find({ street: { $in: streets } }) : [];
	const docs = uniqueDocs([claimHolder, ...onStreet]);
	let holders = docs.filter((d) => d.sourceKeys.includes(skey));
	if (holders.length === 0) holders = await w.col.find({ sourceKeys: skey });

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
	if (!target) await w.col.insert(res.doc);
	else if (res.status !== "unchanged") {
		if (!(await w.col.replaceIf({ _id: target._id, version: target.version }, res.doc))) return null;
	}
	// Then leave the properties it was in (a crash in between leaves it in both: its next merge,
	// or the ZIP's reconciliation, finishes the move).
	const absorbed: string[] = [];
	for (const h of leaving) {
		const rest = removeContribution(h, skey, { now, logEntry: entry("left", res.doc.key) });
		if (rest === null) {
			if (!(await w.col.deleteIf({ _id: h._id, version: h.version }))) return null;
			absorbed.push(h.key);
		} else if (!(await w.col.replaceIf({ _id: h._id, version: h.version }, rest))) return null;
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
export async function settle(
	w: PropertyWriter,
	seed: PropertyDoc[],
	lines: string[],
): Promise<{ listings: number; moved: number }> {
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
		return todo.length > 0 ? await w.col.find({ street: { $in: todo } }) : [];
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
		await placeListing(w, c, mergeLockKeys(c, identityOf(c)));
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
export async function reconcileZip(
	w: PropertyWriter,
	zip: string,
	pageSize = 200,
): Promise<{ zip: string; properties: number; listings: number; moved: number }> {
	const out = { zip, properties: 0, listings: 0, moved: 0 };
	let after = "";
	for (;;) {
		const page = await w.col.find({ zip, key: { $gt: after } }, { sort: { key: 1 }, limit: pageSize });
		if (page.length === 0) break;
		out.properties += page.length;
		const r = await settle(w, page, []);
		out.listings += r.listings;
		out.moved += r.moved;
		after = page[page.length - 1]!.key;
		if (page.length < pageSize) break;
	}
	return out;
}
