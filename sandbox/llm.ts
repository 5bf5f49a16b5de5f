/**
 * OpenAI-compatible chat completions simulator (contract: ../shared/contracts/llm.md).
 *
 * `POST /v1/chat/completions` answers with a deterministic JSON enrichment derived from the prompt:
 * the same messages and model always give the same content, so caching and budgets can be tested.
 * Facts (price, beds, baths, sqft, year, ZIP, pool, address) are read from a JSON object in the
 * prompt when there is one, else from plain text. `usage` counts ~4 characters a token.
 *
 * Faults: the shared knobs give 429 (OpenAI-style JSON error + Retry-After), 500/503 and latency;
 * a "malformed" decision answers 200 with content that is not the JSON asked for (prose, a
 * truncated object, or fenced JSON). `max_tokens` truncates the content (finish_reason "length").
 * With an `apiKey`, `Authorization: Bearer <key>` is required (401 otherwise).
 * `stream: true` is refused with 400: Saguaro asks for whole JSON answers.
 * Also `GET /v1/models`, and control route `GET /__sandbox/usage`.
 */

import { RequestCounters } from "./counters.ts";
import type { FaultKnobs } from "./faults.ts";
import { FaultInjector, hashString, Rng } from "./faults.ts";
import type { SimContext, SimServer } from "./http.ts";
import { HttpError, startSimServer } from "./http.ts";

export interface LlmOptions {
	/** Required bearer key; null = no auth (like a local Ollama). */
	apiKey?: string | null;
	/** Model id reported by /v1/models; requests may name any model. */
	model?: string;
	faults?: Partial<FaultKnobs>;
	seed?: number;
	host?: string;
	port?: number;
}

export interface LlmUsage {
	requests: number;
	promptTokens: number;
	completionTokens: number;
}

export interface LlmHandle extends SimServer {
	/** Changeable at run time (null disables the check). */
	apiKey: string | null;
	readonly model: string;
	/** Totals over successful completions. */
	usage: LlmUsage;
}

export interface Enrichment {
	description: string;
	key_features: string[];
	investment_analysis: {
		rental_estimate: number;
		/** Percent, e.g. 5.4. */
		cap_rate: number;
		market_trend: "rising" | "stable" | "cooling";
		recommendation: "buy" | "hold" | "pass";
	};
	quality_score: number;
}

interface Facts {
	price?: number;
	beds?: number;
	baths?: number;
	sqft?: number;
	yearBuilt?: number;
	zip?: string;
	pool?: boolean;
	address?: string;
	city?: string;
}

/** ~4 characters a token, the usual rule of thumb; enough for budgets in tests. */
export function countTokens(text: string): number {
	return Math.ceil(text.length / 4);
}

function toNumber(v: unknown): number | undefined {
	if (typeof v === "number" && Number.isFinite(v)) return v;
	if (typeof v === "string") {
		const n = Number(v.replace(/[$,\s]/g, ""));
		return v.trim() !== "" && Number.isFinite(n) ? n : undefined;
	}
	return undefined;
}

/** The first balanced {...} in the text that parses as a JSON object. */
function findJsonObject(text: string): Record<string, unknown> | undefined {
	for (let start = text.indexOf("{"); start >= 0; start = text.indexOf("{", start + 1)) {
		let depth = 0;
		let inString = false;
		for (let i = start; i < text.length; i++) {
			const ch = text[i];
			if (inString) {
				if (ch === "\\") i++;
				else if (ch === '"') inString = false;
			} else if (ch === '"') inString = true;
			else if (ch === "{") depth++;
			else if (ch === "}" && --depth === 0) {
				try {
					const v: unknown = JSON.parse(text.slice(start, i + 1));
					if (v && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
				} catch {
					// not JSON after all: try the next brace
				}
				break;
			}
		}
	}
	return undefined;
}

/** Flattens nested objects into lower-cased keys without separators: listing.listPrice -> listprice. */
function flatten(obj: Record<string, unknown>, out: Map<string, unknown> = new Map()): Map<string, unknown> {
	for (const [k, v] of Object.entries(obj)) {
		const key = k.toLowerCase().replace(/[^a-z0-9]/g, "");
		if (v && typeof v === "object" && !Array.isArray(v)) flatten(v as Record<string, unknown>, out);
		else if (!out.has(key)) out.set(key, v);
	}
	return out;
}

export function extractFacts(text: string): Facts {
	const facts: Facts = {};
	const obj = findJsonObject(text);
	if (obj) {
		const m = flatten(obj);
		const first = (...keys: string[]) => keys.map((k) => m.get(k)).find((v) => v !== undefined && v !== null);
		facts.price = toNumber(first("price", "listprice", "saleprice", "fullcashvalue", "fcv"));
		facts.beds = toNumber(first("beds", "bedrooms", "bedroomcount"));
		facts.baths = toNumber(first("baths", "bathrooms", "fullbaths", "bathstotal"));
		facts.sqft = toNumber(first("sqft", "livablespace", "livingspace", "squarefeet", "approxsqft"));
		facts.yearBuilt = toNumber(first("yearbuilt", "constructionyear", "constyear"));
		const zip = first("zip", "zipcode", "situszip", "postalcode");
		if (zip !== undefined) facts.zip = String(zip);
		const pool = first("pool", "haspool");
		if (pool !== undefined) facts.pool = pool === true || /^(true|yes|private)$/i.test(String(pool));
		const address = first("address", "situsaddress", "propertyaddress", "streetaddress", "fulladdress");
		if (typeof address === "string") facts.address = address;
		const city = first("city", "situscity");
		if (typeof city === "string") facts.city = city;
	}
	const grab = (re: RegExp) => {
		const m = re.exec(text);
		return m ? toNumber(m[1]) : undefined;
	};
	facts.price ??= grab(/\$\s?([\d,]{5,})/);
	facts.beds ??= grab(/(\d+)\s*(?:bed(?:room)?s?|bd|br)\b/i);
	facts.baths ??= grab(/(\d+(?:\.\d)?)\s*(?:bath(?:room)?s?|ba)\b/i);
	facts.sqft ??= grab(/([\d,]{3,})\s*(?:sq\.?\s?ft|sqft|square\s+feet)/i);
	facts.yearBuilt ??= grab(/(?:built\s+(?:in\s+)?|year\s+built:?\s*)(\d{4})/i);
	facts.zip ??= /\b(8[56]\d{3})\b/.exec(text)?.[1];
	facts.pool ??= /\bpool\b/i.test(text) ? !/\bno pool\b/i.test(text) : undefined;
	for (const k of Object.keys(facts) as (keyof Facts)[]) if (facts[k] === undefined) delete facts[k];
	return facts;
}

/** The deterministic enrichment for a prompt: same text, same answer. */
export function enrichmentFor(promptText: string, model: string): Enrichment {
	const f = extractFacts(promptText);
	const rng = new Rng(hashString(`${model}\n${promptText}`));
	const sqft = f.sqft ?? rng.int(1000, 2200);
	const price = f.price ?? Math.round((sqft * rng.range(180, 260)) / 1000) * 1000;
	const rent = Math.round((price * rng.range(0.0058, 0.0075)) / 25) * 25;
	const capRate = Math.round(((rent * 12 * 0.6) / price) * 1000) / 10;
	const trends = ["rising", "stable", "cooling"] as const;
	const trend = trends[hashString(f.zip ?? promptText) % trends.length]!;
	const recommendation = capRate >= 5.2 ? "buy" : capRate >= 4.3 ? "hold" : "pass";
	const where = f.address ? ` at ${f.address}` : f.zip ? ` in ZIP ${f.zip}` : "";
	const features: string[] = [];
	if (f.beds !== undefined) features.push(`${f.beds} bedrooms`);
	if (f.baths !== undefined) features.push(`${f.baths} bathrooms`);
	features.push(`${sqft.toLocaleString("en-US")} sq ft of living space`);
	if (f.yearBuilt !== undefined) features.push(`built in ${f.yearBuilt}`);
	if (f.pool) features.push("private pool");
	features.push(rng.pick(["desert landscaping", "covered patio", "close to schools", "near freeway access"]));
	const known = Object.keys(f).length;
	return {
		description:
			`${f.beds !== undefined ? `${f.beds}-bedroom` : "Single-family"} property${where}` +
			`${f.city ? `, ${f.city}` : ""} with ${sqft.toLocaleString("en-US")} sq ft` +
			`${f.yearBuilt ? `, built in ${f.yearBuilt}` : ""}${f.pool ? ", with a private pool" : ""}. ` +
			`Estimated rent $${rent.toLocaleString("en-US")}/month against a price of $${price.toLocaleString("en-US")}; ` +
			`the local market is ${trend}.`,
		key_features: features,
		investment_analysis: { rental_estimate: rent, cap_rate: capRate, market_trend: trend, recommendation },
		quality_score: Math.round(Math.min(0.98, 0.3 + known * 0.08 + rng.range(0, 0.05)) * 100) / 100,
	};
}

/** Content that is not the JSON asked for, in the ways real models get it wrong. */
function malformedContent(json: string, rng: Rng): { content: string; finish: "stop" | "length" } {
	switch (rng.int(0, 2)) {
		case 0:
			return {
				content: `Sure! Here is my analysis of the property. It looks like a solid opportunity, ${json.length % 2 ? "though" : "and"} the numbers above are estimates.`,
				finish: "stop",
			};
		case 1:
			return { content: json.slice(0, Math.max(1, Math.floor(json.length / 2))), finish: "length" };
		default:
			return { content: `\`\`\`json\n${json}\n\`\`\``, finish: "stop" };
	}
}

function messageText(content: unknown): string {
	if (typeof content === "string") return content;
	if (Array.isArray(content)) {
		return content
			.map((part) =>
				part && typeof part === "object" && "text" in part ? String((part as { text: unknown }).text) : "",
			)
			.join("");
	}
	throw new HttpError(400, "each message needs a string content (or text parts)");
}

function openAiError(message: string, type: string, code: string | null) {
	return { error: { message, type, param: null, code } };
}

export async function startLlm(opts: LlmOptions = {}): Promise<LlmHandle> {
	const faults = new FaultInjector({ errorStatuses: [500, 503], ...opts.faults }, opts.seed ?? 3);
	const counters = new RequestCounters();
	const model = opts.model ?? "sandbox-llm";
	let handle: LlmHandle;
	let idSeq = 0;

	const sendError = (ctx: SimContext, status: number, message: string, type: string, code: string | null) =>
		ctx.json(status, openAiError(message, type, code), {}, { malformable: false });

	const complete = async (ctx: SimContext) => {
		const auth = ctx.req.headers.authorization;
		if (handle.apiKey !== null && auth !== `Bearer ${handle.apiKey}`) {
			sendError(ctx, 401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key");
			return;
		}
		let body: Record<string, unknown>;
		try {
			const parsed: unknown = JSON.parse(await ctx.body());
			if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not an object");
			body = parsed as Record<string, unknown>;
		} catch {
			sendError(ctx, 400, "We could not parse the JSON body of your request.", "invalid_request_error", null);
			return;
		}
		if (typeof body.model !== "string" || body.model === "") {
			sendError(ctx, 400, "you must provide a model parameter", "invalid_request_error", null);
			return;
		}
		if (!Array.isArray(body.messages) || body.messages.length === 0) {
			sendError(ctx, 400, "'messages' must be a non-empty array", "invalid_request_error", null);
			return;
		}
		if (body.stream === true) {
			sendError(ctx, 400, "stream=true is not supported by the sandbox LLM", "invalid_request_error", null);
			return;
		}
		let texts: string[];
		try {
			texts = (body.messages as unknown[]).map((m) => {
				if (!m || typeof m !== "object") throw new HttpError(400, "each message must be an object");
				return messageText((m as { content?: unknown }).content);
			});
		} catch (err) {
			sendError(ctx, 400, (err as Error).message, "invalid_request_error", null);
			return;
		}
		const promptText = texts.join("\n");
		const json = JSON.stringify(enrichmentFor(promptText, body.model));
		let content = json;
		let finish: "stop" | "length" = "stop";
		if (ctx.decision.kind === "malformed") ({ content, finish } = malformedContent(json, faults.rng));
		const maxTokens = toNumber(body.max_tokens ?? body.max_completion_tokens);
		if (maxTokens !== undefined && maxTokens > 0 && countTokens(content) > maxTokens) {
			content = content.slice(0, maxTokens * 4);
			finish = "length";
		}
		const promptTokens = countTokens(promptText) + 3 * texts.length;
		const completionTokens = countTokens(content);
		handle.usage.requests++;
		handle.usage.promptTokens += promptTokens;
		handle.usage.completionTokens += completionTokens;
		ctx.json(
			200,
			{
				id: `chatcmpl-sandbox${(++idSeq).toString(36)}${hashString(promptText).toString(36)}`,
				object: "chat.completion",
				created: Math.floor(Date.now() / 1000),
				model: body.model,
				choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: finish }],
				usage: {
					prompt_tokens: promptTokens,
					completion_tokens: completionTokens,
					total_tokens: promptTokens + completionTokens,
				},
			},
			{},
			{ malformable: false },
		);
	};

	const server = await startSimServer({
		name: "llm",
		host: opts.host,
		port: opts.port,
		faults,
		counters,
		malform: "manual",
		classify: (url) =>
			url.pathname === "/v1/chat/completions" ? "chat" : url.pathname === "/v1/models" ? "models" : "other",
		handle: async (ctx) => {
			const { pathname } = ctx.url;
			const method = ctx.req.method ?? "GET";
			if (pathname === "/v1/chat/completions" && method === "POST") return complete(ctx);
			if (pathname === "/v1/models" && method === "GET") {
				ctx.json(200, {
					object: "list",
					data: [{ id: model, object: "model", created: 0, owned_by: "sandbox" }],
				});
				return;
			}
			sendError(
				ctx,
				404,
				`Unknown request URL: ${method} ${pathname}`,
				"invalid_request_error",
				"unknown_url",
			);
		},
		renderFault: (ctx, d) => {
			if (d.kind === "rate-limited") {
				ctx.json(
					429,
					openAiError(
						"Rate limit reached for requests. Please try again later.",
						"requests",
						"rate_limit_exceeded",
					),
					{ "retry-after": String(d.retryAfterS) },
					{ malformable: false },
				);
				return;
			}
			const overloaded = d.status === 503;
			ctx.json(
				d.status,
				openAiError(
					overloaded
						? "The engine is currently overloaded, please try again later."
						: "The server had an error while processing your request.",
					"server_error",
					null,
				),
				{},
				{ malformable: false },
			);
		},
		control: {
			"GET usage": () => handle.usage,
		},
	});
	handle = {
		...server,
		apiKey: opts.apiKey ?? null,
		model,
		usage: { requests: 0, promptTokens: 0, completionTokens: 0 },
	};
	return handle;
}
