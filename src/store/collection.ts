/**
 * The few document operations the store's write paths need, over NeDB (embedded) and MongoDB
 * (cluster): reads, inserts that fail on a unique-key clash, and writes conditional on the version
 * that was read. Both backends enforce unique indexes, and NeDB's executor runs one operation at a
 * time, so the same optimistic algorithm is correct in one process (NeDB) and across many (Mongo).
 */
import type { Collection, Document, Filter } from "mongodb";

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
}

// ---------------------------------------------------------------------------------------------

interface NedbCursor<R> extends PromiseLike<R> {
	sort(by: Record<string, 1 | -1>): NedbCursor<R>;
	skip(n: number): NedbCursor<R>;
	limit(n: number): NedbCursor<R>;
}

/** The part of @seald-io/nedb's Datastore the store uses (its bundled typings do not resolve as a type). */
export interface Datastore {
	findOneAsync(query: Query, projection?: Record<string, 0 | 1>): PromiseLike<unknown>;
	findAsync(query: Query, projection?: Record<string, 0 | 1>): NedbCursor<unknown[]>;
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
		return ((await this.db.findOneAsync(query)) as T | null) ?? null;
	}

	async find(query: Query, options: FindOptions = {}): Promise<T[]> {
		let cursor = this.db.findAsync(
			query,
			options.omit ? Object.fromEntries(options.omit.map((f) => [f, 0])) : {},
		);
		if (options.sort) cursor = cursor.sort(options.sort);
		if (options.skip) cursor = cursor.skip(options.skip);
		if (options.limit) cursor = cursor.limit(options.limit);
		return (await cursor) as unknown as T[];
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
}

// ---------------------------------------------------------------------------------------------

function isMongoDuplicate(err: unknown): boolean {
	return (err as { code?: number } | null)?.code === 11000;
}

export class MongoCollection<T extends { _id: string }> implements DocCollection<T> {
	readonly collection: Collection<Document>;
	constructor(collection: Collection<Document>) {
		this.collection = collection;
	}

	async findOne(query: Query): Promise<T | null> {
		return (await this.collection.findOne(query as Filter<Document>)) as T | null;
	}

	async find(query: Query, options: FindOptions = {}): Promise<T[]> {
		let cursor = this.collection.find(query as Filter<Document>);
		if (options.omit) cursor = cursor.project(Object.fromEntries(options.omit.map((f) => [f, 0])));
		if (options.sort) cursor = cursor.sort(options.sort);
		if (options.skip) cursor = cursor.skip(options.skip);
		if (options.limit) cursor = cursor.limit(options.limit);
		return (await cursor.toArray()) as unknown as T[];
	}

	async count(query: Query): Promise<number> {
		return await this.collection.countDocuments(query as Filter<Document>);
	}

	async insert(doc: T): Promise<void> {
		try {
			await this.collection.insertOne(doc as unknown as Document);
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
}
