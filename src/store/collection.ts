/**
 * The few document operations the store's write paths need, over NeDB (embedded) and MongoDB
 * (cluster): reads, inserts that fail on a unique-key clash, and writes conditional on the version
 * that was read. Both backends enforce unique indexes, and NeDB's executor runs one operation at a
 * time, so the same optimistic algorithm is correct in one process (NeDB) and across many (Mongo).
 *
 * Bulk forms (insertMany, replaceManyIf, deleteMany) let a page of records cost a few round trips:
 * one request on MongoDB, a loop in process on NeDB. `CountingCollection` counts the operations
 * sent to the backend (one per method call, whatever its size).
 */
import {
	type AnyBulkWriteOperation,
	type Collection,
	type Document,
	type Filter,
	MongoBulkWriteError,
} from "mongodb";
import { canonicalJson } from "../domain/property.ts";

/** A write clashed with a unique index (another writer got there first): re-read and retry. */
export class DuplicateKeyError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "DuplicateKeyError";
	}
}

export type Query = Record<string, unknown>;

export interface FindOptions {
	sort?: Record<string, 1 | -1>;
	skip?: number;
	limit?: number;
	/** Fields to leave out of the results. */
	omit?: string[];
	/** Only these fields (and _id) in the results; not with `omit`. */
	fields?: string[];
}

export interface InsertManyResult {
	/** _ids of the documents refused by a unique index (the others were inserted). */
	duplicates: string[];
}

export interface ConditionalReplace<T> {
	/** Pins _id (and the version read). */
	query: Query;
	doc: T;
}

export interface DocCollection<T extends { _id: string }> {
	findOne(query: Query): Promise<T | null>;
	find(query: Query, options?: FindOptions): Promise<T[]>;
	count(query: Query): Promise<number>;
	/** Throws DuplicateKeyError on a unique-index clash. */
	insert(doc: T): Promise<void>;
	/** Replace the document matching `query` (which pins _id and version); false when none matched. */
	replaceIf(query: Query, doc: T): Promise<boolean>;
	deleteIf(query: Query): Promise<boolean>;
	ensureIndex(field: string, unique: boolean): Promise<void>;
	/** Insert each document, unordered: one clash with a unique index does not stop the rest. */
	insertMany(docs: T[]): Promise<InsertManyResult>;
	/**
	 * `replaceIf` for each item, in one request: true where the item's document was replaced; false
	 * where none matched its query or the replacement clashed with a unique index. `extraTrip` is
	 * called for each further request the answer needed (MongoDB: a read-back, see there).
	 */
	replaceManyIf(items: ConditionalReplace<T>[], extraTrip?: () => void): Promise<boolean[]>;
	/** Delete every match; the number deleted. */
	deleteMany(query: Query): Promise<number>;
}

function projection(options: FindOptions): Record<string, 0 | 1> | undefined {
	if (options.fields) return Object.fromEntries(options.fields.map((f) => [f, 1]));
	if (options.omit) return Object.fromEntries(options.omit.map((f) => [f, 0]));
	return undefined;
}

/** One tally of round trips (e.g. a service-wide total, or one call's). */
export interface Tally {
	n: number;
}

/** Counts every operation sent to the backend in each of `tallies`; otherwise passes through. */
export class CountingCollection<T extends { _id: string }> implements DocCollection<T> {
	readonly inner: DocCollection<T>;
	readonly tallies: Tally[];
	constructor(inner: DocCollection<T>, tallies: Tally[]) {
		this.inner = inner;
		this.tallies = tallies;
	}

	private trip(): void {
		for (const t of this.tallies) t.n++;
	}

	findOne(query: Query): Promise<T | null> {
		this.trip();
		return this.inner.findOne(query);
	}
	find(query: Query, options?: FindOptions): Promise<T[]> {
		this.trip();
		return this.inner.find(query, options);
	}
	count(query: Query): Promise<number> {
		this.trip();
		return this.inner.count(query);
	}
	insert(doc: T): Promise<void> {
		this.trip();
		return this.inner.insert(doc);
	}
	replaceIf(query: Query, doc: T): Promise<boolean> {
		this.trip();
		return this.inner.replaceIf(query, doc);
	}
	deleteIf(query: Query): Promise<boolean> {
		this.trip();
		return this.inner.deleteIf(query);
	}
	ensureIndex(field: string, unique: boolean): Promise<void> {
		this.trip();
		return this.inner.ensureIndex(field, unique);
	}
	insertMany(docs: T[]): Promise<InsertManyResult> {
		if (docs.length > 0) this.trip();
		return this.inner.insertMany(docs);
	}
	async replaceManyIf(items: ConditionalReplace<T>[], extraTrip?: () => void): Promise<boolean[]> {
		if (items.length === 0) return [];
		this.trip();
		return await this.inner.replaceManyIf(items, () => {
			this.trip();
			extraTrip?.();
		});
	}
	deleteMany(query: Query): Promise<number> {
		this.trip();
		return this.inner.deleteMany(query);
	}
}

// ---------------------------------------------------------------------------------------------

interface NedbCursor<R> extends PromiseLike<R> {
	sort(by: Record<string, 1 | -1>): NedbCursor<R>;
	skip(n: number): NedbCursor<R>;
	limit(n: number): NedbCursor<R>;
}

/**
 * The part of @seald-io/nedb's Datastore the store uses (its bundled typings do not resolve as a
 * type). Reads are generic in the document type, as in nedb's own typings.
 */
export interface Datastore {
	findOneAsync<R>(query: Query, projection?: Record<string, 0 | 1>): PromiseLike<R | null>;
	findAsync<R>(query: Query, projection?: Record<string, 0 | 1>): NedbCursor<R[]>;
	countAsync(query: Query): PromiseLike<number>;
	insertAsync(doc: object): Promise<unknown>;
	updateAsync(query: Query, update: object, options: object): Promise<{ numAffected: number }>;
	removeAsync(query: Query, options: object): Promise<number>;
	ensureIndexAsync(options: { fieldName: string; unique?: boolean }): Promise<void>;
	setAutocompactionInterval(ms: number): void;
	stopAutocompaction(): void;
}

function isNedbUnique(err: unknown): boolean {
	return (err as { errorType?: string } | null)?.errorType === "uniqueViolated";
}

export class NedbCollection<T extends { _id: string }> implements DocCollection<T> {
	readonly db: Datastore;
	constructor(db: Datastore) {
		this.db = db;
	}

	async findOne(query: Query): Promise<T | null> {
		return (await this.db.findOneAsync<T>(query)) ?? null;
	}

	async find(query: Query, options: FindOptions = {}): Promise<T[]> {
		let cursor = this.db.findAsync<T>(query, projection(options) ?? {});
		if (options.sort) cursor = cursor.sort(options.sort);
		if (options.skip) cursor = cursor.skip(options.skip);
		if (options.limit) cursor = cursor.limit(options.limit);
		return await cursor;
	}

	async count(query: Query): Promise<number> {
		return await this.db.countAsync(query);
	}

	async insert(doc: T): Promise<void> {
		try {
			await this.db.insertAsync(doc);
		} catch (err) {
			if (isNedbUnique(err)) throw new DuplicateKeyError((err as Error).message);
			throw err;
		}
	}

	async replaceIf(query: Query, doc: T): Promise<boolean> {
		try {
			const res = await this.db.updateAsync(query, doc, {});
			return res.numAffected === 1;
		} catch (err) {
			if (isNedbUnique(err)) throw new DuplicateKeyError((err as Error).message);
			throw err;
		}
	}

	async deleteIf(query: Query): Promise<boolean> {
		return (await this.db.removeAsync(query, {})) === 1;
	}

	async ensureIndex(field: string, unique: boolean): Promise<void> {
		await this.db.ensureIndexAsync({ fieldName: field, unique });
	}

	// NeDB inserts an array all-or-nothing, so one by one (in process: no round trip to save).
	async insertMany(docs: T[]): Promise<InsertManyResult> {
		const duplicates: string[] = [];
		for (const doc of docs) {
			try {
				await this.insert(doc);
			} catch (err) {
				if (!(err instanceof DuplicateKeyError)) throw err;
				duplicates.push(doc._id);
			}
		}
		return { duplicates };
	}

	async replaceManyIf(items: ConditionalReplace<T>[]): Promise<boolean[]> {
		const out: boolean[] = [];
		for (const { query, doc } of items) {
			try {
				out.push(await this.replaceIf(query, doc));
			} catch (err) {
				if (!(err instanceof DuplicateKeyError)) throw err;
				out.push(false);
			}
		}
		return out;
	}

	async deleteMany(query: Query): Promise<number> {
		return await this.db.removeAsync(query, { multi: true });
	}
}

// ---------------------------------------------------------------------------------------------

function isMongoDuplicate(err: unknown): boolean {
	return (err as { code?: number } | null)?.code === 11000;
}

/** Most values of a `$in` asked as equalities where the server scans `$in` (`scansIn`). */
export const IN_AS_EQUALITIES_MAX = 100;

/** `{field: {$in: values}}` and nothing else: the field and its values. */
function singleFieldIn(query: Query): { field: string; values: unknown[] } | null {
	const fields = Object.keys(query);
	if (fields.length !== 1 || fields[0]!.startsWith("$")) return null;
	const cond = query[fields[0]!];
	if (!cond || typeof cond !== "object" || Array.isArray(cond)) return null;
	const ops = Object.keys(cond);
	const values = (cond as { $in?: unknown }).$in;
	return ops.length === 1 && Array.isArray(values) ? { field: fields[0]!, values } : null;
}

export class MongoCollection<T extends { _id: string }> implements DocCollection<T> {
	readonly collection: Collection<Document>;
	/** Most replaces in one bulk write (STORE_BULK_MAX_OPS): FerretDB 1.24 hangs on large ones. */
	readonly bulkMaxOps: number;
	/**
	 * FerretDB 1.x answers `{field: {$in: [...]}}` by reading the whole collection (50 keys at 5,000
	 * documents: 643 ms) while an equality uses the index (7 ms a key): there, every batch read of the
	 * store (raw records, properties by key and claim, street lines) would cost a scan, and a sweep
	 * would grow with the square of the collection. A small `$in` is asked as equalities instead.
	 */
	readonly scansIn: boolean;
	constructor(collection: Collection<Document>, options: { bulkMaxOps?: number; scansIn?: boolean } = {}) {
		this.collection = collection;
		this.bulkMaxOps = Math.max(1, options.bulkMaxOps ?? 1000);
		this.scansIn = options.scansIn ?? false;
	}

	async findOne(query: Query): Promise<T | null> {
		return await this.collection.findOne<T>(query as Filter<Document>);
	}

	async find(query: Query, options: FindOptions = {}): Promise<T[]> {
		const asIn =
			this.scansIn && !options.sort && !options.skip && !options.limit ? singleFieldIn(query) : null;
		if (asIn && asIn.values.length <= IN_AS_EQUALITIES_MAX) {
			const fields = projection(options);
			const found = await Promise.all(
				[...new Set(asIn.values)].map((v) => {
					const cursor = this.collection.find<T>({ [asIn.field]: v } as Filter<Document>);
					return (fields ? cursor.project<T>(fields) : cursor).toArray();
				}),
			);
			// An array field can match several values: each document once.
			const byId = new Map(found.flat().map((d) => [String(d._id), d]));
			return [...byId.values()];
		}
		let cursor = this.collection.find<T>(query as Filter<Document>);
		const fields = projection(options);
		if (fields) cursor = cursor.project<T>(fields);
		if (options.sort) cursor = cursor.sort(options.sort);
		if (options.skip) cursor = cursor.skip(options.skip);
		if (options.limit) cursor = cursor.limit(options.limit);
		return await cursor.toArray();
	}

	async count(query: Query): Promise<number> {
		return await this.collection.countDocuments(query as Filter<Document>);
	}

	async insert(doc: T): Promise<void> {
		try {
			const entry: Document = doc;
			await this.collection.insertOne(entry);
		} catch (err) {
			if (isMongoDuplicate(err)) throw new DuplicateKeyError((err as Error).message);
			throw err;
		}
	}

	async replaceIf(query: Query, doc: T): Promise<boolean> {
		const { _id, ...rest } = doc;
		try {
			const res = await this.collection.replaceOne(query as Filter<Document>, rest);
			return res.matchedCount === 1;
		} catch (err) {
			if (isMongoDuplicate(err)) throw new DuplicateKeyError((err as Error).message);
			throw err;
		}
	}

	async deleteIf(query: Query): Promise<boolean> {
		return (await this.collection.deleteOne(query as Filter<Document>)).deletedCount === 1;
	}

	async ensureIndex(field: string, unique: boolean): Promise<void> {
		await this.collection.createIndex({ [field]: 1 }, unique ? { unique: true } : {});
	}

	async insertMany(docs: T[]): Promise<InsertManyResult> {
		if (docs.length === 0) return { duplicates: [] };
		try {
			const entries: Document[] = docs;
			await this.collection.insertMany(entries, { ordered: false });
			return { duplicates: [] };
		} catch (err) {
			if (!(err instanceof MongoBulkWriteError)) {
				if (isMongoDuplicate(err) && docs.length === 1) return { duplicates: [docs[0]!._id] };
				throw err;
			}
			const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
			const other = errors.find((e) => e.code !== 11000);
			if (other) throw err;
			return { duplicates: errors.map((e) => docs[e.index]!._id) };
		}
	}

	async replaceManyIf(items: ConditionalReplace<T>[], extraTrip?: () => void): Promise<boolean[]> {
		const out: boolean[] = [];
		for (let i = 0; i < items.length; i += this.bulkMaxOps) {
			if (i > 0) extraTrip?.();
			out.push(...(await this.#replaceBulk(items.slice(i, i + this.bulkMaxOps), extraTrip)));
		}
		return out;
	}

	async #replaceBulk(items: ConditionalReplace<T>[], extraTrip?: () => void): Promise<boolean[]> {
		if (items.length === 0) return [];
		const ops: AnyBulkWriteOperation<Document>[] = items.map(({ query, doc }) => {
			const { _id, ...rest } = doc;
			return { replaceOne: { filter: query as Filter<Document>, replacement: rest } };
		});
		const out = items.map(() => true);
		let matched: number;
		try {
			matched = (await this.collection.bulkWrite(ops, { ordered: false })).matchedCount;
		} catch (err) {
			if (!(err instanceof MongoBulkWriteError)) throw err;
			const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
			if (errors.some((e) => e.code !== 11000)) throw err;
			for (const e of errors) out[e.index] = false;
			matched = err.result?.matchedCount ?? 0;
		}
		const expected = out.filter(Boolean).length;
		if (matched >= expected) return out;
		// The answer has totals only: read the documents back and keep as written those that hold
		// exactly what this call wrote. Callers hold the documents' locks (or re-check by version).
		extraTrip?.();
		const byIds: Query = { _id: { $in: items.map((i) => i.doc._id) } };
		const stored = new Map(
			(await this.collection.find(byIds as Filter<Document>).toArray()).map((d) => [
				String(d._id),
				canonicalJson(d),
			]),
		);
		return items.map(({ doc }, i) => out[i]! && stored.get(doc._id) === canonicalJson(doc));
	}

	async deleteMany(query: Query): Promise<number> {
		return (await this.collection.deleteMany(query as Filter<Document>)).deletedCount;
	}
}
