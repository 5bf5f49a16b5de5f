/**
 * Contract tests of the OpenAI-compatible LLM simulator (contracts/llm.md) over real HTTP on
 * loopback: deterministic JSON enrichments derived from the prompt, usage counts, bearer auth, and
 * the failure modes a client must survive (429 + Retry-After, 500/503, content that is not JSON).
 */
import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";
import { type Enrichment, extractFacts, type LlmHandle, startLlm } from "../../sandbox/llm.ts";

const KEY = "sk-test-key";
let llm: LlmHandle;

type Completion = {
	id: string;
	object: string;
	model: string;
	choices: { index: number; message: { role: string; content: string }; finish_reason: string }[];
	usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
};

const PROPERTY = {
	address: "4027 N 55TH AVE",
	city: "PHOENIX",
	zip: "85031",
	price: 289000,
	beds: 3,
	baths: 2,
	sqft: 1248,
	yearBuilt: 1959,
	pool: true,
};

function chat(content: string, extra: Record<string, unknown> = {}, key: string | null = KEY) {
	return fetch(`${llm.url}/v1/chat/completions`, {
		method: "POST",
		headers: {
			"content-type": "application/json",
			...(key === null ? {} : { authorization: `Bearer ${key}` }),
		},
		body: JSON.stringify({
			model: "test-model",
			messages: [
				{ role: "system", content: "You are a real-estate analyst. Answer in JSON." },
				{ role: "user", content },
			],
			response_format: { type: "json_object" },
			...extra,
		}),
	});
}

async function completion(content: string, extra: Record<string, unknown> = {}): Promise<Completion> {
	const res = await chat(content, extra);
	assert.equal(res.status, 200);
	return (await res.json()) as Completion;
}

describe("sandbox LLM (OpenAI-compatible chat completions)", () => {
	before(async () => {
		llm = await startLlm({ apiKey: KEY, seed: 8 });
	});
	after(async () => {
		await llm.stop();
	});
	afterEach(() => {
		llm.faults.reset();
	});

	test("answers the enrichment JSON, derived from the facts in the prompt", async () => {
		const c = await completion(`Enrich this property: ${JSON.stringify(PROPERTY)}`);
		assert.equal(c.object, "chat.completion");
		assert.equal(c.model, "test-model");
		assert.equal(c.choices[0]!.finish_reason, "stop");
		assert.equal(c.choices[0]!.message.role, "assistant");
		const e = JSON.parse(c.choices[0]!.message.content) as Enrichment;
		assert.equal(typeof e.description, "string");
		assert.match(e.description, /4027 N 55TH AVE/);
		assert.ok(Array.isArray(e.key_features) && e.key_features.length >= 3);
		assert.ok(e.key_features.includes("3 bedrooms") && e.key_features.includes("private pool"));
		const ia = e.investment_analysis;
		assert.ok(ia.rental_estimate > 289000 * 0.005 && ia.rental_estimate < 289000 * 0.008);
		assert.ok(ia.cap_rate > 0 && ia.cap_rate < 20);
		assert.ok(["rising", "stable", "cooling"].includes(ia.market_trend));
		assert.ok(["buy", "hold", "pass"].includes(ia.recommendation));
		assert.ok(e.quality_score >= 0 && e.quality_score <= 1);
	});

	test("deterministic: same prompt, same content; another prompt, another content", async () => {
		const prompt = `Enrich: ${JSON.stringify(PROPERTY)}`;
		const a = await completion(prompt);
		const b = await completion(prompt);
		assert.equal(a.choices[0]!.message.content, b.choices[0]!.message.content);
		const c = await completion(`Enrich: ${JSON.stringify({ ...PROPERTY, price: 410000 })}`);
		assert.notEqual(a.choices[0]!.message.content, c.choices[0]!.message.content);
	});

	test("plain-text prompts work too", () => {
		const f = extractFacts(
			"3 bed, 2.5 baths, 1,850 sq ft home built in 1998 in Surprise AZ 85379, listed at $425,000, pool",
		);
		assert.deepEqual(f, {
			price: 425000,
			beds: 3,
			baths: 2.5,
			sqft: 1850,
			yearBuilt: 1998,
			zip: "85379",
			pool: true,
		});
	});

	test("usage counts tokens from text length and adds up", async () => {
		const before = { ...llm.usage };
		const short = await completion("Enrich: {}");
		const long = await completion(`Enrich: ${JSON.stringify(PROPERTY)} ${"Some more context. ".repeat(50)}`);
		assert.ok(short.usage.prompt_tokens > 0 && short.usage.completion_tokens > 0);
		assert.ok(long.usage.prompt_tokens > short.usage.prompt_tokens + 200);
		assert.equal(long.usage.total_tokens, long.usage.prompt_tokens + long.usage.completion_tokens);
		assert.equal(long.usage.completion_tokens, Math.ceil(long.choices[0]!.message.content.length / 4));
		assert.equal(llm.usage.requests, before.requests + 2);
		assert.equal(
			llm.usage.promptTokens,
			before.promptTokens + short.usage.prompt_tokens + long.usage.prompt_tokens,
		);
		const remote = await (await fetch(`${llm.url}/__sandbox/usage`)).json();
		assert.deepEqual(remote, llm.usage);
	});

	test("max_tokens truncates the content (finish_reason length)", async () => {
		const c = await completion(`Enrich: ${JSON.stringify(PROPERTY)}`, { max_tokens: 10 });
		assert.equal(c.choices[0]!.finish_reason, "length");
		assert.equal(c.usage.completion_tokens, 10);
		assert.throws(() => JSON.parse(c.choices[0]!.message.content));
	});

	test("auth: a missing or wrong bearer key is 401", async () => {
		for (const key of [null, "sk-wrong"]) {
			const res = await chat("hi", {}, key);
			assert.equal(res.status, 401);
			assert.equal((await res.json()).error.code, "invalid_api_key");
		}
	});

	test("bad requests are 400 with an OpenAI-style error", async () => {
		const bad = async (body: string) => {
			const res = await fetch(`${llm.url}/v1/chat/completions`, {
				method: "POST",
				headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
				body,
			});
			assert.equal(res.status, 400, body);
			assert.equal(typeof (await res.json()).error.message, "string");
		};
		await bad("not json");
		await bad(JSON.stringify({ messages: [{ role: "user", content: "x" }] }));
		await bad(JSON.stringify({ model: "m", messages: [] }));
		await bad(JSON.stringify({ model: "m", messages: [{ role: "user", content: 5 }] }));
		await bad(JSON.stringify({ model: "m", stream: true, messages: [{ role: "user", content: "x" }] }));
	});

	test("429 with Retry-After and a JSON error body", async () => {
		llm.faults.set({ rateLimit: { limit: 1, windowMs: 60_000, retryAfterS: 7 } });
		assert.equal((await chat("one")).status, 200);
		const res = await chat("two");
		assert.equal(res.status, 429);
		assert.equal(res.headers.get("retry-after"), "7");
		assert.equal((await res.json()).error.code, "rate_limit_exceeded");
	});

	test("500 and 503 answers", async () => {
		for (const status of [500, 503]) {
			llm.faults.set({ errorRate: 1, errorStatuses: [status] });
			const res = await chat("x");
			assert.equal(res.status, status);
			assert.equal((await res.json()).error.type, "server_error");
		}
	});

	test("malformed: 200 answers whose content is not the JSON asked for", async () => {
		llm.faults.set({ malformedRate: 1 });
		for (let i = 0; i < 9; i++) {
			const c = await completion(`Enrich #${i}: ${JSON.stringify(PROPERTY)}`);
			assert.throws(() => JSON.parse(c.choices[0]!.message.content), SyntaxError);
		}
	});

	test("GET /v1/models, unknown routes 404, counters per key", async () => {
		const models = await (await fetch(`${llm.url}/v1/models`)).json();
		assert.equal(models.data[0].id, "sandbox-llm");
		const unknown = await fetch(`${llm.url}/v1/embeddings`, { method: "POST" });
		assert.equal(unknown.status, 404);
		await unknown.arrayBuffer();
		assert.ok(llm.counters.total({ client: KEY, kind: "chat" }) > 10);
	});
});
