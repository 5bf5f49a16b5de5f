/**
 * On FerretDB, which scans a collection to answer `$in`, the store's batch reads are asked as
 * equalities (src/store/collection.ts `scansIn`): same documents, each once, projection kept.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MongoCollection } from "../../src/store/collection.ts";
import { MongoV6Adapter } from "../../src/store/mongo-adapter.ts";
import { type FerretDbServer, startFerretDb } from "../harness/servers.ts";
import { withDatabase } from "../harness/store.ts";

interface Doc {
	_id: string;
	key: string;
	tags: string[];
	pad: string;
}

describe("batch reads on a server that scans $in", () => {
	let ferret: FerretDbServer;
	let adapter: MongoV6Adapter;
	let col: MongoCollection<Doc>;

	before(async () => {
		ferret = await startFerretDb();
		adapter = new MongoV6Adapter(withDatabase(ferret.url, "in_lookups"), "docs");
		await adapter.connect();
		col = new MongoCollection<Doc>(adapter.collection, { scansIn: adapter.scansIn });
		await adapter.collection.insertMany(
			Array.from({ length: 30 }, (_, i) => ({
				_id: `d${i}`,
				key: `k${i}`,
				tags: [`t${i % 3}`, `u${i % 5}`],
				pad: "x",
			})) as never[],
		);
	});

	after(async () => {
		await adapter?.disconnect();
		await ferret?.stop();
	});

	test("FerretDB is recognised", () => {
		assert.equal(adapter.scansIn, true);
	});

	test("$in on a field: the same documents as the server's own $in, each once", async () => {
		const keys = ["k1", "k7", "k7", "k29", "nope"];
		const got = (await col.find({ key: { $in: keys } })).map((d) => d._id).sort();
		assert.deepEqual(got, ["d1", "d29", "d7"]);
		const byServer = new MongoCollection<Doc>(adapter.collection, { scansIn: false });
		assert.deepEqual((await byServer.find({ key: { $in: keys } })).map((d) => d._id).sort(), got);
	});

	test("an array field matching several values gives each document once", async () => {
		const got = await col.find({ tags: { $in: ["t0", "u0"] } });
		const ids = got.map((d) => d._id);
		assert.equal(new Set(ids).size, ids.length);
		const expected = Array.from({ length: 30 }, (_, i) => i).filter((i) => i % 3 === 0 || i % 5 === 0);
		assert.deepEqual(ids.sort(), expected.map((i) => `d${i}`).sort());
	});

	test("projection and _id", async () => {
		const got = await col.find({ _id: { $in: ["d2", "d3"] } }, { fields: ["key"] });
		assert.deepEqual(
			got.map((d) => ({ ...d })).sort((a, b) => a._id.localeCompare(b._id)),
			[
				{ _id: "d2", key: "k2" },
				{ _id: "d3", key: "k3" },
			],
		);
	});
});
