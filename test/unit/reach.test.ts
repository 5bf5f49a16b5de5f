/**
 * Reach marks (src/cluster/reach.ts): a node's beacon keeps its mark fresh in the shared state; once
 * the beacon stops (the node lost its link to Redis, or died), the mark expires and the node is no
 * longer among those reaching it.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { nodesReaching, startReachBeacon } from "../../src/cluster/reach.ts";
import { MemorySharedState } from "../../src/shared-state/index.ts";
import { waitFor } from "../../src/utils/time.ts";

test("a beacon keeps its node reaching; stopped, the mark expires", async () => {
	const state = new MemorySharedState();
	const stopA = startReachBeacon(state, "a-1", 50, 200);
	const stopB = startReachBeacon(state, "b-1", 50, 200);
	await waitFor(
		async () => (await nodesReaching(state, ["a-1", "b-1", "c-1"])).size === 2,
		"both marks",
		2000,
		20,
	);
	assert.deepEqual([...(await nodesReaching(state, ["a-1", "b-1", "c-1"]))].sort(), ["a-1", "b-1"]);
	stopB();
	await waitFor(
		async () => !(await nodesReaching(state, ["b-1"])).has("b-1"),
		"b-1's mark to expire",
		2000,
		20,
	);
	assert.deepEqual([...(await nodesReaching(state, ["a-1", "b-1"]))], ["a-1"]);
	assert.equal((await nodesReaching(state, [])).size, 0);
	stopA();
	await state.close();
});
