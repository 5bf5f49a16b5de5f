/**
 * The region strategy over real brokers (Moleculer's in-process Fake transporter): a caller's calls
 * go to endpoints of its region, round robin among them; they cross only when its region has none;
 * a broker without a region balances over all. REGION reaches the node metadata through
 * createBrokerOptions.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import moleculer from "moleculer";
import { createBrokerOptions } from "../../moleculer.config.ts";
import {
	RegionStrategy,
	regionCallCounts,
	regionCallsMiddleware,
} from "../../src/cluster/region-strategy.ts";
import { loadConfig } from "../../src/config/index.ts";

function broker(nodeID: string, region: string | null) {
	return new moleculer.ServiceBroker({
		namespace: `region-${process.pid}`,
		nodeID,
		transporter: "Fake",
		logger: false,
		metadata: region ? { region } : {},
		registry: { strategy: RegionStrategy, preferLocal: true },
		middlewares: [regionCallsMiddleware()],
	});
}

describe("region strategy", () => {
	const brokers: moleculer.ServiceBroker[] = [];
	const workers: Record<string, string> = { "a-1": "a", "a-2": "a", "b-1": "b", "b-2": "b" };
	let callerA: moleculer.ServiceBroker;
	let callerB: moleculer.ServiceBroker;
	let callerNone: moleculer.ServiceBroker;

	before(async () => {
		for (const [id, region] of Object.entries(workers)) {
			const b = broker(id, region);
			b.createService({ name: "echo", actions: { who: () => id } });
			brokers.push(b);
		}
		callerA = broker("caller-a", "a");
		callerB = broker("caller-b", "b");
		callerNone = broker("caller-none", null);
		brokers.push(callerA, callerB, callerNone);
		await Promise.all(brokers.map((b) => b.start()));
		await callerA.waitForServices("echo");
		await Promise.all([callerA, callerB, callerNone].map((b) => b.waitForServices("echo")));
		// Every caller has seen all four endpoints.
		for (const c of [callerA, callerB, callerNone]) {
			for (let i = 0; i < 100; i++) {
				const list = c.registry.getActionEndpoints("echo.who") as unknown as { endpoints: unknown[] };
				if (list?.endpoints.length === 4) break;
				await new Promise((r) => setTimeout(r, 20));
			}
		}
	});

	after(async () => {
		await Promise.all(brokers.map((b) => b.stop()));
	});

	test("REGION goes into the node metadata and selects the strategy", () => {
		const opts = createBrokerOptions(loadConfig({ REGION: "us-west", METRICS_PORT: "0" }));
		assert.deepEqual(opts.metadata, { region: "us-west" });
		assert.equal(opts.registry?.strategy, RegionStrategy);
		const none = createBrokerOptions(loadConfig({ METRICS_PORT: "0" }));
		assert.deepEqual(none.metadata, {});
		assert.equal(none.registry?.strategy, "RoundRobin");
		assert.throws(() => loadConfig({ REGION: "US West" }), /REGION/);
	});

	test("calls stay in the caller's region, round robin among its endpoints", async () => {
		const seen = new Map<string, number>();
		for (let i = 0; i < 20; i++) {
			const who = (await callerA.call("echo.who")) as string;
			seen.set(who, (seen.get(who) ?? 0) + 1);
		}
		assert.deepEqual([...seen.keys()].sort(), ["a-1", "a-2"]);
		assert.equal(seen.get("a-1"), 10);
		assert.equal(regionCallCounts(callerA).local, 20);
		assert.equal(regionCallCounts(callerA).cross, 0);
		const fromB = new Set<string>();
		for (let i = 0; i < 10; i++) fromB.add((await callerB.call("echo.who")) as string);
		assert.deepEqual([...fromB].sort(), ["b-1", "b-2"]);
	});

	test("a broker without a region balances over every region", async () => {
		const seen = new Set<string>();
		for (let i = 0; i < 8; i++) seen.add((await callerNone.call("echo.who")) as string);
		assert.equal(seen.size, 4);
	});

	test("a call crosses only when the caller's region has no endpoint left", async () => {
		const a = brokers.filter((b) => workers[b.nodeID] === "a");
		await Promise.all(a.map((b) => b.stop()));
		for (let i = 0; i < 100; i++) {
			const list = callerA.registry.getActionEndpoints("echo.who") as unknown as {
				endpoints: { isAvailable: boolean }[];
			};
			if (list.endpoints.filter((e) => e.isAvailable).length === 2) break;
			await new Promise((r) => setTimeout(r, 20));
		}
		const before = regionCallCounts(callerA).cross;
		const seen = new Set<string>();
		for (let i = 0; i < 6; i++) seen.add((await callerA.call("echo.who")) as string);
		assert.deepEqual([...seen].sort(), ["b-1", "b-2"]);
		assert.equal(regionCallCounts(callerA).cross - before, 6);
	});
});
