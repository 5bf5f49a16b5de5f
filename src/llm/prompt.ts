/**
 * The chat messages of one enrichment: a system message fixing the role and the JSON shape of the
 * answer, and a user message with the property's facts as JSON (models read JSON facts reliably,
 * and the same facts always give the same prompt, so answers can be cached). Pure.
 */
import type { PropertyFacts } from "../domain/enrichment-input.ts";

export interface ChatMessage {
	role: "system" | "user" | "assistant";
	content: string;
}

export const SYSTEM_PROMPT = [
	"You are a real-estate investment analyst for the Phoenix, Arizona metro area (Maricopa County).",
	"Answer with one JSON object and nothing else: no prose, no markdown fences.",
	"Its shape:",
	'{"description": string (2 to 4 sentences for a listing reader),',
	' "key_features": string[] (3 to 8 short phrases),',
	' "investment_analysis": {"rental_estimate": number (monthly rent, USD), "cap_rate": number (percent, e.g. 5.4),',
	'   "market_trend": "rising" | "stable" | "cooling", "recommendation": "buy" | "hold" | "pass"},',
	' "quality_score": number from 0 to 1 (how complete and consistent the facts are)}.',
	"Use only the facts given; null means unknown, never invent it. Prices are in USD, areas in square feet.",
].join("\n");

export function buildMessages(facts: PropertyFacts): ChatMessage[] {
	return [
		{ role: "system", content: SYSTEM_PROMPT },
		{ role: "user", content: `Property facts:\n${JSON.stringify(facts)}` },
	];
}
