/**
 * The store's bulk operations on an in-memory NeDB datastore (the embedded backend), the round-trip
 * counter, and the in-process batch locks.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import Nedb from "@seald-io/nedb";
import {
	CountingCollection,
	type Datastore,
	NedbCollection,
	type Tally,
} from "../../src/store/collection.ts";
import { LocalKeyLocks } from "../../src/store/key-lock.ts";

interface Doc {
	_id: string;
	name: string;
	version: number;
}

async function collection(): Promise<NedbCollection<Doc>> {
	const db = new (Nedb as unknown as new (o: object) => Datastore)({ inMemoryOnly: true });
	const col = new NedbCollection<Doc>(db);
	await col.ensureIndex("name", true);
	return col;
}

test("insertMany inserts all it can and names the _ids a unique index refused", async () => {
	const col = await collection();
	await col.insert({ _id: "a", name: "alpha", version: 1 });
	const res = await col.insertMany([
		{ _id: "b", name: "beta", version: 1 },
		{ _id: "a", name: "other", version: 1 },
		{ _id: "c", name: "alpha", version: 1 },
		{ _id: "d", name: "delta", version: 1 },
	]);
	assert.deepEqual(res.duplicates.sort(), ["a", "c"]);
	assert.deepEqual(
		(await col.find({}, { sort: { _id: 1 } })).map((d) => d._id),
		["a", "b", "d"],
	);
});

test("replaceManyIf replaces where the version matches, false where it moved or a unique index clashes", async () => {
	const col = await collection();
	await col.insertMany([
		{ _id: "a", name: "alpha", version: 1 },
		{ _id: "b", name: "beta", version: 3 },
		{ _id: "c", name: "gamma", version: 1 },
	]);
	const out = await col.replaceManyIf([
		{ query: { _id: "a", version: 1 }, doc: { _id: "a", name: "alpha2", version: 2 } },
		{ query: { _id: "b", version: 2 }, doc: { _id: "b", name: "beta2", version: 3 } },
		{ query: { _id: "c", version: 1 }, doc: { _id: "c", name: "alpha2", version: 2 } },
	]);
	assert.deepEqual(out, [true, false, false]);
	assert.deepEqual(await col.find({}, { sort: { _id: 1 }, fields: ["name"] }), [
		{ _id: "a", name: "alpha2" },
		{ _id: "b", name: "beta" },
		{ _id: "c", name: "gamma" },
	]);
	assert.equal(await col.deleteMany({ version: { $lt: 3 } }), 2);
	assert.equal(await col.count({}), 1);
});

test("CountingCollection counts each request in every tally, an empty bulk as none", async () => {
	const total: Tally = { n: 0 };
	const mine: Tally = { n: 0 };
	const col = new CountingCollection(new CountingCollection(await collection(), [total]), [mine]);
	await col.insertMany([
		{ _id: "a", name: "alpha", version: 1 },
		{ _id: "b", name: "beta", version: 1 },
	]);
	await col.insertMany([]);
	await col.replaceManyIf([]);
	await col.find({ _id: { $in: ["a", "b"] } });
	await col.replaceManyIf([{ query: { _id: "a", version: 1 }, doc: { _id: "a", name: "x", version: 2 } }]);
	assert.deepEqual([total.n, mine.n], [3, 3]);
});

test("LocalKeyLocks.tryLockMany takes only free keys at once; waiters get them after release", async () => {
	const locks = new LocalKeyLocks();
	let inside = false;
	let release!: () => void;
	const holding = locks.withLocks(["k2"], async () => {
		inside = true;
		await new Promise<void>((r) => {
			release = r;
		});
	});
	while (!inside) await new Promise((r) => setImmediate(r));
	const batch = await locks.tryLockMany(["k1", "k2", "k3", "k1"]);
	assert.deepEqual([...batch.acquired].sort(), ["k1", "k3"]);
	assert.equal((await locks.tryLockMany(["k1", "k3"])).acquired.size, 0, "held by the batch");
	const order: string[] = [];
	const waiter = locks.withLocks(["k1"], async () => {
		order.push("waiter");
	});
	await new Promise((r) => setImmediate(r));
	order.push("batch done");
	await batch.release();
	await waiter;
	assert.deepEqual(order, ["batch done", "waiter"]);
	release();
	await holding;
	assert.equal((await locks.tryLockMany(["k1", "k2", "k3"])).acquired.size, 3);
});
