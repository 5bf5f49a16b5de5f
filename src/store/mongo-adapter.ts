/**
 * A thin moleculer-db adapter over the current MongoDB driver (v6). moleculer-db-adapter-mongo 0.5
 * pins driver 3.x (end of life, legacy topology and deprecation warnings on Node 24, a second driver
 * in the process); the store's own write paths need the v6 collection anyway (conditional replace,
 * duplicate-key codes, index creation), so the service mixin gets the same client through this.
 * Ids are strings (the store chooses them); ObjectIds the server made are returned as hex strings.
 */

import type { ServiceBroker } from "moleculer";
import type { DbAdapter } from "moleculer-db";
import {
	type Collection,
	type Db,
	type Document,
	type Filter,
	MongoClient,
	ObjectId,
	type Sort,
} from "mongodb";

interface CursorParams {
	query?: Record<string, unknown>;
	search?: string;
	sort?: string | string[] | Record<string, 1 | -1>;
	offset?: number;
	limit?: number;
}

function toSort(sort: CursorParams["sort"]): Sort | undefined {
	if (!sort) return undefined;
	const list = typeof sort === "string" ? sort.split(/[,\s]+/).filter(Boolean) : sort;
	if (!Array.isArray(list)) return list;
	return Object.fromEntries(list.map((s) => (s.startsWith("-") ? [s.slice(1), -1] : [s, 1]))) as Sort;
}

function toId(id: unknown): unknown {
	return typeof id === "string" && /^[0-9a-f]{24}$/.test(id) ? new ObjectId(id) : id;
}

function fromId(id: unknown): unknown {
	return id instanceof ObjectId ? id.toHexString() : id;
}

export class MongoV6Adapter implements DbAdapter {
	readonly uri: string;
	readonly collectionName: string;
	client: MongoClient | null = null;
	db: Db | null = null;
	collection!: Collection<Document>;
	/** The server answers `{field: {$in: [...]}}` by scanning the collection (FerretDB 1.x; see MongoCollection). */
	scansIn = false;

	constructor(uri: string, collectionName: string) {
		this.uri = uri;
		this.collectionName = collectionName;
	}

	init(_broker: ServiceBroker, _service: unknown): void {}

	async connect(): Promise<void> {
		this.client = new MongoClient(this.uri, {
			serverSelectionTimeoutMS: 10_000,
			// No operation waits for ever on a connection whose server went away mid-answer (a restart):
			// it fails, the pool is cleared, and the caller's retry gets a fresh connection.
			socketTimeoutMS: 120_000,
		});
		await this.client.connect();
		this.db = this.client.db();
		this.collection = this.db.collection(this.collectionName);
		// A server without buildInfo is taken for one that indexes $in.
		const build = await this.db
			.admin()
			.command({ buildInfo: 1 })
			.catch(() => ({}) as Document);
		this.scansIn = typeof build.ferretdbVersion === "string";
	}

	async disconnect(): Promise<void> {
		await this.client?.close();
		this.client = null;
	}

	createCursor(cursorParams: object = {}) {
		const params = cursorParams as CursorParams;
		const query = { ...(params.query ?? {}) } as Filter<Document>;
		if (typeof params.search === "string" && params.search !== "")
			(query as Document).$text = { $search: params.search };
		let cursor = this.collection.find(query);
		const sort = toSort(params.sort);
		if (sort) cursor = cursor.sort(sort);
		if (typeof params.offset === "number" && params.offset > 0) cursor = cursor.skip(params.offset);
		if (typeof params.limit === "number" && params.limit > 0) cursor = cursor.limit(params.limit);
		return cursor;
	}

	find(filters: CursorParams): Promise<object[]> {
		return this.createCursor(filters).toArray();
	}

	findOne(query: Record<string, unknown>): Promise<object> {
		return this.collection.findOne(query as Filter<Document>) as Promise<object>;
	}

	findById(id: unknown): Promise<object> {
		return this.collection.findOne({ _id: toId(id) } as Filter<Document>) as Promise<object>;
	}

	findByIds(ids: (string | number)[]): Promise<object[]> {
		return this.collection.find({ _id: { $in: ids.map(toId) } } as Filter<Document>).toArray();
	}

	count(filters: CursorParams = {}): Promise<number> {
		const query = { ...(filters.query ?? {}) } as Filter<Document>;
		if (typeof filters.search === "string" && filters.search !== "")
			(query as Document).$text = { $search: filters.search };
		return this.collection.countDocuments(query);
	}

	async insert(entity: object): Promise<object> {
		const doc = { ...entity } as Document;
		const res = await this.collection.insertOne(doc);
		return { ...doc, _id: res.insertedId };
	}

	async insertMany(...entities: object[]): Promise<object[]> {
		const docs = (entities.length === 1 && Array.isArray(entities[0]) ? entities[0] : entities).map((e) => ({
			...(e as Document),
		}));
		const res = await this.collection.insertMany(docs);
		return docs.map((d, i) => ({ ...d, _id: res.insertedIds[i] }));
	}

	async updateMany(query: Record<string, unknown>, update: object): Promise<number> {
		return (await this.collection.updateMany(query as Filter<Document>, update)).modifiedCount;
	}

	async updateById(id: string | number, update: object): Promise<object> {
		return (await this.collection.findOneAndUpdate({ _id: toId(id) } as Filter<Document>, update, {
			returnDocument: "after",
		})) as object;
	}

	async removeMany(query: Record<string, unknown>): Promise<number> {
		return (await this.collection.deleteMany(query as Filter<Document>)).deletedCount;
	}

	async removeById(id: string | number): Promise<unknown> {
		return await this.collection.findOneAndDelete({ _id: toId(id) } as Filter<Document>);
	}

	async clear(): Promise<void> {
		await this.collection.deleteMany({});
	}

	entityToObject(entity: Document): object {
		return { ...entity, _id: fromId(entity._id) };
	}

	beforeSaveTransformID(entity: Record<string, unknown>, idField: string): object {
		if (idField === "_id" || entity[idField] === undefined) return { ...entity };
		const { [idField]: id, ...rest } = entity;
		return { ...rest, _id: toId(id) };
	}

	afterRetrieveTransformID(entity: Record<string, unknown>, idField: string): object {
		if (idField === "_id") return entity;
		const { _id, ...rest } = entity;
		return { ...rest, [idField]: fromId(_id) };
	}
}
