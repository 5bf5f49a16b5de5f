/**
 * Listing-to-parcel matching with candidates and confidence (issue 12). Pure: the store reads the
 * candidates (properties on the listing's street line or its building's, by the indexed `street`
 * field) and this module decides.
 *
 * Rules, best first (confidence in brackets):
 * - exact address key (1.0), method "address";
 * - the address of a listing already joined to the parcel, "other-address" (0.95);
 * - same house number and street, ZIP a neighbour (same sectional centre, the first three digits:
 *   a postal ZIP beside the parcel's) "neighbouring-zip" (0.9), or one digit off elsewhere
 *   "zip-typo" (0.8), or no ZIP written "no-zip" (0.8);
 * - a unit written on the listing, the parcel being the whole building (the Assessor writes no unit)
 *   in the same ZIP, "unit-building" (0.8; 0.7 in a neighbouring ZIP).
 * Parcels tied on the best rule (a lot split, condos whose Assessor address has no unit) are told
 * apart by the listing's facts (living area, year built, lot size) when exactly one parcel agrees
 * (confidence 0.1 lower); else the listing is ambiguous. Below MATCH_THRESHOLD a listing is stored
 * unmatched with the reason, never guessed.
 */
import { addressKey, formatStreet, normalizeZip, parseStreet } from "./address.ts";

/** A listing joins a parcel at this confidence or above; below, it is stored unmatched. */
export const MATCH_THRESHOLD = 0.75;

export interface ListingAddress {
	/** Address key (street + ZIP), null when the address gives none. */
	key: string | null;
	/** Canonical street line, unit included ("100 N 1ST AVE #4"); null when unparseable. */
	street: string | null;
	/** The same line without its unit ("100 N 1ST AVE"); equals `street` when there is no unit. */
	base: string | null;
	zip: string | null;
	/** House number present (a line without one is never matched). */
	numbered: boolean;
}

export function listingAddress(
	street: string | null | undefined,
	zip: string | null | undefined,
): ListingAddress {
	const parts = street ? parseStreet(street) : null;
	if (!parts) return { key: null, street: null, base: null, zip: normalizeZip(zip), numbered: false };
	return {
		key: addressKey(street!, zip),
		street: formatStreet(parts),
		base: formatStreet({ ...parts, unit: null }),
		zip: normalizeZip(zip),
		numbered: !!parts.number,
	};
}

/** The street lines whose properties are candidates for this address (indexed `street` lookups). */
export function candidateStreets(a: ListingAddress): string[] {
	if (!a.street || !a.numbered) return [];
	return a.base && a.base !== a.street ? [a.street, a.base] : [a.street];
}

/** The street line without its unit. */
export function streetBase(street: string | null | undefined): string | null {
	const parts = street ? parseStreet(street) : null;
	return parts ? formatStreet({ ...parts, unit: null }) : null;
}

export interface FactsForMatch {
	sqft?: number | null;
	yearBuilt?: number | null;
	lotSqft?: number | null;
}

export interface ParcelCandidate {
	id: string;
	addressKey: string | null;
	street: string | null;
	zip: string | null;
	/** Address keys of the listings already joined to it (its other addresses). */
	otherKeys: string[];
	facts: FactsForMatch;
}

export type ZipRelation = "same" | "neighbour" | "typo" | null;

/** How two ZIPs relate: equal, neighbours (same sectional centre), one digit apart, or not at all. */
export function zipRelation(a: string | null, b: string | null): ZipRelation {
	if (!a || !b) return null;
	if (a === b) return "same";
	if (a.slice(0, 3) === b.slice(0, 3)) return "neighbour";
	let diff = 0;
	for (let i = 0; i < 5; i++) if (a[i] !== b[i]) diff++;
	return diff === 1 ? "typo" : null;
}

export type Resolution =
	| { kind: "matched"; id: string; method: "address" | "candidate"; confidence: number; reason: string }
	/** No parcel on the street at all: the listing waits under its address key for its parcel. */
	| { kind: "none" }
	| { kind: "unmatched"; confidence: number; reason: string };

function score(a: ListingAddress, c: ParcelCandidate): { confidence: number; reason: string } | null {
	if (a.key && c.addressKey === a.key) return { confidence: 1, reason: "exact" };
	if (a.key && c.otherKeys.includes(a.key)) return { confidence: 0.95, reason: "other-address" };
	const rel = zipRelation(a.zip, c.zip);
	if (c.street === a.street) {
		if (rel === "same") return { confidence: 1, reason: "exact" };
		if (rel === "neighbour") return { confidence: 0.9, reason: "neighbouring-zip" };
		if (rel === "typo") return { confidence: 0.8, reason: "zip-typo" };
		if (!a.zip) return { confidence: 0.8, reason: "no-zip" };
		return null;
	}
	if (a.base !== a.street && c.street === a.base) {
		if (rel === "same") return { confidence: 0.8, reason: "unit-building" };
		if (rel === "neighbour") return { confidence: 0.7, reason: "unit-building-neighbouring-zip" };
	}
	return null;
}

const near = (x: number | null | undefined, y: number | null | undefined, tolerance: number) =>
	x == null || y == null || x <= 0 || y <= 0 ? null : Math.abs(x - y) <= tolerance * Math.max(x, y);

/** Facts agreeing minus facts disagreeing (unknown facts count neither way). */
function factsAgreement(l: FactsForMatch, p: FactsForMatch): number {
	let n = 0;
	for (const ok of [
		near(l.sqft, p.sqft, 0.07),
		near(l.yearBuilt, p.yearBuilt, 0),
		near(l.lotSqft, p.lotSqft, 0.03),
	]) {
		if (ok === true) n++;
		else if (ok === false) n--;
	}
	return n;
}

/** The parcel a listing belongs to among `candidates` (parcels only), how sure, or why none. */
export function resolveListing(
	a: ListingAddress,
	facts: FactsForMatch,
	candidates: ParcelCandidate[],
): Resolution {
	if (!a.street || !a.numbered)
		return { kind: "unmatched", confidence: 0, reason: "address has no house number" };
	const seen = new Set<string>();
	const scored: { c: ParcelCandidate; confidence: number; reason: string }[] = [];
	for (const c of candidates) {
		if (seen.has(c.id)) continue;
		seen.add(c.id);
		const s = score(a, c);
		if (s) scored.push({ c, ...s });
	}
	if (scored.length === 0) return { kind: "none" };
	const top = Math.max(...scored.map((s) => s.confidence));
	const best = scored.filter((s) => s.confidence === top);
	let pick = best.length === 1 ? best[0]! : null;
	let confidence = top;
	let reason = best[0]!.reason;
	if (!pick) {
		// Parcels sharing the address: the listing's facts may tell which one it is.
		const agreement = best.map((s) => factsAgreement(facts, s.c.facts));
		const most = Math.max(...agreement);
		const winners = best.filter((_, i) => agreement[i] === most);
		if (most > 0 && winners.length === 1) {
			pick = winners[0]!;
			confidence = Math.round((top - 0.1) * 100) / 100;
			reason = `${reason}, shared by ${best.length} parcels, told apart by facts`;
		} else {
			return {
				kind: "unmatched",
				confidence: 0,
				reason: `ambiguous: ${best.length} parcels share the address (${reason}) and its facts do not tell them apart`,
			};
		}
	}
	if (confidence < MATCH_THRESHOLD)
		return {
			kind: "unmatched",
			confidence,
			reason: `best candidate below ${MATCH_THRESHOLD}: ${reason} (${confidence})`,
		};
	const method = reason === "exact" && confidence === 1 ? "address" : "candidate";
	return { kind: "matched", id: pick.c.id, method, confidence, reason };
}
