/**
 * Address parsing and normalization to USPS Publication 28, so the Assessor's
 * "5219 W EL CAMINITO DR UNIT 12" and the MLS's "5219 West El Caminito Drive, #12" produce the same
 * address key, and two different homes never do.
 *
 * What it reads (tables in usps-pub28.ts, Maricopa's own rules as data in
 * config/maricopa-address.json):
 * - case, punctuation, apostrophes ("O'Neil"), accented letters folded ("Peñasco" -> PENASCO);
 * - house numbers: plain, with a fraction ("1014 1/2", "618½": its own address, never the main
 *   house), letter-suffixed ("1521-B", "1521B": the letter is the unit when no unit is written),
 *   ranges ("4501-4503": keyed by the low number);
 * - directionals before and after the name (N/North/N./"North West"), USPS suffixes (Drive/DR/Dr.,
 *   Cr -> CIR), numbered streets (55th, 55, 42d, Twelfth, Fifty-Fifth), name variants (Mc Dowell,
 *   St John -> SAINT JOHN, Mtn -> MOUNTAIN), highways and routes (US Hwy 60, SR-85, State Route 85,
 *   I-17);
 * - secondary units (Unit/Apt/Ste/#/No., a unit written without a designator after the suffix,
 *   A-3 = A3, 12-B = 12B; a building and a unit kept apart: Bldg 1 Unit 23 -> #1-23, which is neither
 *   Bldg 12 Unit 3 -> #12-3 nor Unit 123; Bldg A Unit 3 = Unit 3 Bldg A = #A3);
 * - one-line addresses with city, state and ZIP, commas or none: ZIP and ZIP+4 in every common
 *   spelling ("85018-1234", "850181234", "85018 1234", "AZ85018", "85018."), Maricopa places
 *   (address-line.ts; Maricopa's rules are read in address-rules.ts).
 */
import { HIGHWAY_PREFIXES, HIGHWAYS, NAME_JOINS, NAME_WORDS } from "./address-rules.ts";
import {
	DIRECTIONAL_PAIRS,
	DIRECTIONALS,
	LEADING_DESIGNATORS,
	ORDINAL_WORDS,
	STATES,
	SUFFIXES,
	TENS_WORDS,
	UNIT_DESIGNATORS,
	UNIT_ORDINAL_WORDS,
} from "./usps-pub28.ts";

export interface StreetParts {
	/** House number ("4027", "1014 1/2"); null when the line has none. */
	number: string | null;
	predir: string | null;
	/** Street name, upper case, numbered streets as ordinals ("55TH", "EL CAMINITO", "US HIGHWAY 60"). */
	name: string;
	/** USPS suffix abbreviation ("AVE", "DR") or null. */
	suffix: string | null;
	postdir: string | null;
	/** Unit without its designator ("12", "B", "1-23"); null for a whole building or lot. */
	unit: string | null;
}

export function ordinal(n: number): string {
	const mod100 = n % 100;
	if (mod100 >= 11 && mod100 <= 13) return `${n}TH`;
	return `${n}${["TH", "ST", "ND", "RD"][n % 10] ?? "TH"}`;
}

/**
 * Upper case, accents folded, apostrophes dropped, fractions spelled "1/2", "#12" split into "# 12",
 * commas kept as their own token, other punctuation to spaces; hyphens kept inside a token.
 */
export function tokenize(text: string): string[] {
	return text
		.normalize("NFKD")
		.replace(/\u2044/g, "/")
		.replace(/[\u0300-\u036f]/g, "")
		.toUpperCase()
		.replace(/(\d)\s*1\/2\b/g, "$1 1/2")
		.replace(/['\u2018\u2019`]/g, "")
		.replace(/#/g, " # ")
		.replace(/,/g, " , ")
		.replace(/[^A-Z0-9#,/\- ]+/g, " ")
		.replace(/(^|\s)[-/]+|[-/]+(\s|$)/g, " ")
		.split(/\s+/)
		.flatMap(splitToken)
		.filter((t) => t !== "");
}

/** "AZ85018" -> AZ 85018; "SR-85" -> SR 85; "I-17" -> I 17; "NO312" stays. */
function splitToken(t: string): string[] {
	const stateZip = /^([A-Z]{2})(\d{5}(?:-?\d{4})?)$/.exec(t);
	if (stateZip && STATES[stateZip[1]!]) return [stateZip[1]!, stateZip[2]!];
	const route = /^([A-Z]{1,2})-?(\d{1,3})$/.exec(t);
	if (route && HIGHWAY_PREFIXES.has(route[1]!) && route[1] !== "LP") return [route[1]!, route[2]!];
	const hwy = /^(HWY|SR|US|I)(\d{1,3})$/.exec(t);
	if (hwy) return [hwy[1]!, hwy[2]!];
	return [t];
}

/** Five-digit ZIP from "85031", "85031-1234", "850311234"; null otherwise. */
export function normalizeZip(zip: string | null | undefined): string | null {
	if (!zip) return null;
	const m = /^\s*(?:AZ\s*)?(\d{5})(?:\s*-?\s*\d{4})?\s*\.?\s*$/i.exec(zip);
	return m ? m[1]! : null;
}

const isDigits = (t: string | undefined) => !!t && /^\d+$/.test(t);

/** A unit value: A-3 = A3, 12-B = 12B, leading zeros dropped; digits-digits keeps its hyphen. */
function unitValue(raw: string): string {
	const parts = raw.split("-").filter((p) => p !== "");
	let out = parts[0] ?? "";
	for (const p of parts.slice(1)) out += isDigits(out.slice(-1)) && isDigits(p[0]) ? `-${p}` : p;
	return out.replace(/(^|-)0+(?=\d)/g, "$1");
}

/** Building and unit into one unit value: 1 + 23 -> "1-23", A + 3 -> "A3", 3 + A -> "3A". */
function combineUnit(building: string | null, unit: string | null): string | null {
	if (!building) return unit;
	if (!unit) return building;
	if (/\d$/.test(building) && /^\d/.test(unit)) return `${building}-${unit}`;
	return `${building}${unit}`;
}

/** The secondary part (designators and their values) into one unit value. */
function readSecondary(tokens: string[]): string | null {
	let building: string | null = null;
	const units: string[] = [];
	let pendingBuilding = false;
	for (const t of tokens) {
		const d = UNIT_DESIGNATORS[t];
		if (d) {
			pendingBuilding = d === "BLDG";
			continue;
		}
		const value = unitValue(t);
		if (value === "") continue;
		if (pendingBuilding && building === null) building = value;
		else units.push(value);
		pendingBuilding = false;
	}
	const unit = units.length > 0 ? unitValue(units.join("-")) : null;
	return combineUnit(building, unit);
}

/** A compound ordinal at `i` ("FIFTY FIFTH", "FIFTY-FIFTH", "TWELFTH"): [number, tokens used]. */
function spelledOrdinal(tokens: string[], i: number): [number, number] | null {
	const t = tokens[i]!;
	const hy = /^([A-Z]+)-([A-Z]+)$/.exec(t);
	if (hy && TENS_WORDS[hy[1]!] && UNIT_ORDINAL_WORDS[hy[2]!])
		return [TENS_WORDS[hy[1]!]! + UNIT_ORDINAL_WORDS[hy[2]!]!, 1];
	const next = tokens[i + 1];
	if (TENS_WORDS[t] && next && UNIT_ORDINAL_WORDS[next])
		return [TENS_WORDS[t]! + UNIT_ORDINAL_WORDS[next]!, 2];
	if (ORDINAL_WORDS[t] !== undefined) return [ORDINAL_WORDS[t]!, 1];
	return null;
}

/** A numbered road at `i` ("US HWY 60", "SR 85", "STATE ROUTE 85"): [canonical name, tokens used]. */
function highwayAt(tokens: string[], i: number): [string, number] | null {
	for (const { pattern, canonical } of HIGHWAYS) {
		if (i + pattern.length > tokens.length) continue;
		let num: string | null = null;
		const ok = pattern.every((p, j) => {
			const t = tokens[i + j]!;
			if (p === "#") {
				if (!/^\d{1,3}[A-Z]?$/.test(t)) return false;
				num = t.replace(/^0+(?=\d)/, "");
				return true;
			}
			return p === t;
		});
		if (ok && num) return [canonical.replace("#", num), pattern.length];
	}
	return null;
}

/** Street name tokens in canonical form: ordinals, name words, joins. */
function normalizeName(tokens: string[], hasSuffix: boolean): string[] {
	const out: string[] = [];
	for (let i = 0; i < tokens.length; i++) {
		const t = tokens[i]!;
		const spelled = spelledOrdinal(tokens, i);
		if (spelled) {
			out.push(ordinal(spelled[0]));
			i += spelled[1] - 1;
			continue;
		}
		const ord = /^(\d+)(ST|ND|RD|TH|D)$/.exec(t);
		if (ord) {
			out.push(ordinal(Number(ord[1])));
			continue;
		}
		if (NAME_JOINS.has(t) && i + 1 < tokens.length && /^[A-Z]{2,}$/.test(tokens[i + 1]!)) {
			out.push(t + tokens[i + 1]!);
			i++;
			continue;
		}
		// A name word written short ("ST JOHN", "MTN VIEW"), but never the whole name ("ST" alone).
		const word = NAME_WORDS[t];
		if (word && tokens.length > 1) {
			out.push(word);
			continue;
		}
		out.push(t.replace(/-/g, " "));
	}
	// A numbered street written without its ordinal ("55 AVE") is the 55th.
	if (out.length === 1 && isDigits(out[0]) && hasSuffix) return [ordinal(Number(out[0]))];
	return out
		.join(" ")
		.split(" ")
		.filter((t) => t !== "");
}

/** A token that may be a unit written without a designator ("112", "A", "12B", "A3", "1-23"). */
export const bareUnit = (t: string | undefined) =>
	!!t && /^(\d+[A-Z]?|[A-Z]\d*|\d+-\d+|[A-Z]-\d+|\d+-[A-Z])$/.test(t);

/** Street line (no city/state/ZIP) into its parts. Null when nothing street-like remains. */
export function parseStreet(street: string): StreetParts | null {
	return partsFromTokens(tokenize(street).filter((t) => t !== ","));
}

/** Street parts from a line's tokens (address-line.ts passes a one-line address's street tokens). */
export function partsFromTokens(input: string[]): StreetParts | null {
	const tokens = [...input];
	let number: string | null = null;
	let numberLetter: string | null = null;
	const head = tokens[0];
	if (head && tokens.length > 1) {
		const plain = /^(\d+)$/.exec(head) ?? /^(\d+)-(\d+)$/.exec(head);
		const lettered = /^(\d+)-?([A-Z])$/.exec(head);
		const fraction = /^(\d+)-(\d\/\d)$/.exec(head);
		if (plain) number = plain[1]!;
		else if (lettered) {
			number = lettered[1]!;
			numberLetter = lettered[2]!;
		} else if (fraction) number = `${fraction[1]} ${fraction[2]}`;
		if (number !== null) {
			tokens.shift();
			number = number.replace(/^0+(?=\d)/, "");
			if (/^\d\/\d$/.test(tokens[0] ?? "") && tokens.length > 1) number += ` ${tokens.shift()}`;
		}
	}

	let unit: string | null = null;
	const unitAt = tokens.findIndex((t, i) => i > 0 && LEADING_DESIGNATORS.has(t));
	if (unitAt >= 0) {
		unit = readSecondary(tokens.slice(unitAt));
		tokens.length = unitAt;
	}

	const body = tokens;
	// Two-word directionals ("North West") read as one.
	if (body.length >= 3) {
		const pair = DIRECTIONAL_PAIRS[`${DIRECTIONALS[body[0]!] ?? ""} ${DIRECTIONALS[body[1]!] ?? ""}`];
		if (pair) body.splice(0, 2, pair);
	}
	let predir: string | null = null;
	const first = body[0];
	if (
		first &&
		DIRECTIONALS[first] &&
		(body.length >= 3 || (body.length === 2 && !SUFFIXES[body[1]!] && !bareUnitOnly(body[1]!)))
	) {
		predir = DIRECTIONALS[first]!;
		body.shift();
	}

	// A numbered road: its number is part of its name, not a unit.
	const hwyAt = body.findIndex((_, i) => highwayAt(body, i) !== null);
	if (hwyAt >= 0) {
		const [name, used] = highwayAt(body, hwyAt)!;
		const before = body.slice(0, hwyAt);
		const after = body.slice(hwyAt + used);
		let postdir: string | null = null;
		if (after[0] && DIRECTIONALS[after[0]]) postdir = DIRECTIONALS[after.shift()!]!;
		if (unit === null && after.length === 1 && bareUnit(after[0])) unit = unitValue(after.shift()!);
		const nameTokens = [...normalizeName(before, false), name, ...after];
		if (unit === null && numberLetter) unit = numberLetter;
		return { number, predir, name: nameTokens.join(" "), suffix: null, postdir, unit };
	}

	// A unit written without a designator, after the suffix (or postdir): "... AVE 112".
	const lastToken = body[body.length - 1]!;
	if (unit === null && body.length >= 3 && bareUnit(lastToken) && !DIRECTIONALS[lastToken]) {
		const prev = body[body.length - 2]!;
		const prev2 = body[body.length - 3];
		if (SUFFIXES[prev] || (DIRECTIONALS[prev] && prev2 && SUFFIXES[prev2])) unit = unitValue(body.pop()!);
	}

	let postdir: string | null = null;
	const last = body[body.length - 1];
	if (last && DIRECTIONALS[last] && body.length >= 3 && SUFFIXES[body[body.length - 2]!]) {
		postdir = DIRECTIONALS[last]!;
		body.pop();
	}
	let suffix: string | null = null;
	const tail = body[body.length - 1];
	if (tail && body.length >= 2 && SUFFIXES[tail]) {
		suffix = SUFFIXES[tail]!;
		body.pop();
	}
	if (body.length === 0) return null;
	if (unit === null && numberLetter) unit = numberLetter;
	const nameTokens = normalizeName(body, suffix !== null);
	return { number, predir, name: nameTokens.join(" "), suffix, postdir, unit };
}

/** A lone token that reads as a unit and nothing else (so "N 112" keeps N as the name). */
function bareUnitOnly(t: string): boolean {
	return /^\d+[A-Z]?$/.test(t) && !/^\d+(ST|ND|RD|TH|D)$/.test(t);
}

/** Canonical street line: "5219 W EL CAMINITO DR #12". */
export function formatStreet(p: StreetParts): string {
	const words = [p.number, p.predir, p.name, p.suffix, p.postdir].filter((w): w is string => !!w);
	const line = words.join(" ");
	return p.unit ? `${line} #${p.unit}` : line;
}

export function normalizeStreet(street: string): string | null {
	const parts = parseStreet(street);
	return parts ? formatStreet(parts) : null;
}

/**
 * Address key for joining records of one house across sources: canonical street + ZIP. Null when
 * the street has no house number or there is no ZIP (too weak to join on).
 */
export function addressKey(street: string, zip: string | null | undefined): string | null {
	const parts = parseStreet(street);
	const z = normalizeZip(zip);
	if (!parts?.number || !z) return null;
	return `${formatStreet(parts)}|${z}`;
}

/** Why `addressKey` gives no key for this street and ZIP, or null when it gives one. */
export function addressKeyProblem(street: string, zip: string | null | undefined): string | null {
	const parts = parseStreet(street);
	if (!parts) return "no street in the address";
	if (!parts.number) return "no house number in the address";
	if (!normalizeZip(zip)) return zip ? `'${zip}' is not a ZIP code` : "no ZIP code in the address";
	return null;
}
