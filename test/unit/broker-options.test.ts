/**
 * What the circuit breaker counts: faults of the endpoint itself, never a caller's bad input or a
 * failure the endpoint only reports from upstream (a site or proxy that failed a render).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import moleculer from "moleculer";
import { countsAsBreakerFailure, createBrokerOptions } from "../../moleculer.config.ts";
import { loadConfig } from "../../src/config/index.ts";

const { MoleculerClientError, MoleculerRetryableError, MoleculerServerError, RequestTimeoutError } =
	moleculer.Errors;

describe("circuit breaker check", () => {
	test("server faults and timeouts count; bad input and upstream failures do not", () => {
		assert.equal(countsAsBreakerFailure(new MoleculerServerError("boom", 500, "BOOM")), true);
		assert.equal(countsAsBreakerFailure(new MoleculerRetryableError("busy", 503, "BROWSER_BUSY")), true);
		assert.equal(countsAsBreakerFailure(new RequestTimeoutError({ action: "a.b", nodeID: "n" })), true);
		assert.equal(countsAsBreakerFailure(new Error("plain")), true, "an error without a code is a fault");
		assert.equal(countsAsBreakerFailure(new MoleculerClientError("bad apn", 422, "INVALID_APN")), false);
		// browser-pool's answer when the page or its proxy failed: the node itself is healthy.
		const upstream = new MoleculerClientError("goto failed", 502, "RENDER_FAILED", {
			kind: "proxy",
			upstream: true,
		});
		assert.equal(countsAsBreakerFailure(upstream), false);
		const crash = new MoleculerClientError("browser gone", 502, "RENDER_FAILED", {
			kind: "crash",
			upstream: false,
		});
		assert.equal(countsAsBreakerFailure(crash), true);
		assert.equal(countsAsBreakerFailure(null), false);
	});

	test("the broker options use it", () => {
		const options = createBrokerOptions(loadConfig({}));
		assert.equal(options.circuitBreaker?.check, countsAsBreakerFailure);
	});
});
