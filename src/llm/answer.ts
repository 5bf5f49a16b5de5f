/**
 * Reading a model's answer: the content must be the enrichment JSON asked for, checked with
 * fastest-validator. A fenced answer (```json ... ```) is unwrapped; anything else — prose,
 * truncated JSON, an answer cut by max_tokens, a field of the wrong type — is an `AnswerError`
 * naming what is wrong, so a half-valid enrichment is never stored. Pure.
 */
import { enrichmentContentProps } from "../domain/enrichment-input.ts";
import type { EnrichmentContent } from "../domain/property.ts";
import { Validator } from "../utils/validator.ts";

export class AnswerError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "AnswerError";
	}
}

type Check = (value: unknown) => true | { message?: string }[];
const checkContent = new Validator().compile({
	$$root: true,
	type: "object",
	strict: "remove",
	props: enrichmentContentProps,
} as never) as Check;

const FENCED = /^\s*```[a-zA-Z]*\s*\n?([\s\S]*?)\n?\s*```\s*$/;

function preview(text: string): string {
	const flat = text.replace(/\s+/g, " ").trim();
	return flat.length > 60 ? `'${flat.slice(0, 60)}…'` : `'${flat}'`;
}

/**
 * The enrichment in a completion's content, or an AnswerError. `finishReason` "length" means the
 * model was cut off at max_tokens: whatever JSON it wrote is incomplete.
 */
export function parseAnswer(content: string, finishReason?: string | null): EnrichmentContent {
	if (finishReason === "length") {
		throw new AnswerError(
			`answer cut off at max_tokens (finish_reason 'length', ${content.length} characters); raise LLM_MAX_TOKENS`,
		);
	}
	const text = FENCED.exec(content)?.[1] ?? content;
	let value: unknown;
	try {
		value = JSON.parse(text);
	} catch (err) {
		throw new AnswerError(
			`answer is not JSON (${(err as Error).message}; ${text.length} characters: ${preview(text)})`,
		);
	}
	if (value === null || typeof value !== "object" || Array.isArray(value)) {
		throw new AnswerError(
			`answer is JSON but not an object (${Array.isArray(value) ? "array" : typeof value})`,
		);
	}
	const verdict = checkContent(value);
	if (verdict !== true) {
		throw new AnswerError(
			`answer does not have the enrichment shape: ${verdict.map((p) => p.message).join("; ")}`,
		);
	}
	return value as EnrichmentContent;
}
