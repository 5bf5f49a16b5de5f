/**
 * Several processes merge the same parcels and listings into one MongoDB-protocol server (FerretDB)
 * at the same moment, each in its own order: every parcel ends as exactly one property holding all
 * its sources, no address-only twin is left, and a second pass changes nothing.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { after, before, test } from "node:test";
import { generateWorld } from "../../sandbox/generator.ts";
import { type RunningServer, startFerretDb } from "../harness/servers.ts";
import { type StoreBroker, startStoreBroker, withDatabase } from "../harness/store.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const NODE = resolve(ROOT, "node_modules/.bin/node");
const WRITER = resolve(import.meta.dirname, "store-writer.ts");
const WRITERS = 3;
const worldOptions = { seed: 11, zips: ["85301"], parcelsPerZip: 40, listingShare: 0.5, relistShare: 0.3 };
const world = generateWorld(worldOptions);

let ferret: RunningServer;
let mongoUri: string;
let reader: StoreBroker;

before(async () => {
	ferret = await startFerretDb();
	mongoUri = withDatabase(ferret.url, "concurrency");
	reader = await startStoreBroker(mongoUri, "reader");
});
after(async () => {
	await reader?.stop();
	await ferret?.stop();
});

function runWriter(seed: number): Promise<{ counts: Record<string, number>; conflicts: number }> {
	return new Promise((res, rej) => {
		const child = spawn(NODE, [WRITER], {
			cwd: ROOT,
			env: {
				...process.env,
				MONGO_URI: mongoUri,
				WRITER_SEED: String(seed),
				WORLD_OPTIONS: JSON.stringify(worldOptions),
			},
			stdio: ["ignore", "pipe", "pipe"],
		});
		let out = "";
		let err = "";
		child.stdout.on("data", (d) => {
			out += d;
		});
		child.stderr.on("data", (d) => {
			err += d;
		});
		child.on("exit", (code) => {
			if (code !== 0) rej(new Error(`writer ${seed} exited ${code}: ${err}`));
			else res(JSON.parse(out.trim().split("\n").at(-1)!));
		});
	});
}

test(`${WRITERS} processes merging the same records concurrently end with one property per parcel`, async () => {
	const first = await Promise.all(Array.from({ length: WRITERS }, (_, i) => runWriter(i + 1)));
	const stats = await reader.broker.call<{ properties: number; addressOnly: number }>("properties.stats");
	assert.equal(stats.properties, world.parcels.length);
	assert.equal(stats.addressOnly, 0);
	for (const p of world.parcels) {
		const prop = await reader.broker.call<{ mlsIds: string[]; sources: unknown[] } | null, object>(
			"properties.get",
			{ key: p.apn },
		);
		const expected = (world.listingsByApn.get(p.apn) ?? []).map((l) => l.mlsId).sort();
		assert.deepEqual(prop?.mlsIds, expected, `parcel ${p.apn}`);
		assert.equal(prop?.sources.length, expected.length + 1);
	}
	const created = first.reduce((n, w) => n + (w.counts.new ?? 0), 0);
	assert.ok(
		created >= world.parcels.length,
		"each property created once (plus listing properties later absorbed)",
	);

	// A second pass (a re-run of the whole collection) changes nothing.
	const second = await runWriter(99);
	assert.deepEqual(second.counts, { unchanged: world.parcels.length + world.listings.length });
	console.log(JSON.stringify({ first, second }));
});
