/**
 * Raw records exactly as received, one per (source, sourceId). A re-collected record with the same
 * content hash is recognized and not rewritten. The payload is kept as JSON text: upstream keys may
 * contain "." or start with "$", which neither NeDB nor MongoDB accepts as field names.
 */
import { createHash } from "node:crypto";
import { canonicalJson } from "../domain/property.ts";
import { CountingCollection, type DocCollection, DuplicateKeyError, type Tally } from "./collection.ts";

export interface RawDoc {
	/** "source:sourceId" */
	_id: string;
	source: string;
	sourceId: string;
	/** sha256 of the payload's canonical JSON. */
	hash: string;
	payloadJson: string;
	bytes: number;
	collectedAt: string;
	firstCollectedAt: string;
	/** Times the content changed after the first collection. */
	revisions: number;
	version: number;
}

export interface RawRecord {
	source: string;
	sourceId: string;
	collectedAt: string;
	firstCollectedAt: string;
	hash: string;
	revisions: number;
	payload: unknown;
}

export interface UpsertRawResult {
	status: "created" | "updated" | "unchanged";
	id: string;
	hash: string;
}

export interface RawItem {
	source: string;
	sourceId: string;
	payload: unknown;
	collectedAt: string;
}

export function payloadHash(payload: unknown): string {
	return createHash("sha256").update(canonicalJson(payload)).digest("hex");
}

export function toRawRecord(doc: RawDoc): RawRecord {
	return {
		source: doc.source,
		sourceId: doc.sourceId,
		collectedAt: doc.collectedAt,
		firstCollectedAt: doc.firstCollectedAt,
		hash: doc.hash,
		revisions: doc.revisions,
		payload: JSON.parse(doc.payloadJson),
	};
}

export class RawStore {
	readonly col: DocCollection<RawDoc>;
	constructor(col: DocCollection<RawDoc>) {
		this.col = col;
	}

	/** The same store, its round trips counted in `tallies` too. */
	counting(tallies: Tally[]): RawStore {
		return new RawStore(new CountingCollection(this.col, tallies));
	}

	async ensureIndexes(): Promise<void> {
		await this.col.ensureIndex("source", false);
		await this.col.ensureIndex("collectedAt", false);
	}

	async upsert(
		source: string,
		sourceId: string,
		payload: unknown,
		collectedAt: string,
	): Promise<UpsertRawResult> {
		const id = `${source}:${sourceId}`;
		const hash = payloadHash(payload);
		const payloadJson = JSON.stringify(payload);
		for (let attempt = 0; attempt < 20; attempt++) {
			const existing = await this.col.findOne({ _id: id });
			if (existing?.hash === hash) return { status: "unchanged", id, hash };
			try {
				if (!existing) {
					await this.col.insert({
						_id: id,
						source,
						sourceId,
						hash,
						payloadJson,
						bytes: Buffer.byteLength(payloadJson),
						collectedAt,
						firstCollectedAt: collectedAt,
						revisions: 0,
						version: 1,
					});
					return { status: "created", id, hash };
				}
				const next: RawDoc = {
					...existing,
					hash,
					payloadJson,
					bytes: Buffer.byteLength(payloadJson),
					collectedAt,
					revisions: existing.revisions + 1,
					version: existing.version + 1,
				};
				if (await this.col.replaceIf({ _id: id, version: existing.version }, next))
					return { status: "updated", id, hash };
			} catch (err) {
				if (!(err instanceof DuplicateKeyError)) throw err;
			}
		}
		throw new Error(`raw record ${id}: too many concurrent writers`);
	}

	/**
	 * `upsert` for a page of records: one read of them all, one unordered insert of the new ones,
	 * one conditional bulk replace of the changed ones. A record that clashes (another writer got
	 * there in between) or appears twice in the page goes through `upsert` on its own, in order.
	 */
	async upsertMany(items: RawItem[]): Promise<UpsertRawResult[]> {
		return (await this.prepareMany(items)).commit();
	}

	/**
	 * `upsertMany` in two steps: the read now (what would change: `statuses`), the writes on
	 * `commit()`. The ingest merges the changed records between the two, so a raw record is stored
	 * only once its merge is, and an unchanged raw record proves its merge happened.
	 */
	async prepareMany(
		items: RawItem[],
	): Promise<{ statuses: UpsertRawResult["status"][]; commit(): Promise<UpsertRawResult[]> }> {
		const out: (UpsertRawResult | null)[] = items.map(() => null);
		const prepared = items.map((item) => {
			const payloadJson = JSON.stringify(item.payload);
			return { ...item, id: `${item.source}:${item.sourceId}`, hash: payloadHash(item.payload), payloadJson };
		});
		const seen = new Set<string>();
		const later: number[] = [];
		const batch: number[] = [];
		prepared.forEach((p, i) => {
			if (seen.has(p.id)) later.push(i);
			else batch.push(i);
			seen.add(p.id);
		});
		const existing = new Map(
			batch.length === 0
				? []
				: (await this.col.find({ _id: { $in: batch.map((i) => prepared[i]!.id) } })).map((d) => [d._id, d]),
		);
		const inserts: { i: number; doc: RawDoc }[] = [];
		const replaces: { i: number; query: Record<string, unknown>; doc: RawDoc }[] = [];
		for (const i of batch) {
			const p = prepared[i]!;
			const prev = existing.get(p.id);
			const bytes = Buffer.byteLength(p.payloadJson);
			if (prev?.hash === p.hash) out[i] = { status: "unchanged", id: p.id, hash: p.hash };
			else if (!prev) {
				inserts.push({
					i,
					doc: {
						_id: p.id,
						source: p.source,
						sourceId: p.sourceId,
						hash: p.hash,
						payloadJson: p.payloadJson,
						bytes,
						collectedAt: p.collectedAt,
						firstCollectedAt: p.collectedAt,
						revisions: 0,
						version: 1,
					},
				});
			} else {
				replaces.push({
					i,
					query: { _id: p.id, version: prev.version },
					doc: {
						...prev,
						hash: p.hash,
						payloadJson: p.payloadJson,
						bytes,
						collectedAt: p.collectedAt,
						revisions: prev.revisions + 1,
						version: prev.version + 1,
					},
				});
			}
		}
		// A record twice in the page is judged changed: its own upsert decides at commit.
		const statuses = out.map((o, i) => o?.status ?? (inserts.some((x) => x.i === i) ? "created" : "updated"));
		const commit = async (): Promise<UpsertRawResult[]> => {
			const { duplicates } = await this.col.insertMany(inserts.map((x) => x.doc));
			const clashed = new Set(duplicates);
			for (const { i, doc } of inserts) {
				if (clashed.has(doc._id)) later.push(i);
				else out[i] = { status: "created", id: doc._id, hash: doc.hash };
			}
			const replaced = await this.col.replaceManyIf(replaces);
			replaces.forEach(({ i, doc }, j) => {
				if (replaced[j]) out[i] = { status: "updated", id: doc._id, hash: doc.hash };
				else later.push(i);
			});
			for (const i of later.sort((a, b) => a - b)) {
				const p = prepared[i]!;
				out[i] = await this.upsert(p.source, p.sourceId, p.payload, p.collectedAt);
			}
			return out as UpsertRawResult[];
		};
		return { statuses, commit };
	}

	/** collectedAt of each stored record of `source` among `sourceIds` (one read, no payloads). */
	async ages(source: string, sourceIds: string[]): Promise<Record<string, string>> {
		if (sourceIds.length === 0) return {};
		const docs = await this.col.find(
			{ _id: { $in: [...new Set(sourceIds)].map((id) => `${source}:${id}`) } },
			{ fields: ["sourceId", "collectedAt"] },
		);
		return Object.fromEntries(docs.map((d) => [d.sourceId, d.collectedAt]));
	}

	async get(source: string, sourceId: string): Promise<RawRecord | null> {
		const doc = await this.col.findOne({ _id: `${source}:${sourceId}` });
		return doc ? toRawRecord(doc) : null;
	}

	count(query: Record<string, unknown> = {}): Promise<number> {
		return this.col.count(query);
	}
}
