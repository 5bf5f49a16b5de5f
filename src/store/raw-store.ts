/**
 * Raw records exactly as received, one per (source, sourceId). A re-collected record with the same
 * content hash is recognized and not rewritten. The payload is kept as JSON text: upstream keys may
 * contain "." or start with "$", which neither NeDB nor MongoDB accepts as field names.
 */
import { createHash } from "node:crypto";
import { canonicalJson } from "../domain/property.ts";
import { type DocCollection, DuplicateKeyError } from "./collection.ts";

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

	async get(source: string, sourceId: string): Promise<RawRecord | null> {
		const doc = await this.col.findOne({ _id: `${source}:${sourceId}` });
		return doc ? toRawRecord(doc) : null;
	}

	count(query: Record<string, unknown> = {}): Promise<number> {
		return this.col.count(query);
	}
}
