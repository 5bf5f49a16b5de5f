/**
 * The llm area's pure parts: facts and their hash, the prompt, answer validation, the rules
 * fallback, cost math, the classification of endpoint answers, and the daily budget over the
 * in-memory shared state (the same contract as Redis).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { generateWorld } from "../../sandbox/generator.ts";
import { countTokens, extractFacts } from "../../sandbox/llm.ts";
import {
	inputHash,
	type PropertyFacts,
	propertyFacts,
	propertyInputHash,
	RULES_MODEL,
} from "../../src/domain/enrichment-input.ts";
import { type EnrichmentContent, mergeProperty } from "../../src/domain/property.ts";
import type { Contribution } from "../../src/domain/property-fields.ts";
import { AnswerError, parseAnswer } from "../../src/llm/answer.ts";
import { LlmBudget } from "../../src/llm/budget.ts";
import { classifyCompletion } from "../../src/llm/client.ts";
import { costUsd, promptTokenBound, requestBound } from "../../src/llm/cost.ts";
import { rulesEnrichment } from "../../src/llm/fallback.ts";
import { buildMessages } from "../../src/llm/prompt.ts";
import { MemorySharedState } from "../../src/shared-state/index.ts";
import { listingRecord, parcelRecord } from "../harness/store.ts";

const world = generateWorld({
	seed: 5,
	zips: ["85031"],
	parcelsPerZip: 60,
	listingShare: 0.5,
	relistShare: 0,
});
const listed = world.listings[0]!;
const parcel = world.byApn.get(listed.apn)!;
const c = (source: "maricopa" | "mls", sourceId: string, record: object): Contribution =>
	({ source, sourceId, record, collectedAt: "2026-01-01T00:00:00Z" }) as Contribution;
const parcelOnly = mergeProperty(null, c("maricopa", parcel.apn, parcelRecord(parcel)), {
	id: "p",
	now: "t",
}).doc;
const withListing = mergeProperty(parcelOnly, c("mls", listed.mlsId, listingRecord(listed)), {
	id: "p",
	now: "t",
}).doc;

const GOOD: EnrichmentContent = {
	description: "3-bedroom home near schools.",
	key_features: ["3 bedrooms", "pool"],
	investment_analysis: {
		rental_estimate: 1850,
		cap_rate: 5.4,
		market_trend: "stable",
		recommendation: "hold",
	},
	quality_score: 0.8,
};

describe("facts and input hash", () => {
	test("facts come from the merged property: Assessor facts, MLS price and rooms", () => {
		const f = propertyFacts(withListing);
		assert.equal(f.zip, "85031");
		assert.equal(f.address, withListing.street);
		assert.equal(f.price, listed.price);
		assert.equal(f.beds, listed.beds);
		assert.equal(f.baths, listed.fullBaths + listed.halfBaths / 2);
		assert.equal(f.yearBuilt, parcel.constructionYear);
		assert.equal(f.assessedValue, parcel.valuations[0]?.fullCashValue ?? null);
		const bare = propertyFacts(parcelOnly);
		assert.equal(bare.price, null);
		assert.equal(bare.beds, null);
	});

	test("the hash is stable, key order and missing-vs-null aside; facts, model and version change it", () => {
		const f = propertyFacts(withListing);
		const h = inputHash(f, "llama3.1");
		assert.match(h, /^[0-9a-f]{32}$/);
		const reordered = Object.fromEntries(Object.entries(f).reverse()) as unknown as PropertyFacts;
		assert.equal(inputHash(reordered, "llama3.1"), h);
		const { hoaFee: _drop, ...lacking } = withListing;
		assert.equal(propertyInputHash({ ...lacking, hoaFee: undefined as never }, "llama3.1"), h);
		assert.equal(
			propertyInputHash({ ...withListing, beds: undefined as never }, "llama3.1"),
			inputHash({ ...f, beds: null }, "llama3.1"),
		);
		assert.notEqual(inputHash({ ...f, price: (f.price ?? 0) + 1 }, "llama3.1"), h);
		assert.notEqual(inputHash(f, "gpt-4o-mini"), h);
		assert.notEqual(inputHash(f, RULES_MODEL), h);
		// Facts the property does not derive from are not in the hash (photos, description).
		assert.equal(
			propertyInputHash({ ...withListing, photos: ["x"], description: "new words" }, "llama3.1"),
			h,
		);
	});
});

describe("prompt", () => {
	test("system message asks for the contract's JSON; the user message carries the facts as JSON", () => {
		const f = propertyFacts(withListing);
		const messages = buildMessages(f);
		assert.deepEqual(
			messages.map((m) => m.role),
			["system", "user"],
		);
		for (const field of [
			"description",
			"key_features",
			"rental_estimate",
			"cap_rate",
			"market_trend",
			"quality_score",
		])
			assert.ok(messages[0]!.content.includes(field), field);
		const json = messages[1]!.content.slice(messages[1]!.content.indexOf("{"));
		assert.deepEqual(JSON.parse(json), f);
		// A model (here the sandbox's reader) finds the facts in it.
		const read = extractFacts(messages.map((m) => m.content).join("\n"));
		assert.equal(read.price, listed.price);
		assert.equal(read.beds, listed.beds);
		assert.equal(read.zip, "85031");
		assert.deepEqual(buildMessages(f), messages, "same facts, same prompt");
	});
});

describe("answer validation", () => {
	const json = JSON.stringify(GOOD);
	const refused = (content: string, pattern: RegExp, finish?: string) =>
		assert.throws(
			() => parseAnswer(content, finish),
			(err: Error) => err instanceof AnswerError && pattern.test(err.message),
		);

	test("a good answer, and the same fenced in markdown", () => {
		assert.deepEqual(parseAnswer(json, "stop"), GOOD);
		assert.deepEqual(parseAnswer(`\`\`\`json\n${json}\n\`\`\``), GOOD);
		assert.deepEqual(parseAnswer(`  \`\`\`\n${json}\n\`\`\`  `), GOOD);
		const extra = parseAnswer(
			JSON.stringify({ ...GOOD, note: "extra", investment_analysis: { ...GOOD.investment_analysis, x: 1 } }),
		);
		assert.deepEqual(extra, GOOD, "unknown keys are dropped");
	});

	test("prose, truncated JSON, a cut-off answer and non-objects are refused, naming why", () => {
		refused("Sure! Here is my analysis of the property.", /not JSON.*'Sure! Here is/);
		refused(json.slice(0, json.length / 2), /not JSON/);
		refused(json, /cut off at max_tokens.*LLM_MAX_TOKENS/, "length");
		refused("[1,2]", /not an object \(array\)/);
		refused("42", /not an object \(number\)/);
	});

	test("wrong types and values are refused with the field named", () => {
		const bad = (patch: object, pattern: RegExp) => refused(JSON.stringify({ ...GOOD, ...patch }), pattern);
		bad({ quality_score: 1.5 }, /quality_score/);
		bad({ quality_score: "0.8" }, /quality_score/);
		bad({ key_features: "pool" }, /key_features/);
		bad({ key_features: [] }, /key_features/);
		bad({ description: "" }, /description/);
		bad({ investment_analysis: { ...GOOD.investment_analysis, cap_rate: "5%" } }, /cap_rate/);
		bad({ investment_analysis: { ...GOOD.investment_analysis, market_trend: "bullish" } }, /market_trend/);
		bad(
			{ investment_analysis: { ...GOOD.investment_analysis, recommendation: undefined } },
			/recommendation/,
		);
		const { quality_score: _q, ...missing } = GOOD;
		refused(JSON.stringify(missing), /quality_score/);
	});
});

describe("rules fallback", () => {
	const base = propertyFacts(withListing);

	test("deterministic, and a valid enrichment by the same validator as the LLM's", () => {
		const a = rulesEnrichment(base);
		assert.deepEqual(rulesEnrichment({ ...base }), a);
		assert.deepEqual(parseAnswer(JSON.stringify(a)), a);
		assert.match(a.description, /Rule-based estimate/);
		assert.ok(a.key_features.includes(`${listed.beds} bedrooms`));
	});

	test("rent from the price, else the assessed value, else the living space; cap rate and recommendation from it", () => {
		const facts = { ...base, price: 300_000, assessedValue: 200_000, livableSpace: 1500 };
		const byPrice = rulesEnrichment(facts).investment_analysis;
		assert.equal(byPrice.rental_estimate, 1950); // 0.65% at the $300,000 reference
		assert.equal(byPrice.cap_rate, 4.7); // 1950 * 12 * 0.6 / 300,000
		assert.equal(byPrice.recommendation, "hold");
		assert.equal(byPrice.market_trend, "stable");
		const byAssessed = rulesEnrichment({ ...facts, price: null }).investment_analysis;
		assert.equal(byAssessed.rental_estimate, 1450); // 1950 x (2/3)^0.75: a larger share of a smaller value
		const bySize = rulesEnrichment({ ...facts, price: null, assessedValue: null }).investment_analysis;
		assert.equal(bySize.rental_estimate, 1650);
		assert.equal(bySize.cap_rate, 0);
		assert.equal(bySize.recommendation, "pass");
		assert.deepEqual(rulesEnrichment({ ...facts, price: 100_000 }).investment_analysis.cap_rate, 6.1);
		assert.equal(rulesEnrichment({ ...facts, price: 100_000 }).investment_analysis.recommendation, "buy");
		assert.equal(rulesEnrichment({ ...facts, price: 900_000 }).investment_analysis.recommendation, "pass");
	});

	test("quality score is the share of known facts", () => {
		const none = Object.fromEntries(Object.keys(base).map((k) => [k, null])) as unknown as PropertyFacts;
		assert.equal(rulesEnrichment(none).quality_score, 0);
		assert.equal(rulesEnrichment(none).investment_analysis.rental_estimate, 0);
		const all = rulesEnrichment({
			...base,
			price: 1,
			status: "Active",
			beds: 3,
			baths: 2,
			pool: true,
		}).quality_score;
		assert.ok(all > rulesEnrichment(propertyFacts(parcelOnly)).quality_score);
		assert.ok(all <= 1);
	});
});

describe("cost", () => {
	test("cost from usage tokens and per-1K prices", () => {
		const prices = { promptUsdPer1k: 0.5, completionUsdPer1k: 1.5 };
		assert.equal(costUsd({ promptTokens: 1000, completionTokens: 1000 }, prices), 2);
		assert.equal(costUsd({ promptTokens: 200, completionTokens: 100 }, prices), 0.25);
		assert.equal(
			costUsd({ promptTokens: 5000, completionTokens: 5000 }, { promptUsdPer1k: 0, completionUsdPer1k: 0 }),
			0,
		);
	});

	test("a request's bound is above what the endpoint counts, and its completion part is max_tokens", () => {
		const messages = buildMessages(propertyFacts(withListing));
		const counted = countTokens(messages.map((m) => m.content).join("\n")) + 3 * messages.length;
		assert.ok(promptTokenBound(messages) >= counted);
		assert.deepEqual(requestBound(messages, 800).completionTokens, 800);
	});
});

describe("endpoint answers", () => {
	const answer = (
		status: number,
		body: unknown,
		extra: Partial<{ retryAfter: string; statusText: string }> = {},
	) => ({
		status,
		statusText: extra.statusText ?? "",
		contentType: "application/json",
		body: typeof body === "string" ? body : JSON.stringify(body),
		retryAfter: extra.retryAfter ?? null,
	});

	test("a completion: content, finish reason, usage", () => {
		const c = classifyCompletion(
			answer(200, {
				choices: [{ message: { role: "assistant", content: "{}" }, finish_reason: "stop" }],
				usage: { prompt_tokens: 12, completion_tokens: 3 },
			}),
		);
		assert.equal(c.outcome, "ok");
		assert.deepEqual(c.attempt, {
			kind: "ok",
			value: { content: "{}", finishReason: "stop", usage: { promptTokens: 12, completionTokens: 3 } },
		});
		const noUsage = classifyCompletion(answer(200, { choices: [{ message: { content: "x" } }] }));
		assert.equal(noUsage.attempt.kind === "ok" && noUsage.attempt.value.usage, null);
	});

	test("401/403 stop the cluster without quoting the body; 429 waits; 5xx retries; other 4xx fail", () => {
		const refused = classifyCompletion(
			answer(401, { error: { message: "Incorrect API key provided: sk-abc***xyz" } }),
		);
		assert.equal(refused.attempt.kind, "fatal");
		assert.doesNotMatch(JSON.stringify(refused), /sk-abc/);
		assert.equal(classifyCompletion(answer(403, {})).attempt.kind, "fatal");
		const limited = classifyCompletion(answer(429, {}, { retryAfter: "7" }));
		assert.deepEqual(limited.attempt.kind === "rate-limited" && limited.attempt.retryAfterMs, 7000);
		assert.equal(classifyCompletion(answer(503, {})).attempt.kind, "transient");
		const unknownModel = classifyCompletion(answer(404, { error: { message: "model 'x' not found" } }));
		assert.equal(unknownModel.attempt.kind, "failed");
		assert.match(
			unknownModel.attempt.kind === "failed" ? unknownModel.attempt.reason : "",
			/model 'x' not found/,
		);
	});

	test("a body that is not a completion is transient", () => {
		assert.equal(classifyCompletion(answer(200, "{trunc")).outcome, "malformed");
		assert.equal(classifyCompletion(answer(200, { choices: [] })).attempt.kind, "transient");
	});
});

describe("daily budget (shared state)", () => {
	const prices = { promptUsdPer1k: 1, completionUsdPer1k: 2 };
	const bound = { promptTokens: 100, completionTokens: 100 }; // $0.30 worst case

	test("reservations stop at the USD cap, even when made at once; settling gives the unused part back", async () => {
		const state = new MemorySharedState();
		const budget = new LlmBudget(state, { usdPerDay: 1, tokensPerDay: 0 }, prices, () =>
			Date.parse("2026-03-01T12:00:00Z"),
		);
		const all = await Promise.all(Array.from({ length: 10 }, () => budget.reserve(bound)));
		const granted = all.filter((r) => typeof r !== "string");
		assert.equal(granted.length, 3, "3 x $0.30 fit in $1, a 4th does not");
		assert.match(all.find((r) => typeof r === "string") as string, /daily LLM budget of \$1 reached/);
		for (const r of granted)
			if (typeof r !== "string") await budget.settle(r, { promptTokens: 50, completionTokens: 25 });
		const usage = await budget.usage();
		assert.equal(usage.day, "2026-03-01");
		assert.equal(Math.round(usage.costUsd * 1e6), 300_000); // 3 x (0.05 + 0.05)
		assert.equal(usage.committedUsd, usage.costUsd);
		assert.equal(usage.promptTokens, 150);
		assert.equal(usage.budgetRefusals, 7);
		// Room again after settling: a request that costs nothing gives back its whole reservation.
		const again = await budget.reserve(bound);
		assert.notEqual(typeof again, "string");
		if (typeof again !== "string") await budget.settle(again, null);
		assert.equal((await budget.usage()).committedUsd, usage.costUsd);
		await state.close();
	});

	test("the token cap, and a free model under a zero USD budget", async () => {
		const state = new MemorySharedState();
		const capped = new LlmBudget(
			state,
			{ usdPerDay: 0, tokensPerDay: 450 },
			{ promptUsdPer1k: 0, completionUsdPer1k: 0 },
		);
		assert.notEqual(typeof (await capped.reserve(bound)), "string");
		assert.notEqual(typeof (await capped.reserve(bound)), "string");
		assert.match((await capped.reserve(bound)) as string, /token cap of 450/);
		await state.close();
	});

	test("a settlement lands on the day its reservation was made", async () => {
		const state = new MemorySharedState();
		let now = Date.parse("2026-03-01T23:59:59Z");
		const budget = new LlmBudget(state, { usdPerDay: 10, tokensPerDay: 0 }, prices, () => now);
		const r = await budget.reserve(bound);
		now += 2000;
		if (typeof r !== "string") await budget.settle(r, { promptTokens: 10, completionTokens: 10 });
		assert.equal((await budget.usage("2026-03-01")).promptTokens, 10);
		assert.equal((await budget.usage()).promptTokens, 0);
		await state.close();
	});
});
