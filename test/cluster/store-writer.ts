/**
 * A store writer process for the concurrent-merge test: runs the store service on MONGO_URI and
 * merges the same small sandbox world as its siblings, in its own order (WRITER_SEED), then prints
 * one JSON line with its outcome counts.
 */
import { generateWorld } from "../../sandbox/generator.ts";
import type { MergeOutcome } from "../../src/store/merge-rules.ts";
import { listingRecord, parcelRecord, startStoreBroker } from "../harness/store.ts";

const seed = Number(process.env.WRITER_SEED ?? "1");
const world = generateWorld(JSON.parse(process.env.WORLD_OPTIONS ?? "{}"));
const store = await startStoreBroker(process.env.MONGO_URI, `writer-${seed}`);
const inputs = [
	...world.parcels.map((p) => ({ source: "maricopa", sourceId: p.apn, record: parcelRecord(p) })),
	...world.listings.map((l) => ({ source: "mls", sourceId: l.mlsId, record: listingRecord(l) })),
];
// Each writer its own permutation, so parcels and listings of one house meet in every order.
const order = inputs
	.map((x, i) => ({ x, k: ((i + 1) * (7919 + seed * 104729)) % 1_000_003 }))
	.sort((a, b) => a.k - b.k);
const counts: Record<string, number> = {};
let conflicts = 0;
await Promise.all(
	Array.from({ length: 8 }, async (_, lane) => {
		for (let i = lane; i < order.length; i += 8) {
			const out = await store.broker.call<MergeOutcome, object>("properties.merge", order[i]!.x);
			counts[out.status] = (counts[out.status] ?? 0) + 1;
			conflicts += out.attempts - 1;
		}
	}),
);
await store.stop();
process.stdout.write(`${JSON.stringify({ seed, counts, conflicts })}\n`);
