/**
 * The llm service end to end on embedded nodes (store + llm, NeDB, memory shared state) against
 * the sandbox's OpenAI-compatible endpoint over loopback: enrichment of a ZIP, the cache, malformed
 * answers, 429 with Retry-After, a tiny daily budget, and a refused key that must never leak.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Sandbox, startSandbox } from "../../sandbox/index.ts";
import { loadConfig } from "../../src/config/index.ts";
import { propertyInputHash } from "../../src/domain/enrichment-input.ts";
import type { PropertyDoc } from "../../src/domain/property.ts";
import type { EnrichPendingResult } from "../../src/llm/enricher.ts";
import { type RunningNode, startNode } from "../../src/node/start-node.ts";
import { parcelRecord } from "../harness/store.ts";

const ZIPS = ["85031", "85033", "85008"];
const [MAIN, MALFORMED, LIMITED] = ZIPS as [string, string, string];
const MODEL = "sandbox-llm";
const MAX_ATTEMPTS = 2;
const CONCURRENCY = 4;

interface Page {
	rows: PropertyDoc[];
	total: number;
}

let sandbox: Sandbox;
const dirs: string[] = [];

/** An embedded store+llm node on the sandbox, holding the parcels of `zips`. */
async function llmNode(id: string, env: Record<string, string>, zips: string[]): Promise<RunningNode> {
	const dataDir = await mkdtemp(join(tmpdir(), `saguaro-llm-${id}-`));
	dirs.push(dataDir);
	const node = await startNode(
		loadConfig({
			...sandbox.env,
			NODE_ID: id,
			SERVICES: "store,llm",
			DATA_DIR: dataDir,
			STORE_NEDB_COMPACT_S: "0",
			LOG_LEVEL: "warn",
			METRICS_PORT: "0",
			HEALTH_PORT: "0",
			REPL: "off",
			LLM_MODEL: MODEL,
			LLM_RATE_PER_MIN: "60000",
			LLM_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
			LLM_CONCURRENCY: String(CONCURRENCY),
			LLM_TIMEOUT_S: "10",
			REQUEST_TIMEOUT_MS: "60000",
			...env,
		}),
	);
	for (const zip of zips) {
		for (const parcel of sandbox.world.byZip.get(zip) ?? []) {
			await node.broker.call("properties.merge", {
				source: "maricopa",
				sourceId: parcel.apn,
				record: parcelRecord(parcel),
			});
		}
	}
	return node;
}

const rowsOf = async (node: RunningNode, zip: string) =>
	(await node.broker.call<Page, object>("properties.find", { zip, pageSize: 500 })).rows;
const pending = (node: RunningNode, zip: string) =>
	node.broker.call<EnrichPendingResult, object>("llm.enrichPending", { zip });
const parcelsIn = (zip: string) => sandbox.world.byZip.get(zip)?.length ?? 0;
const chats = (status?: number) =>
	sandbox.llm.counters.total({ kind: "chat", ...(status ? { status } : {}) });

before(async () => {
	// More parcels in the malformed ZIP: some of them surely draw unreadable answers only.
	sandbox = await startSandbox({
		seed: 17,
		world: { zips: ZIPS, parcelsPerZip: { default: 12, [MALFORMED]: 20 } },
	});
});
after(async () => {
	await sandbox?.stop();
	for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe("llm service: enrichment from the LLM, cache, malformed answers, 429", () => {
	let node: RunningNode;
	before(async () => {
		node = await llmNode(
			"llm-main",
			{ LLM_PRICE_PROMPT_USD_PER_1K: "0.001", LLM_PRICE_COMPLETION_USD_PER_1K: "0.002" },
			ZIPS,
		);
	});
	after(async () => {
		await node?.stop();
	});

	test("every property of a ZIP is enriched by the LLM, one request each; again: all unchanged, no request", async () => {
		const n = parcelsIn(MAIN);
		const before = sandbox.llm.usage.requests;
		const first = await pending(node, MAIN);
		assert.deepEqual(
			{
				items: first.items,
				new: first.new,
				llm: first.llm,
				failures: first.failures,
				fallback: first.fallback,
			},
			{ items: n, new: n, llm: n, failures: 0, fallback: 0 },
			JSON.stringify(first.failed),
		);
		assert.equal(sandbox.llm.usage.requests - before, n, "one request per property");
		assert.equal(first.requests, n);
		for (const row of await rowsOf(node, MAIN)) {
			const e = row.enrichment;
			assert.ok(e, `${row.key} is enriched`);
			assert.equal(e.processing.source, "llm");
			assert.equal(e.processing.llm_model, MODEL);
			assert.equal(e.processing.inputHash, propertyInputHash(row, MODEL));
			assert.ok(e.processing.tokens_used > 0);
			assert.ok(e.key_features.length > 0 && e.description.length > 0);
			assert.ok(["buy", "hold", "pass"].includes(e.investment_analysis.recommendation));
		}

		const again = await pending(node, MAIN);
		assert.deepEqual(
			{ items: again.items, unchanged: again.unchanged, requests: again.requests },
			{ items: n, unchanged: n, requests: 0 },
		);
		assert.equal(sandbox.llm.usage.requests - before, n, "no new request");

		const usage = await node.broker.call<Record<string, number>>("llm.usage");
		assert.equal(usage.requests, n);
		const tokens = sandbox.llm.usage;
		assert.equal(usage.promptTokens, tokens.promptTokens);
		assert.equal(usage.completionTokens, tokens.completionTokens);
		assert.ok(
			Math.abs(usage.costUsd - (tokens.promptTokens * 0.001 + tokens.completionTokens * 0.002) / 1000) < 1e-6,
		);
	});

	test("enrich with force on an enriched property is answered from the cache", async () => {
		const [row] = await rowsOf(node, MAIN);
		assert.ok(row?.enrichment);
		const before = sandbox.llm.usage.requests;
		const current = await node.broker.call<{ status: string }, object>("llm.enrich", { key: row.key });
		assert.equal(current.status, "unchanged");
		const forced = await node.broker.call<{ status: string; enrichment: PropertyDoc["enrichment"] }, object>(
			"llm.enrich",
			{ key: row.key, force: true },
		);
		assert.equal(forced.status, "updated");
		assert.equal(forced.enrichment?.processing.source, "cache");
		assert.equal(forced.enrichment?.description, row.enrichment.description);
		assert.equal(sandbox.llm.usage.requests, before, "no LLM request");
		const stored = await node.broker.call<PropertyDoc, object>("properties.get", { key: row.key });
		assert.equal(stored.enrichment?.processing.source, "cache");
		await assert.rejects(node.broker.call("llm.enrich", { key: "99999999" }), /no property/);
	});

	test("malformed answers are retried, then the rules fallback answers; once the LLM behaves they are replaced", async () => {
		const n = parcelsIn(MALFORMED);
		// Every answer is malformed: prose, truncated JSON, or JSON in a markdown fence (which is
		// read). A property whose MAX_ATTEMPTS answers are all unreadable gets the fallback.
		sandbox.llm.faults.set({ malformedRate: 1 });
		const before = sandbox.llm.usage.requests;
		let out: EnrichPendingResult;
		try {
			out = await pending(node, MALFORMED);
		} finally {
			sandbox.llm.faults.reset();
		}
		assert.deepEqual({ new: out.new, failures: out.failures }, { new: n, failures: 0 });
		assert.equal(out.llm + out.fallback, n);
		assert.ok(out.fallback > 0, "some properties never got a readable answer");
		const requests = sandbox.llm.usage.requests - before;
		assert.equal(requests, out.requests);
		assert.ok(requests > n, "unreadable answers were asked for again");
		// A fallback spent every attempt; a fenced answer took one or more.
		assert.ok(requests >= out.fallback * MAX_ATTEMPTS + out.llm);
		assert.ok(requests <= n * MAX_ATTEMPTS);
		const rows = await rowsOf(node, MALFORMED);
		const rules = rows.filter((r) => r.enrichment?.processing.source === "rules");
		assert.equal(rules.length, out.fallback);
		assert.ok(rules.every((r) => r.enrichment?.processing.tokens_used === 0));
		const usage = await node.broker.call<{ fallbacks: number }>("llm.usage");
		assert.ok(usage.fallbacks >= out.fallback);

		// The rules enrichments are replaced by the LLM's; the LLM's own stay as they are.
		const healed = await pending(node, MALFORMED);
		assert.deepEqual(
			{ updated: healed.updated, llm: healed.llm, fallback: healed.fallback, unchanged: healed.unchanged },
			{ updated: out.fallback, llm: out.fallback, fallback: 0, unchanged: out.llm },
		);
		assert.ok((await rowsOf(node, MALFORMED)).every((r) => r.enrichment?.processing.source === "llm"));
	});

	test("429 with Retry-After is honoured and the ZIP still completes", async () => {
		const n = parcelsIn(LIMITED);
		const limitedBefore = chats(429);
		sandbox.llm.faults.set({ rateLimit: { limit: 3, windowMs: 1000, retryAfterS: 1 } });
		try {
			const out = await pending(node, LIMITED);
			assert.deepEqual(
				{ new: out.new, llm: out.llm, failures: out.failures },
				{ new: n, llm: n, failures: 0 },
			);
		} finally {
			sandbox.llm.faults.reset();
		}
		const refused = chats(429) - limitedBefore;
		assert.ok(refused > 0, "the endpoint did rate-limit");
		// Every node waits out a Retry-After: after a 429 no more than the requests already in flight
		// meet the closed window, instead of every retry of every property.
		assert.ok(refused <= n, `${refused} refusals for ${n} properties`);
	});
});

describe("llm service: a tiny daily budget", () => {
	let node: RunningNode;
	const PRICE = 1; // USD per 1K tokens, prompt and completion
	const BUDGET = 3;
	before(async () => {
		node = await llmNode(
			"llm-budget",
			{
				LLM_PRICE_PROMPT_USD_PER_1K: String(PRICE),
				LLM_PRICE_COMPLETION_USD_PER_1K: String(PRICE),
				LLM_BUDGET_USD_PER_DAY: String(BUDGET),
				LLM_MAX_TOKENS: "400",
				LLM_CACHE_TTL_H: "0",
			},
			[MAIN],
		);
	});
	after(async () => {
		await node?.stop();
	});

	test("spending stops at the budget and the rest falls back", async () => {
		const n = parcelsIn(MAIN);
		const before = { ...sandbox.llm.usage };
		const out = await pending(node, MAIN);
		const spentTokens =
			sandbox.llm.usage.promptTokens -
			before.promptTokens +
			(sandbox.llm.usage.completionTokens - before.completionTokens);
		const spentUsd = (spentTokens * PRICE) / 1000;
		assert.ok(spentUsd <= BUDGET, `spent $${spentUsd} of $${BUDGET}`);
		assert.ok(out.llm > 0 && out.fallback > 0, JSON.stringify(out));
		assert.equal(out.llm + out.fallback, n);
		assert.equal(sandbox.llm.usage.requests - before.requests, out.llm);
		const usage = await node.broker.call<{
			costUsd: number;
			budgetRefusals: number;
			budget: { usdLeft: number };
		}>("llm.usage");
		assert.ok(Math.abs(usage.costUsd - spentUsd) < 1e-6);
		assert.ok(usage.budgetRefusals >= out.fallback);
		assert.ok(usage.budget.usdLeft >= 0 && usage.budget.usdLeft <= BUDGET);
		const sources = (await rowsOf(node, MAIN)).map((r) => r.enrichment?.processing.source);
		assert.equal(sources.filter((s) => s === "rules").length, out.fallback);
	});
});

describe("llm service: a refused key", () => {
	const WRONG_KEY = "sk-wrong-key-7f3a9c2e51";
	let node: RunningNode;
	let output = "";
	const writes = { out: process.stdout.write, err: process.stderr.write };

	before(async () => {
		// Everything the node prints (its logger writes to the console in the pretty format).
		const tap =
			(original: typeof process.stdout.write) =>
			(chunk: unknown, ...rest: unknown[]): boolean => {
				output += String(chunk);
				return (original as (...a: unknown[]) => boolean).call(process.stdout, chunk, ...rest);
			};
		process.stdout.write = tap(writes.out) as typeof process.stdout.write;
		process.stderr.write = tap(writes.err) as typeof process.stderr.write;
		node = await llmNode("llm-badkey", { LLM_API_KEY: WRONG_KEY, LOG_FORMAT: "pretty", LOG_LEVEL: "debug" }, [
			MAIN,
		]);
	});
	after(async () => {
		await node?.stop();
		process.stdout.write = writes.out;
		process.stderr.write = writes.err;
	});

	test("the LLM is not hammered, the fallback answers, and the key appears nowhere", async () => {
		const n = parcelsIn(MAIN);
		const refusedBefore = chats(401);
		const out = await pending(node, MAIN);
		const refused = chats(401) - refusedBefore;
		assert.ok(refused >= 1 && refused <= CONCURRENCY, `${refused} refused requests`);
		assert.deepEqual(
			{ fallback: out.fallback, failures: out.failures, new: out.new },
			{ fallback: n, failures: 0, new: n },
		);
		const again = await pending(node, MAIN);
		assert.equal(chats(401) - refusedBefore, refused, "stopped: no request at all the second time");
		assert.equal(again.requests, 0);

		const [row] = await rowsOf(node, MAIN);
		const answers = [
			out,
			again,
			await node.broker.call("llm.usage"),
			await node.broker.call("llm.status"),
			await node.broker.call("llm.enrich", { key: row!.key, force: true }),
		];
		const usage = answers[2] as { stopped: { reason: string } | null };
		assert.match(usage.stopped?.reason ?? "", /refused the API key/);
		assert.match(output, /LLM calls are stopped for the whole cluster/);
		assert.ok(!JSON.stringify(answers).includes(WRONG_KEY), "key in an answer");
		assert.ok(!output.includes(WRONG_KEY), "key in the log output");
	});
});
