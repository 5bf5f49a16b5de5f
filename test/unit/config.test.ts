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
