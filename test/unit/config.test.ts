import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { resolve } from "node:path";
import { describe, test } from "node:test";
import { ConfigError, loadConfig } from "../../src/config/index.ts";
import { SERVICE_NAMES } from "../../src/config/services.ts";
import { redact } from "../../src/utils/redact.ts";

const ROOT = resolve(import.meta.dirname, "../..");

function problemsOf(env: Record<string, string>): string[] {
	try {
		loadConfig(env);
	} catch (err) {
		assert.ok(err instanceof ConfigError);
		return err.problems;
	}
	assert.fail("expected a ConfigError");
}

describe("configuration from the environment", () => {
	test("defaults describe the embedded node: all services, no transporter, memory state", () => {
		const { core } = loadConfig({});
		assert.deepEqual(core.services, [...SERVICE_NAMES]);
		assert.equal(core.transporter, null);
		assert.equal(core.redisUrl, null);
		assert.equal(core.mongoUri, null);
		assert.equal(core.requestTimeoutMs, 30_000);
	});

	test("SERVICES names and services/*.service.ts files are the same set", () => {
		const files = readdirSync(resolve(ROOT, "services"))
			.filter((f) => f.endsWith(".service.ts"))
			.map((f) => f.replace(/\.service\.ts$/, ""));
		assert.deepEqual([...SERVICE_NAMES].sort(), files.sort());
	});

	test("values are converted and lists split", () => {
		const { core } = loadConfig({
			SERVICES: " api , ",
			METRICS_PORT: "9100",
			TRANSPORTER: "nats://10.0.0.1:4222",
		});
		assert.deepEqual(core.services, ["api"]);
		assert.equal(core.metricsPort, 9100);
		assert.equal(core.transporter, "nats://10.0.0.1:4222");
	});

	test("each bad value is reported with the variable's name", () => {
		const problems = problemsOf({
			TRANSPORTER: "amqp://rabbit:5672",
			REDIS_URL: "localhost:6379",
			SERVICES: "api,scrapers",
			METRICS_PORT: "http",
			LOG_LEVEL: "loud",
		});
		assert.equal(problems.length, 5, problems.join("\n"));
		assert.match(problems.join("\n"), /TRANSPORTER has unsupported scheme 'amqp:'/);
		assert.match(problems.join("\n"), /REDIS_URL/);
		assert.match(problems.join("\n"), /SERVICES names unknown value\(s\) 'scrapers'/);
		assert.match(problems.join("\n"), /METRICS_PORT/);
		assert.match(problems.join("\n"), /LOG_LEVEL must be one of/);
	});

	test("a secret's value is not echoed in the error, and is redacted once registered", () => {
		const problems = problemsOf({ API_TOKENS: "tok-very-secret-1", METRICS_PORT: "-5" });
		assert.doesNotMatch(problems.join("\n"), /tok-very-secret-1/);
		assert.equal(redact("Bearer tok-very-secret-1 sent"), "Bearer [redacted] sent");
	});

	test("the runner refuses a bad environment at start, naming the variable (exit 2)", () => {
		const res = spawnSync(process.execPath, [resolve(ROOT, "bin/saguaro.ts")], {
			env: { PATH: process.env.PATH, REDIS_URL: "http://cache:6379", REPL: "off" },
			encoding: "utf8",
			timeout: 30_000,
		});
		assert.equal(res.status, 2, res.stderr);
		assert.match(res.stderr, /REDIS_URL has unsupported scheme 'http:'/);
	});

	test("host breakers: one naming family in seconds; the older names are still read, with a warning", async () => {
		const c = loadConfig({ LLM_BREAKER_OPEN_S: "2.5", MLS_BREAKER_FAILURE_RATE: "0.6" });
		assert.deepEqual(c.llm.breaker, { windowMs: 60_000, minRequests: 10, failureRate: 0.5, openMs: 2500 });
		assert.deepEqual(c.mls.breaker, { windowMs: 60_000, minRequests: 20, failureRate: 0.6, openMs: 60_000 });
		assert.equal(c.maricopa.breaker.openMs, 30_000);
		const warnings: string[] = [];
		const onWarning = (w: Error) => warnings.push(w.message);
		process.on("warning", onWarning);
		try {
			const old = loadConfig({
				MARICOPA_BREAKER_OPEN_MS: "1500",
				MLS_BREAKER_FAILURES: "7",
				MLS_BREAKER_COOLDOWN_S: "9",
			});
			assert.equal(old.maricopa.breaker.openMs, 1500);
			assert.equal(old.mls.breaker.minRequests, 7);
			assert.equal(old.mls.breaker.openMs, 9000);
			// The new name wins over the old one.
			assert.equal(
				loadConfig({ MLS_BREAKER_FAILURES: "7", MLS_BREAKER_MIN_REQUESTS: "8" }).mls.breaker.minRequests,
				8,
			);
		} finally {
			await new Promise((r) => setImmediate(r));
			process.off("warning", onWarning);
		}
		assert.ok(
			warnings.some((w) => /MARICOPA_BREAKER_OPEN_MS is deprecated: set MARICOPA_BREAKER_OPEN_S/.test(w)),
		);
		assert.ok(
			warnings.some((w) => /MLS_BREAKER_FAILURES is deprecated: set MLS_BREAKER_MIN_REQUESTS/.test(w)),
		);
	});
});

describe("redaction", () => {
	test("secret keys, URL credentials and nested values", () => {
		const out = redact({
			proxy: "http://user1:hunter22@10.0.0.5:8080",
			nested: { password: "p", apiKey: "k", list: [{ token: "t" }], fine: "visible" },
			authorization: "Token abc",
			captchaKey: "c",
			property: { key: "10306003", apn: "10306003" },
		});
		assert.deepEqual(out, {
			proxy: "http://user1:[redacted]@10.0.0.5:8080",
			nested: {
				password: "[redacted]",
				apiKey: "[redacted]",
				list: [{ token: "[redacted]" }],
				fine: "visible",
			},
			authorization: "[redacted]",
			captchaKey: "[redacted]",
			// A property's key is data, not a secret.
			property: { key: "10306003", apn: "10306003" },
		});
	});
});
