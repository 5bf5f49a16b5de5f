/**
 * A page of records merged in a few round trips (`PropertyStore.mergeMany`, behind
 * `properties.ingest`): two reads for the whole page, the merges in memory, one insert of the new
 * properties and one version-guarded replace of the changed ones under batch locks. Whatever is not
 * that simple case goes through `mergeRecord` on its own.
 */
import { randomUUID } from "node:crypto";
import { identityOf, type MergeResult, mergeProperty } from "../domain/property.ts";
import type { Contribution } from "../domain/property-fields.ts";
import { settle } from "./listing-merge.ts";
import {
	alreadyMerged,
	type Identity,
	type MergeOutcome,
	mergeLockKeys,
	type PropertyWriter,
	UnjoinableRecordError,
	unchangedOutcome,
	unjoinableReason,
} from "./merge-rules.ts";
import { mergeRecord } from "./record-merge.ts";

/** Per-record merges `mergeMany` runs at once (records sharing a lock key run one after another). */
const FALLBACK_CONCURRENCY = 8;

/**
 * `mergeRecord` for a page of records, with the same outcomes (in input order) as merging them one by
 * one. Round trips for the page: a read by key and a read by address claim, then, for the records
 * that change something, one batch of locks, one insert of the new properties, one guarded replace
 * of the updated ones and the locks' release. A listing that is new or changed, a parcel meeting an
 * address-keyed property to adopt or absorb, a record sharing a lock key with another of the page,
 * a lock not obtained, a clash or a version that moved: those records go through `mergeRecord`.
 */
export async function mergeMany(w: PropertyWriter, inputs: Contribution[]): Promise<MergeOutcome[]> {
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
	for (const { lockKeys } of items) perSourceKey.set(lockKeys[0]!, (perSourceKey.get(lockKeys[0]!) ?? 0) + 1);
	items.forEach(({ lockKeys }, i) => {
		if (perSourceKey.get(lockKeys[0]!)! > 1) fallback.add(i);
	});
	const open = (i: number) => out[i] === null && !fallback.has(i);

	// Read 1: the parcels' properties, by key.
	const apns = [
		...new Set(items.flatMap(({ identity }, i) => (open(i) && identity.apn ? [identity.apn] : []))),
	];
	const byKey = new Map(
		apns.length > 0 ? (await w.col.find({ key: { $in: apns } })).map((d) => [d.key, d]) : [],
	);
	items.forEach(({ input, identity }, i) => {
		const doc = identity.apn ? byKey.get(identity.apn) : undefined;
		if (open(i) && doc && alreadyMerged(doc, input)) out[i] = unchangedOutcome(doc);
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
		addresses.length > 0 ? (await w.col.find({ claim: { $in: addresses } })).map((d) => [d.claim, d]) : [],
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
		if (holder && alreadyMerged(holder, input)) out[i] = unchangedOutcome(holder);
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
		const held = await w.locks.tryLockMany(writers.flatMap((i) => items[i]!.lockKeys));
		try {
			const now = w.now();
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
				if (res.status === "unchanged") out[i] = unchangedOutcome(doc);
				else replaces.push({ i, res, version: doc.version });
			}
			const { duplicates } = await w.col.insertMany(inserts.map(({ res }) => res.doc));
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
			const replaced = await w.col.replaceManyIf(
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

	if (settleLines.length > 0) await settle(w, [], [...new Set(settleLines)]);

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
				for (const i of group) out[i] = await mergeRecord(w, items[i]!.input);
			}
		}),
	);
	return out as MergeOutcome[];
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
