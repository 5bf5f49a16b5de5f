/**
 * Several real Saguaro node processes over a real NATS server: discovery, balancing, failover after
 * SIGKILL, and the cluster-wide breaker (including timeouts counting as breaker failures).
 * Callers in the test process are brokers built from the project's own broker options.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import moleculer from "moleculer";
import { createBrokerOptions } from "../../moleculer.config.ts";
import { loadConfig } from "../../src/config/index.ts";
import { sleep, waitFor } from "../../src/utils/time.ts";
import { clientBroker, type NodeProcess, spawnNode } from "../harness/cluster.ts";
import { type RunningServer, startNats } from "../harness/servers.ts";

const ECHO = resolve(import.meta.dirname, "../fixtures/echo.service.ts");

/** A caller node with Saguaro's real broker options (retry, breaker, timeouts). */
function saguaroCaller(nats: string, nodeId: string, env: Record<string, string> = {}) {
	const config = loadConfig({
		NODE_ID: nodeId,
		TRANSPORTER: nats,
		SERVICES: "api",
		METRICS_PORT: "0",
		HEARTBEAT_INTERVAL_S: "1",
		HEARTBEAT_TIMEOUT_S: "4",
		ENABLE_METRICS: "false",
		...env,
	});
	return new moleculer.ServiceBroker({ ...createBrokerOptions(config), logger: false });
}

const workerEnv = (nats: string, extra: Record<string, string> = {}) => ({
	TRANSPORTER: nats,
	SERVICES: "api",
	API_PORT: "0",
	HEARTBEAT_INTERVAL_S: "1",
	HEARTBEAT_TIMEOUT_S: "4",
	...extra,
});

describe("cluster over NATS", () => {
	let nats: RunningServer;
	const nodes: NodeProcess[] = [];
	const brokers: moleculer.ServiceBroker[] = [];

	before(async () => {
		nats = await startNats();
	});
	after(async () => {
		await Promise.all(brokers.map((b) => b.stop().catch(() => {})));
		await Promise.all(nodes.map((n) => n.stop()));
		await nats.stop();
	});

	async function startWorkers(ids: string[], extra: (id: string) => Record<string, string> = () => ({})) {
		const started = ids.map((id) =>
			spawnNode({ nodeId: id, env: workerEnv(nats.url, extra(id)), extraServiceFiles: [ECHO] }),
		);
		nodes.push(...started);
		await Promise.all(started.map((n) => n.ready()));
		return started;
	}

	test("services are discovered and calls are balanced across two instances", async () => {
		await startWorkers(["bal-a", "bal-b"]);
		const client = clientBroker(nats.url, "bal-client");
		brokers.push(client);
		await client.start();
		await client.waitForServices(["echo"], 30_000);
		await waitFor(
			() => client.registry.getActionEndpoints("echo.whoami")?.count() === 2,
			"both echo endpoints",
			30_000,
		);
		const seen = new Map<string, number>();
		for (let i = 0; i < 20; i++) {
			const id = (await client.call("echo.whoami")) as string;
			seen.set(id, (seen.get(id) ?? 0) + 1);
		}
		assert.deepEqual([...seen.keys()].sort(), ["bal-a", "bal-b"]);
		assert.ok(
			[...seen.values()].every((n) => n >= 5),
			`balanced: ${JSON.stringify([...seen])}`,
		);
		// SIGTERM: each node stops its services and exits cleanly.
		assert.deepEqual(await Promise.all(nodes.splice(0).map((n) => n.stop())), [0, 0]);
		await client.stop();
		brokers.splice(brokers.indexOf(client), 1);
	});

	test("a node killed with SIGKILL mid-load: calls fail over to the survivor, none hangs", async () => {
		const [victim] = await startWorkers(["kill-a", "kill-b"]);
		const caller = saguaroCaller(nats.url, "kill-caller", { REQUEST_TIMEOUT_MS: "3000", RETRIES: "5" });
		brokers.push(caller);
		await caller.start();
		// Both endpoints known and available (an endpoint can be listed before it may be called).
		const endpoints = () =>
			(
				caller.registry.getActionEndpoints("echo.work") as unknown as
					| { endpoints: { id: string; state: boolean }[] }
					| undefined
			)?.endpoints ?? [];
		await waitFor(() => endpoints().filter((ep) => ep.state).length === 2, "two available endpoints", 30_000);

		// Settled as they are made: a call refused at once must be counted, not left unhandled.
		const calls: Promise<PromiseSettledResult<string>>[] = [];
		for (let i = 0; i < 60; i++) {
			calls.push(
				(caller.call("echo.work", { ms: 150 }) as Promise<string>).then(
					(value) => ({ status: "fulfilled", value }),
					(reason: unknown) => ({
						status: "rejected",
						reason: `call ${i}: ${reason} (endpoints: ${JSON.stringify(endpoints())})`,
					}),
				),
			);
			if (i === 20) victim.kill("SIGKILL");
			await sleep(20);
		}
		const settled = await Promise.all(calls);
		const failed = settled.filter((s) => s.status === "rejected");
		assert.equal(
			failed.length,
			0,
			`failed calls: ${failed.map((f) => String((f as PromiseRejectedResult).reason)).join("; ")}`,
		);
		const served = settled.map((s) => (s as PromiseFulfilledResult<string>).value);
		assert.ok(served.includes("kill-a"), "the victim served calls before it died");
		assert.ok(
			served.slice(-10).every((id) => id === "kill-b"),
			"the survivor serves after the kill",
		);
		assert.equal(await victim.exited, null, "victim was killed by a signal");
		await Promise.all(nodes.splice(0).map((n) => n.stop()));
	});

	test("a breaker opened on one node (by timeouts) is respected by the others", async () => {
		// hang-a never answers echo.work; hang-b answers at once.
		await startWorkers(
			["hang-a", "hang-b"],
			(id): Record<string, string> => (id === "hang-a" ? { ECHO_HANG: "1" } : {}),
		);
		const breakerEnv = {
			REQUEST_TIMEOUT_MS: "300",
			RETRIES: "2",
			BREAKER_MIN_REQUESTS: "3",
			BREAKER_THRESHOLD: "0.5",
			BREAKER_HALF_OPEN_MS: "60000",
		};
		const first = saguaroCaller(nats.url, "caller-1", breakerEnv);
		const second = saguaroCaller(nats.url, "caller-2", breakerEnv);
		brokers.push(first, second);
		const opened: unknown[] = [];
		second.createService({
			name: "watch",
			events: {
				"$circuit-breaker.opened"(ctx: moleculer.Context) {
					opened.push(ctx.params);
				},
			},
		});
		await Promise.all([first.start(), second.start()]);
		for (const b of [first, second]) {
			await waitFor(() => b.registry.getActionEndpoints("echo.work")?.count() === 2, "two endpoints", 30_000);
		}

		// caller-1 alone meets the hanging node; its timeouts must open its breaker.
		for (let i = 0; i < 12 && opened.length === 0; i++) {
			await first.call("echo.work", {}).catch(() => {});
		}
		await waitFor(() => opened.length > 0, "caller-2 to hear that caller-1 opened its breaker", 10_000);
		assert.deepEqual(
			{ nodeID: (opened[0] as { nodeID: string }).nodeID, action: (opened[0] as { action: string }).action },
			{ nodeID: "hang-a", action: "echo.work" },
		);
		// caller-2 never called hang-a, yet now sends it nothing: every call lands on hang-b at once.
		const list = second.registry.getActionEndpoints("echo.work") as unknown as {
			endpoints: { id: string; state: boolean }[];
		};
		await waitFor(
			() => list.endpoints.find((ep) => ep.id === "hang-a")?.state === false,
			"caller-2 to hold hang-a's endpoint open",
			5_000,
		);
		const results = await Promise.all(
			Array.from({ length: 10 }, () => second.call("echo.work", {}, { retries: 0 })),
		);
		assert.deepEqual(new Set(results), new Set(["hang-b"]));
		assert.deepEqual(await second.call("$cluster-breaker.held", {}, { nodeID: "caller-2" }), [
			"hang-a:echo.work",
		]);
		// The node the breaker is about never takes itself out: it would refuse every call sent to it
		// ("not available locally") and so keep the callers' breakers open for good.
		assert.deepEqual(await second.call("$cluster-breaker.held", {}, { nodeID: "hang-a" }), []);
		assert.deepEqual(await second.call("$cluster-breaker.held", {}, { nodeID: "hang-b" }), [
			"hang-a:echo.work",
		]);
	});
});
