/**
 * A serving node never refuses requests on its own breaker's verdict (src/cluster/caller-circuit-breaker.ts).
 *
 * Two brokers over a real nats-server: "server" runs with Saguaro's broker options and serves an
 * action that fails with a server fault until told otherwise; "caller" is a plain broker without a
 * breaker, so it keeps sending. With Moleculer's built-in breaker on local actions, the server's own
 * breaker trips on those faults and then refuses every request ("Service … is not available locally")
 * for the half-open time, though the handler is healthy again.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import moleculer from "moleculer";
import { createBrokerOptions } from "../../moleculer.config.ts";
import { loadConfig } from "../../src/config/index.ts";
import { type RunningServer, startNats } from "../harness/servers.ts";

describe("caller-side circuit breaker", () => {
	let nats: RunningServer;
	let server: moleculer.ServiceBroker;
	let caller: moleculer.ServiceBroker;
	let failing = true;
	let handled = 0;

	before(async () => {
		nats = await startNats();
		const config = loadConfig({
			TRANSPORTER: nats.url,
			NODE_ID: "breaker-server",
			BREAKER_MIN_REQUESTS: "3",
			BREAKER_THRESHOLD: "0.5",
			// Long enough that a refusal by the server's own breaker would outlast the test.
			BREAKER_HALF_OPEN_MS: "600000",
			LOG_LEVEL: "error",
		});
		const options = createBrokerOptions(config);
		server = new moleculer.ServiceBroker(options);
		server.createService({
			name: "flaky",
			actions: {
				op() {
					handled++;
					if (failing) throw new moleculer.Errors.MoleculerServerError("store busy", 500, "BUSY");
					return "ok";
				},
			},
		});
		caller = new moleculer.ServiceBroker({
			nodeID: "breaker-caller",
			namespace: options.namespace,
			transporter: options.transporter,
			logger: false,
			circuitBreaker: { enabled: false },
			retryPolicy: { enabled: false },
		});
		await Promise.all([server.start(), caller.start()]);
		await caller.waitForServices("flaky", 10_000);
	});

	after(async () => {
		await Promise.allSettled([caller?.stop(), server?.stop()]);
		await nats?.stop();
	});

	test("after a burst of faults the healthy handler answers the next remote request", async () => {
		for (let i = 0; i < 6; i++) {
			await assert.rejects(caller.call("flaky.op"), (err: Error & { code?: number }) => err.code === 500);
		}
		assert.equal(handled, 6, "every faulty request reached the handler");
		failing = false;
		assert.equal(await caller.call("flaky.op"), "ok");
		assert.equal(handled, 7);
	});
});
