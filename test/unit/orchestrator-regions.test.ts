/**
 * The orchestrator's choice of worker with regions (issue 15): the engine over the in-memory shared
 * state, workers answered by the test (the broker boundary), two regions of two workers each. A job
 * of eight ZIPs is spread evenly over the regions; a source whose tasks a region does not suit (mls
 * where no proxy pool runs) goes only to the region that suits it.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Orchestrator } from "../../src/jobs/orchestrator.ts";
import { MemorySharedState } from "../../src/shared-state/index.ts";
import { waitFor } from "../../src/utils/time.ts";

const REGION: Record<string, string> = { "a-1": "a", "a-2": "a", "b-1": "b", "b-2": "b" };
const ZIPS = ["85001", "85002", "85003", "85004", "85005", "85006", "85007", "85008"];

function engine(state: MemorySharedState, suits: (source: string, node: string) => boolean) {
	const calls: { node: string; zip: string }[] = [];
	const silent = { info() {}, warn() {}, error() {}, debug() {} };
	const orch = new Orchestrator({
		state,
		nodeId: "orch-test",
		settings: {
			maxAttempts: 3,
			backoffBaseMs: 100,
			backoffMaxMs: 200,
			taskLeaseMs: 5000,
			taskTimeoutMs: 60_000,
			leaderTtlMs: 5000,
			tickMs: 50,
			retentionMs: 3_600_000,
			concurrency: () => 10,
			countyZips: [],
			requestsPerSecond: () => null,
		},
		endpoints: () => Object.keys(REGION),
		// Calls never answer during the test: what counts is where each task went.
		call: (_action, params, node) => {
			calls.push({ node, zip: String(params.zip) });
			return new Promise(() => {});
		},
		nodeAlive: () => true,
		regionOf: (n) => REGION[n] ?? null,
		suits,
		availableSources: () => ["maricopa", "mls"],
		enrichAvailable: () => false,
		broadcast: () => {},
		logger: silent,
	});
	return { orch, calls };
}

describe("orchestrator with regions", () => {
	test("a job's tasks are spread evenly over the regions", async () => {
		const state = new MemorySharedState();
		const { orch, calls } = engine(state, () => true);
		await orch.collect({ zips: ZIPS, sources: ["maricopa"] });
		await orch.tick();
		await waitFor(() => calls.length === ZIPS.length, "every task dispatched", 5000, 20);
		const perRegion = { a: 0, b: 0 } as Record<string, number>;
		const perNode = new Map<string, number>();
		for (const c of calls) {
			perRegion[REGION[c.node]]++;
			perNode.set(c.node, (perNode.get(c.node) ?? 0) + 1);
		}
		assert.deepEqual(perRegion, { a: 4, b: 4 });
		assert.deepEqual([...perNode.values()], [2, 2, 2, 2]);
		await orch.stop();
		await state.close();
	});

	test("tasks go only to regions that suit their source", async () => {
		const state = new MemorySharedState();
		const { orch, calls } = engine(state, (source, node) => source !== "mls" || REGION[node] === "b");
		await orch.collect({ zips: ZIPS.slice(0, 4), sources: ["mls"] });
		await orch.tick();
		await waitFor(() => calls.length === 4, "every task dispatched", 5000, 20);
		assert.ok(
			calls.every((c) => REGION[c.node] === "b"),
			JSON.stringify(calls),
		);
		await orch.stop();
		await state.close();
	});
});
