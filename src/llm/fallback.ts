/**
 * The offline enrichment: deterministic rules over the facts, used when the LLM cannot answer
 * (budget spent, key refused, endpoint down, answers never valid). Stored with source "rules" so
 * nobody mistakes it for a model's reading; the llm service replaces it once the LLM answers. Pure.
 *
 * - Rent from the value (the listing price, else the Assessor's full cash value): 0.65% of it a
 *   month at $300,000, the middle of Phoenix single-family gross yields, scaled by value^0.75
 *   because cheaper homes rent for a larger share of their value (so the cap rate tells them
 *   apart); without a value, $1.10 per square foot of living space.
 * - Cap rate: a year's rent less 40% operating costs (taxes, insurance, vacancy, repairs,
 *   management), over the value.
 * - Recommendation from the cap rate: buy from 6%, hold from 4.5%, else pass.
 * - Market trend: rules cannot see the market, so "stable".
 * - Quality score: the share of the facts that are known.
 */

import type { PropertyFacts } from "../domain/enrichment-input.ts";
import type { EnrichmentContent } from "../domain/property.ts";

export const REFERENCE_VALUE = 300_000;
export const RENT_SHARE_AT_REFERENCE = 0.0065;
export const RENT_VALUE_ELASTICITY = 0.75;
export const RENT_PER_SQFT = 1.1;
export const OPERATING_COST_SHARE = 0.4;
export const BUY_CAP_RATE = 6;
export const HOLD_CAP_RATE = 4.5;

const money = (n: number) => `$${Math.round(n).toLocaleString("en-US")}`;
const roundTo = (n: number, step: number) => Math.round(n / step) * step;

export function rulesEnrichment(f: PropertyFacts): EnrichmentContent {
	const value = f.price ?? f.assessedValue;
	const rent =
		value !== null && value > 0
			? roundTo(
					REFERENCE_VALUE * RENT_SHARE_AT_REFERENCE * (value / REFERENCE_VALUE) ** RENT_VALUE_ELASTICITY,
					25,
				)
			: f.livableSpace !== null && f.livableSpace > 0
				? roundTo(f.livableSpace * RENT_PER_SQFT, 25)
				: 0;
	const capRate =
		value !== null && value > 0 && rent > 0
			? Math.round(((rent * 12 * (1 - OPERATING_COST_SHARE)) / value) * 1000) / 10
			: 0;
	const recommendation = capRate >= BUY_CAP_RATE ? "buy" : capRate >= HOLD_CAP_RATE ? "hold" : "pass";

	const features: string[] = [];
	if (f.beds !== null) features.push(`${f.beds} bedrooms`);
	if (f.baths !== null) features.push(`${f.baths} bathrooms`);
	if (f.livableSpace !== null)
		features.push(`${f.livableSpace.toLocaleString("en-US")} sq ft of living space`);
	if (f.lotSize !== null) features.push(`${f.lotSize.toLocaleString("en-US")} sq ft lot`);
	if (f.yearBuilt !== null) features.push(`built in ${f.yearBuilt}`);
	if (f.pool) features.push("private pool");
	if (f.garages) features.push(`${f.garages}-car garage`);
	if (features.length === 0) features.push("few facts known");

	const kind = f.propertyType ? f.propertyType.toLowerCase() : "property";
	const where = [f.address, f.city, f.zip].filter(Boolean).join(", ");
	const size = f.livableSpace !== null ? ` with ${f.livableSpace.toLocaleString("en-US")} sq ft` : "";
	const built = f.yearBuilt !== null ? `, built in ${f.yearBuilt}` : "";
	const pool = f.pool ? ", with a private pool" : "";
	const priced =
		f.price !== null
			? ` Listed at ${money(f.price)}${f.status ? ` (${f.status})` : ""}.`
			: f.assessedValue !== null
				? ` Assessed full cash value ${money(f.assessedValue)}.`
				: "";
	const economics =
		rent > 0
			? ` Rule-based estimate: rent ${money(rent)}/month${capRate > 0 ? `, cap rate ${capRate}%` : ""}.`
			: " Too few facts for a rent estimate.";

	const known = Object.values(f).filter((x) => x !== null).length;
	return {
		description: `${f.beds !== null ? `${f.beds}-bedroom ` : ""}${kind}${where ? ` at ${where}` : ""}${size}${built}${pool}.${priced}${economics}`,
		key_features: features,
		investment_analysis: {
			rental_estimate: rent,
			cap_rate: capRate,
			market_trend: "stable",
			recommendation,
		},
		quality_score: Math.round((known / Object.keys(f).length) * 100) / 100,
	};
}
