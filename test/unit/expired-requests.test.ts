/**
 * A call that waited in the bulkhead's queue past its caller's timeout is not started
 * (src/cluster/expired-requests.ts), with Saguaro's broker options.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import moleculer from "moleculer";
import { createBrokerOptions } from "../../moleculer.config.ts";
import { loadConfig } from "../../src/config/index.ts";
import { sleep } from "../../src/utils/time.ts";

describe("expired requests", () => {
	let broker: moleculer.ServiceBroker;
	const started: string[] = [];

	before(async () => {
		const config = loadConfig({
			NODE_ID: "expired-requests",
			BULKHEAD_CONCURRENCY: "1",
			RETRIES: "0",
			LOG_LEVEL: "error",
		});
		broker = new moleculer.ServiceBroker(createBrokerOptions(config));
		broker.createService({
			name: "busy",
			actions: {
				async work(ctx: moleculer.Context<{ name: string }>) {
					started.push(ctx.params.name);
					await sleep(300);
					return ctx.params.name;
				},
			},
		});
		await broker.start();
	});

	after(() => broker?.stop());

	test("the third queued call, let through after its 400 ms, never runs", async () => {
		const calls = ["a", "b", "c"].map((name) =>
			broker.call("busy.work", { name }, { timeout: 400 }).then(
				() => "ok",
				(err: Error & { code?: number }) => err.name,
			),
		);
		const outcomes = await Promise.all(calls);
		assert.equal(outcomes[0], "ok");
		assert.equal(outcomes[2], "RequestTimeoutError", "the caller gets its timeout");
		// b starts at ~300 ms (its caller still waiting) or, on a slow machine, is refused too.
		await sleep(1000);
		assert.ok(!started.includes("c"), `c was started after its caller gave up: ${started.join(",")}`);
		assert.ok(started.includes("a"));
	});
});
