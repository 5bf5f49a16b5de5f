/**
 * Three scheduler processes over real NATS and Redis with a two-second cron: every tick fires
 * exactly once in the cluster, ZIP batches rotate across runs, and after the node that fired last
 * is SIGKILLed the following ticks still fire, once each.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type moleculer from "moleculer";
import type { Firing } from "../../src/scheduler/scheduler.ts";
import { waitFor } from "../../src/utils/time.ts";
import { clientBroker, type NodeProcess, spawnNode, waitUntilGone } from "../harness/cluster.ts";
import { type RunningServer, startNats, startRedis } from "../harness/servers.ts";

const ZIPS = ["85031", "85033", "85008"];
const SCHEDULES = JSON.stringify([
	// $node.health stands for the fired action: what is under test is who fires, and how often.
	{
		name: "every2s",
		cron: "*/2 * * * * *",
		action: "$node.health",
		zips: ZIPS,
		batchSize: 1,
		missed: "skip",
	},
]);

describe("scheduler in a cluster", () => {
	let nats: RunningServer;
	let redis: RunningServer;
	let client: moleculer.ServiceBroker;
	const nodes: NodeProcess[] = [];
	const firings: Firing[] = [];

	before(async () => {
		[nats, redis] = await Promise.all([startNats(), startRedis()]);
		client = clientBroker(nats.url);
		client.createService({
			name: "fired-listener",
			events: {
				"scheduler.fired"(ctx: moleculer.Context<Firing>) {
					firings.push(ctx.params);
				},
			},
		});
		await client.start();
		for (const id of ["sched-1", "sched-2", "sched-3"]) {
			const node = spawnNode({
				nodeId: id,
				env: {
					TRANSPORTER: nats.url,
					REDIS_URL: redis.url,
					SERVICES: "scheduler",
					HEARTBEAT_INTERVAL_S: "1",
					HEARTBEAT_TIMEOUT_S: "3",
					SCHEDULES,
					SCHEDULER_ROUND_MS: "200",
					SCHEDULER_MISSED_GRACE_S: "5",
				},
			});
			nodes.push(node);
		}
		await Promise.all(nodes.map((n) => n.ready()));
	});

	after(async () => {
		await client?.stop().catch(() => {});
		await Promise.all(nodes.map((n) => n.stop()));
		await Promise.all([nats?.stop(), redis?.stop()]);
	});

	const byTick = (since: number) => {
		const map = new Map<string, Firing[]>();
		for (const f of firings.filter((x) => Date.parse(x.tick) > since)) {
			map.set(f.tick, [...(map.get(f.tick) ?? []), f]);
		}
		return map;
	};

	test("each tick fires once across three nodes; batches rotate; the next tick survives the firer's death", async () => {
		const start = Date.now();
		await waitFor(() => byTick(start).size >= 4, "four ticks", 30_000, 100);
		const before = byTick(start);
		for (const [tick, list] of before)
			assert.equal(list.length, 1, `tick ${tick} fired ${list.length} times`);
		// Consecutive runs take consecutive ZIP batches, whichever node fires them.
		const ordered = [...before.values()].map((l) => l[0]).sort((a, b) => a.tick.localeCompare(b.tick));
		for (let i = 1; i < ordered.length; i++) {
			const prev = ZIPS.indexOf(ordered[i - 1].zips?.[0] ?? "");
			assert.equal(ordered[i].zips?.[0], ZIPS[(prev + 1) % ZIPS.length]);
		}

		const lastFirer = ordered[ordered.length - 1].node;
		const victim = nodes.find((n) => n.nodeId === lastFirer) as NodeProcess;
		victim.kill("SIGKILL");
		await victim.exited;
		const killedAt = Date.now();
		await waitFor(() => byTick(killedAt).size >= 3, "three ticks after the kill", 30_000, 100);
		const after = byTick(killedAt);
		for (const [tick, list] of after) {
			assert.equal(list.length, 1, `tick ${tick} fired ${list.length} times`);
			assert.notEqual(list[0].node, lastFirer);
		}
		// No tick was skipped after the kill: they are two seconds apart.
		const ticks = [...after.keys()].map(Date.parse).sort();
		for (let i = 1; i < ticks.length; i++) assert.equal(ticks[i] - ticks[i - 1], 2000);

		// Any surviving scheduler answers once the client has noticed the death.
		await waitUntilGone(client, lastFirer);
		const views = (await client.call("scheduler.list")) as { name: string; lastTick: string }[];
		assert.equal(views[0].name, "every2s");
	});
});
