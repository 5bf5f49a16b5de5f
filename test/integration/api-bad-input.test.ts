/**
 * Bad input and errors sized for the bus (issue 19). Over real HTTP on an embedded node: bodies over
 * the size limit answered 413, deep JSON refused with 400 before it is parsed, absurd numbers 422, no
 * answer echoing unbounded input, 5xx answers generic with a request id; the store's generic reads
 * (list, count, find) refuse raw query objects over the broker. Over a real NATS server
 * between two nodes: an error whose text is larger than NATS's 1 MB payload cap (a validation error
 * echoing its input, an action throwing a huge message) reaches the caller as a bounded error instead
 * of crashing the serving node, and the gateway never retries a write.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { apiErrorBody } from "../../src/api/http-guards.ts";
import { loadConfig } from "../../src/config/index.ts";
import { type RunningNode, startNode } from "../../src/node/start-node.ts";
import { type RunningServer, startNats } from "../harness/servers.ts";

const TOKEN = "bad-input-test-token-5e21";
const KIB = 1024;

const baseEnv = {
	LOG_LEVEL: "fatal",
	METRICS_PORT: "0",
	HEALTH_PORT: "0",
	API_PORT: "0",
	API_TOKENS: TOKEN,
	REPL: "off",
};

function apiBase(node: RunningNode): string {
	const api = node.broker.getLocalService("api") as unknown as { server: { address(): AddressInfo } };
	return `http://127.0.0.1:${api.server.address().port}`;
}

async function send(base: string, method: string, path: string, body?: string) {
	const res = await fetch(`${base}${path}`, {
		method,
		headers: {
			authorization: `Bearer ${TOKEN}`,
			...(body !== undefined ? { "content-type": "application/json" } : {}),
		},
		...(body !== undefined ? { body } : {}),
	});
	const text = await res.text();
	let json: Record<string, unknown> = {};
	try {
		json = JSON.parse(text) as Record<string, unknown>;
	} catch {
		// not JSON: the assertions on `text` say what came back
	}
	return { status: res.status, text, json, headers: res.headers };
}

describe("REST API bad input (embedded node)", () => {
	let node: RunningNode;
	let base: string;
	let dataDir: string;

	before(async () => {
		dataDir = mkdtempSync(join(tmpdir(), "saguaro-bad-input-"));
		node = await startNode(
			loadConfig({ ...baseEnv, NODE_ID: "bad-input", SERVICES: "api,store,orchestrator", DATA_DIR: dataDir }),
		);
		base = apiBase(node);
	});

	after(async () => {
		await node?.stop();
		if (dataDir) rmSync(dataDir, { recursive: true, force: true });
	});

	test("a body over the size limit is answered 413", async () => {
		const res = await send(base, "POST", "/api/jobs", JSON.stringify({ zips: ["9".repeat(900 * KIB)] }));
		assert.equal(res.status, 413, res.text.slice(0, 300));
		assert.ok(res.text.length < 2 * KIB, `413 answer of ${res.text.length} characters`);
	});

	test("a validation error does not echo unbounded input", async () => {
		const big = "A".repeat(25 * KIB);
		const res = await send(
			base,
			"POST",
			"/api/jobs",
			JSON.stringify({ zips: ["85031"], sources: [big, big] }),
		);
		assert.equal(res.status, 422, res.text.slice(0, 300));
		assert.match(res.text, /sources/);
		assert.ok(res.text.length < 8 * KIB, `422 answer of ${res.text.length} characters`);
	});

	test("deeply nested JSON is refused with 400, not a 500 stack overflow", async () => {
		const depth = 10_000;
		for (const body of [
			`{"zips":["85031"],"origin":${"[".repeat(depth)}${"]".repeat(depth)}}`,
			`{"zips":${"[".repeat(depth)}${"]".repeat(depth)}}`,
			`{"zips":["85031"],"x":${'{"a":'.repeat(depth)}1${"}".repeat(depth)}}`,
		]) {
			const res = await send(base, "POST", "/api/jobs", body);
			assert.equal(res.status, 400, res.text.slice(0, 300));
			assert.match(String(res.json.message), /nested deeper/);
		}
		// Brackets inside strings are data, not depth.
		const inString = await send(
			base,
			"POST",
			"/api/jobs",
			JSON.stringify({ zips: ["85031"], origin: "[".repeat(90), sources: [] }),
		);
		assert.notEqual(inString.status, 400, inString.text);
	});

	test("absurd numbers are refused with 422", async () => {
		for (const q of ["page=1e308", "page=1000001", "pageSize=1e308", "page=1.5", "page=-1"]) {
			const res = await send(base, "GET", `/api/properties?${q}`);
			assert.equal(res.status, 422, `${q}: ${res.text.slice(0, 300)}`);
		}
		assert.equal((await send(base, "GET", "/api/properties?page=1000000&pageSize=500")).status, 200);
	});

	test("the store's generic reads over the broker validate their queries like the REST routes", async () => {
		const refused = async (action: string, params: object) => {
			const err = await node.broker.call(action, params).then(
				() => assert.fail(`${action} ${JSON.stringify(params)} was accepted`),
				(e: unknown) => e as Error & { code?: number },
			);
			assert.equal(err.code, 422, `${action} ${JSON.stringify(params)}: ${err.message}`);
		};
		await refused("properties.list", { query: { zip: { $ne: null } } });
		await refused("properties.list", { query: { $where: "sleep(1000)" } });
		await refused("properties.count", { query: { "history.0": { $exists: true } } });
		await refused("properties.count", { query: "{}" });
		await refused("properties.list", { search: "a.*b", searchFields: "owner" });
		await refused("properties.list", { page: 1e308 });
		await refused("properties.list", { populate: "sources" });
		await refused("raw.list", { query: { payload: { $regex: ".*" } } });
		await refused("raw.count", { query: { $or: [{ source: "maricopa" }] } });
		await refused("raw.find", { query: { source: { $gt: "" } }, limit: 10 });
		await refused("raw.find", { offset: 1e308 });
		// What the routes allow still works: named fields with plain values, bounded pages.
		assert.equal(await node.broker.call("properties.count", { query: { zip: "85031" } }), 0);
		assert.equal(await node.broker.call("raw.count", {}), 0);
		const page = (await node.broker.call("properties.list", { page: 1, pageSize: 10, sort: "-zip key" })) as {
			rows: unknown[];
		};
		assert.deepEqual(page.rows, []);
		assert.deepEqual(await node.broker.call("raw.find", { query: { source: "maricopa" }, limit: 5 }), []);
	});

	test("every error answer carries a request id, the same as its X-Request-ID header", async () => {
		const res = await send(base, "GET", "/api/properties?zip=abc");
		assert.equal(res.status, 422);
		assert.equal(typeof res.json.requestId, "string");
		assert.equal(res.headers.get("x-request-id"), res.json.requestId);
	});

	test("a 5xx answer says something generic and a request id, no internals", async () => {
		// Pure part: whatever a backend throws (a driver message with its source location, a stack).
		const driver = Object.assign(
			new Error("(InternalError) [pool.go:175 sqlite.(*Pool).Exec] skip value overflows int64"),
			{ code: 2, data: { file: "/srv/ferretdb/internal/backends/sqlite/query.go" } },
		);
		const body = apiErrorBody(driver, "req-1");
		assert.equal(body.code, 500);
		assert.equal(body.requestId, "req-1");
		assert.match(body.message, /req-1/);
		assert.doesNotMatch(JSON.stringify(body), /pool\.go|sqlite|ferretdb|\/srv\//i);

		// Over HTTP: a backend behind an API route fails the way a database driver does.
		node.broker.createService({
			name: "llm",
			actions: {
				usage() {
					throw driver;
				},
			},
		});
		await node.broker.waitForServices("llm", 10_000);
		const res = await send(base, "GET", "/api/llm/usage");
		assert.equal(res.status, 500, res.text);
		assert.doesNotMatch(res.text, /pool\.go|sqlite|ferretdb|\/srv\/|overflows/i);
		assert.equal(typeof res.json.requestId, "string");
		assert.equal(res.headers.get("x-request-id"), res.json.requestId);
		assert.match(String(res.json.message), new RegExp(String(res.json.requestId)));
		assert.deepEqual(Object.keys(res.json).sort(), ["code", "message", "name", "requestId"]);
	});
});

describe("errors over NATS stay under the payload cap", () => {
	let nats: RunningServer;
	let front: RunningNode;
	let back: RunningNode;
	let base: string;

	before(async () => {
		nats = await startNats();
		const shared = { ...baseEnv, TRANSPORTER: nats.url, NAMESPACE: `bad-input-${process.pid}` };
		back = await startNode(loadConfig({ ...shared, NODE_ID: "bad-input-back", SERVICES: "orchestrator" }));
		// A short timeout: a lost answer fails the test quickly instead of hanging it.
		front = await startNode(
			loadConfig({ ...shared, NODE_ID: "bad-input-front", SERVICES: "api", REQUEST_TIMEOUT_MS: "8000" }),
		);
		back.broker.createService({
			name: "loud",
			actions: {
				fail() {
					throw new Error(`boom ${"x".repeat(2 * KIB * KIB)}`);
				},
			},
		});
		await front.broker.waitForServices(["orchestrator", "loud"], 30_000);
		base = apiBase(front);
	});

	after(async () => {
		await front?.stop();
		await back?.stop();
		await nats?.stop();
	});

	const refusal = (params: object) =>
		front.broker.call("orchestrator.collect", params).then(
			() => assert.fail("the call succeeded"),
			(e: unknown) => e as Error & { code?: number; type?: string; data?: unknown },
		);

	test("a 700 KiB ZIP is refused with a bounded 422, and the serving node lives on", async () => {
		const err = await refusal({ zips: ["9".repeat(700 * KIB)] });
		assert.equal(err.code, 422, `${err.name}: ${err.message?.slice(0, 200)}`);
		const size = JSON.stringify({ message: err.message, data: err.data }).length;
		assert.ok(size < 20 * KIB, `error of ${size} characters`);
		// The serving node still answers.
		const listed = await front.broker.call("orchestrator.list", {});
		assert.ok(Array.isArray(listed));
	});

	test("a validator's error data does not echo a 300 KiB parameter", async () => {
		const err = await refusal({ zips: ["85031"], sources: ["A".repeat(300 * KIB)] });
		assert.equal(err.code, 422, `${err.name}: ${err.message?.slice(0, 200)}`);
		const size = JSON.stringify({ message: err.message, data: err.data }).length;
		assert.ok(size < 20 * KIB, `error of ${size} characters`);
	});

	test("an action throwing a 2 MB message is answered with a bounded error", async () => {
		const err = await front.broker.call("loud.fail").then(
			() => assert.fail("the call succeeded"),
			(e: unknown) => e as Error & { code?: number; type?: string },
		);
		assert.notEqual(err.name, "RequestTimeoutError", err.message);
		assert.match(err.message, /^boom x+/);
		assert.ok(err.message.length < 2 * KIB, `message of ${err.message.length} characters`);
	});

	test("over HTTP, a 422 from another node is bounded too", async () => {
		const big = "A".repeat(30 * KIB);
		const res = await send(base, "POST", "/api/jobs", JSON.stringify({ zips: ["85031"], sources: [big] }));
		assert.equal(res.status, 422, res.text.slice(0, 300));
		assert.ok(res.text.length < 8 * KIB, `422 answer of ${res.text.length} characters`);
	});

	test("the gateway never retries a write; reads keep the broker's retry policy", () => {
		const api = front.broker.getLocalService("api") as unknown as {
			routes: { name?: string; callOptions?: { retries?: number }; aliases?: unknown }[];
			aliases: { method: string; route: { callOptions?: { retries?: number } } }[];
		};
		const writes = api.aliases.filter((a) => a.method !== "GET");
		assert.ok(writes.length > 0);
		for (const alias of writes) assert.equal(alias.route.callOptions?.retries, 0, `${alias.method} alias`);
		for (const alias of api.aliases.filter((a) => a.method === "GET")) {
			assert.equal(alias.route.callOptions?.retries, undefined);
		}
	});
});
