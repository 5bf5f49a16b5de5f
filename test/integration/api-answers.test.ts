/**
 * What the REST API answers for what a user asks (issue 13, item 7), over real HTTP on an embedded
 * node: what does not exist is a JSON 404; the auth scheme is case-insensitive; `status` is matched
 * in any case and a wrong one refused with the allowed values; the ZIP's 422 says "5 digits"; keyset
 * paging (`after=`) neither repeats nor skips a row when rows are written between pages.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { loadConfig } from "../../src/config/index.ts";
import { type RunningNode, startNode } from "../../src/node/start-node.ts";

const TOKEN = "api-answers-token-3c7d";
const ZIP = "85031";

/** An MLS listing record as the store ingests it (keyed by its address: addr:<street>|<zip>). */
function listing(i: number, status: string) {
	return {
		source: "mls",
		sourceId: `AA${String(i).padStart(5, "0")}`,
		record: {
			mlsId: `AA${String(i).padStart(5, "0")}`,
			address: { street: `${100 + i} W Test St`, city: "Phoenix", state: "AZ", zip: ZIP },
			price: 300_000 + i,
			status,
		},
	};
}

const keyOf = (i: number) => `addr:${100 + i} W TEST ST|${ZIP}`;

describe("REST API answers (embedded node)", () => {
	let node: RunningNode;
	let base: string;
	let dataDir: string;

	const get = async (path: string, authorization = `Bearer ${TOKEN}`) => {
		const res = await fetch(`${base}${path}`, { headers: { authorization } });
		const text = await res.text();
		let json: Record<string, unknown> | null = null;
		try {
			json = JSON.parse(text) as Record<string, unknown>;
		} catch {
			json = null;
		}
		return { status: res.status, type: res.headers.get("content-type") ?? "", text, json };
	};

	before(async () => {
		dataDir = mkdtempSync(join(tmpdir(), "saguaro-api-answers-"));
		node = await startNode(
			loadConfig({
				NODE_ID: "api-answers",
				SERVICES: "api,store,orchestrator",
				DATA_DIR: dataDir,
				LOG_LEVEL: "fatal",
				METRICS_PORT: "0",
				HEALTH_PORT: "0",
				API_PORT: "0",
				API_TOKENS: TOKEN,
				REPL: "off",
			}),
		);
		const api = node.broker.getLocalService("api") as unknown as { server: { address(): AddressInfo } };
		base = `http://127.0.0.1:${api.server.address().port}`;
		const records = Array.from({ length: 12 }, (_, i) => listing(i, i % 3 === 0 ? "Pending" : "Active"));
		await node.broker.call("properties.ingest", { records });
	});

	after(async () => {
		await node?.stop();
		if (dataDir) rmSync(dataDir, { recursive: true, force: true });
	});

	test("an unknown property, parcel or job is a JSON 404", async () => {
		for (const path of ["/api/properties/no-such-key", "/api/parcels/999-99-999", "/api/jobs/no-such-job"]) {
			const res = await get(path);
			assert.equal(res.status, 404, `${path}: ${res.status} ${res.text}`);
			assert.match(res.type, /^application\/json/, `${path}: content type ${res.type}`);
			assert.equal(res.json?.code, 404, path);
		}
		for (const action of ["cancel", "retry"]) {
			const res = await fetch(`${base}/api/jobs/no-such-job/${action}`, {
				method: "POST",
				headers: { authorization: `Bearer ${TOKEN}` },
			});
			assert.equal(res.status, 404, `${action} of an unknown job: ${await res.text()}`);
			assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
		}
		const known = await get(`/api/properties/${encodeURIComponent(keyOf(1))}`);
		assert.equal(known.status, 200, known.text);
		assert.equal(known.json?.key, keyOf(1));
	});

	test("the Authorization scheme is case-insensitive", async () => {
		for (const header of [`bearer ${TOKEN}`, `BEARER ${TOKEN}`, `Bearer ${TOKEN}`]) {
			assert.equal((await get("/api/health", header)).status, 200, header);
		}
		assert.equal((await get("/api/health", `bearer wrong-token`)).status, 401);
		assert.equal((await get("/api/health", TOKEN)).status, 401, "a token without its scheme");
	});

	test("status matches in any case; an unknown status is a 422 naming the allowed values", async () => {
		const exact = await get(`/api/properties?zip=${ZIP}&status=Active`);
		const lower = await get(`/api/properties?zip=${ZIP}&status=active`);
		assert.equal(exact.status, 200);
		assert.equal((exact.json?.rows as unknown[] | undefined)?.length, 8);
		assert.deepEqual(lower.json?.rows, exact.json?.rows);

		const bogus = await get(`/api/properties?status=bogus`);
		assert.equal(bogus.status, 422, bogus.text);
		assert.match(bogus.text, /Active, Pending/);
	});

	test("a bad ZIP's 422 says 5 digits", async () => {
		const res = await get("/api/properties?zip=8503");
		assert.equal(res.status, 422);
		assert.match(res.text, /5 digits/);
		assert.ok(!res.text.includes("/^d{5}$/"), res.text);
	});

	test("keyset paging with after= neither repeats nor skips rows written between pages", async () => {
		const seen: string[] = [];
		let after = "";
		let written = 900;
		for (let pages = 0; pages < 20; pages++) {
			const res = await get(`/api/properties?zip=${ZIP}&pageSize=4&after=${encodeURIComponent(after)}`);
			assert.equal(res.status, 200, res.text);
			const rows = res.json?.rows as { key: string }[];
			seen.push(...rows.map((r) => r.key));
			// A new row between pages, sorted before the cursor ("addr:1000 W..." < "addr:101 W..."): it
			// shifts every offset page by one, so `page=` would answer a row twice.
			await node.broker.call("properties.ingest", { records: [listing(written, "Active")] });
			written++;
			const next = res.json?.nextKey as string | null;
			if (!next) break;
			after = next;
		}
		assert.equal(new Set(seen).size, seen.length, `a row came twice: ${seen.join(" ")}`);
		for (let i = 0; i < 12; i++) assert.ok(seen.includes(keyOf(i)), `row ${i}: ${seen.join(" ")}`);
	});
});
