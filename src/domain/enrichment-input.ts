/**
 * What an enrichment is made from: a property's facts, picked from its canonical fields, and the
 * hash that identifies an enrichment's input (facts + model + prompt version). Two properties with
 * the same hash get the same answer, so the hash keys the cache; a property whose stored
 * enrichment carries another hash is out of date (its facts, the model or the prompt changed).
 * Pure: no I/O. Domain, not llm: the store checks the hash when it takes an enrichment.
 */
import { createHash } from "node:crypto";
import { canonicalJson } from "./property.ts";
import type { PropertyFields } from "./property-fields.ts";

/** Bump when the prompt or the answer schema changes: every enrichment becomes out of date. */
export const PROMPT_VERSION = "1";

/** The model name recorded (and hashed) for rule-based enrichments. */
export const RULES_MODEL = "rules";

export interface PropertyFacts {
	address: string | null;
	city: string | null;
	zip: string | null;
	propertyType: string | null;
	livableSpace: number | null;
	lotSize: number | null;
	yearBuilt: number | null;
	pool: boolean | null;
	garages: number | null;
	beds: number | null;
	/** Full baths + half baths / 2. */
	baths: number | null;
	/** Listing price (MLS). */
	price: number | null;
	/** Listing status (MLS). */
	status: string | null;
	/** The Assessor's full cash value of the newest tax year. */
	assessedValue: number | null;
}

export function propertyFacts(p: PropertyFields): PropertyFacts {
	// `?? null` everywhere: a field a document lacks and a null field must hash alike.
	const full = p.fullBaths ?? null;
	const half = p.halfBaths ?? null;
	return {
		address: p.street ?? null,
		city: p.city ?? null,
		zip: p.zip ?? null,
		propertyType: p.propertyType ?? null,
		livableSpace: p.livableSpace ?? p.sqft ?? null,
		lotSize: p.lotSize ?? null,
		yearBuilt: p.constructionYear ?? null,
		pool: p.pool ?? null,
		garages: p.garages ?? null,
		beds: p.beds ?? null,
		baths: full === null && half === null ? null : (full ?? 0) + (half ?? 0) / 2,
		price: p.price ?? null,
		status: p.status ?? null,
		assessedValue: p.valuation?.fullCashValue ?? null,
	};
}

/** Identity of an enrichment's input; `model` is RULES_MODEL for the fallback. */
export function inputHash(facts: PropertyFacts, model: string): string {
	return createHash("sha256")
		.update(canonicalJson({ facts, model, promptVersion: PROMPT_VERSION }))
		.digest("hex")
		.slice(0, 32);
}

/** The hash a property's current facts give with `model` (what a stored enrichment must carry). */
export function propertyInputHash(p: PropertyFields, model: string): string {
	return inputHash(propertyFacts(p), model);
}

/**
 * fastest-validator rules of an enrichment's content, the contract's fields (shared/contracts/llm.md):
 * the LLM's answers and the store's `setEnrichment` params are held to the same rules.
 */
export const enrichmentContentProps = {
	description: { type: "string", min: 1, max: 5000 },
	key_features: { type: "array", min: 1, max: 30, items: { type: "string", min: 1, max: 300 } },
	investment_analysis: {
		type: "object",
		strict: "remove",
		props: {
			rental_estimate: { type: "number", min: 0, max: 10_000_000 },
			cap_rate: { type: "number", min: -100, max: 100 },
			market_trend: { type: "enum", values: ["rising", "stable", "cooling"] },
			recommendation: { type: "enum", values: ["buy", "hold", "pass"] },
		},
	},
	quality_score: { type: "number", min: 0, max: 1 },
} as const;
