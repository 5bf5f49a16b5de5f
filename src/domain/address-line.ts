/**
 * One-line addresses ("5219 W EL CAMINITO Drive, Glendale, AZ 85302"): the street line split from
 * its city, state and ZIP, then read by the street parser of address.ts. Cities are known by
 * Maricopa's place names (address-rules.ts), or by where they stand after a unit or a street suffix.
 */
import { bareUnit, normalizeZip, partsFromTokens, type StreetParts, tokenize } from "./address.ts";
import { CITY_FORMS } from "./address-rules.ts";
import { DIRECTIONALS, LEADING_DESIGNATORS, STATES, SUFFIXES, UNIT_DESIGNATORS } from "./usps-pub28.ts";

export interface ParsedAddress extends StreetParts {
	city: string | null;
	state: string | null;
	zip: string | null;
}

function matchCityAtEnd(tokens: string[]): { start: number; city: string } | null {
	for (const form of CITY_FORMS) {
		if (form.tokens.length >= tokens.length) continue;
		const start = tokens.length - form.tokens.length;
		if (form.tokens.every((w, i) => tokens[start + i] === w)) return { start, city: form.city };
	}
	return null;
}

/** A city name written by itself: "Phoenix" -> PHOENIX, "Ft McDowell" -> FORT MCDOWELL. */
export function normalizeCity(city: string | null | undefined): string | null {
	if (!city) return null;
	const tokens = tokenize(city).filter((t) => t !== ",");
	if (tokens.length === 0) return null;
	const joined = tokens.join(" ");
	const form = CITY_FORMS.find((f) => f.tokens.join(" ") === joined);
	return form ? form.city : joined;
}

/**
 * One-line address into street parts, city, state and ZIP:
 * "4027 N 55TH AVE PHOENIX 85031", "5219 W EL CAMINITO Drive, Glendale, AZ 85302",
 * "7009 E CAMELBACK RD UNIT 12 SCOTTSDALE AZ 85251-1234", "1521-B W Mc Dowell Rd Phoenix AZ85018".
 */
export function parseAddress(line: string): ParsedAddress | null {
	const tokens = tokenize(line);
	const split = splitLastLine(tokens);
	const parts = partsFromTokens(split.street.filter((t) => t !== ","));
	if (!parts) return null;
	const zip = split.zip;
	return { ...parts, city: split.city, state: split.state ?? (zip && /^8[56]/.test(zip) ? "AZ" : null), zip };
}

/** The street tokens of a one-line address and its city, state and ZIP. */
function splitLastLine(input: string[]): {
	street: string[];
	city: string | null;
	state: string | null;
	zip: string | null;
} {
	const tokens = [...input];
	const trimCommas = () => {
		while (tokens[tokens.length - 1] === ",") tokens.pop();
	};
	trimCommas();
	if (tokens[tokens.length - 1] === "USA" || tokens[tokens.length - 1] === "US") tokens.pop();
	trimCommas();
	let zip: string | null = null;
	let state: string | null = null;
	// "85018 1234": a ZIP+4 written with a space.
	if (/^\d{4}$/.test(tokens[tokens.length - 1] ?? "") && /^\d{5}$/.test(tokens[tokens.length - 2] ?? ""))
		tokens.pop();
	const zipToken = tokens[tokens.length - 1];
	if (zipToken && tokens.length > 1 && /^\d{5}(-?\d{4})?$/.test(zipToken)) {
		zip = normalizeZip(zipToken);
		tokens.pop();
	}
	trimCommas();
	const stateToken = tokens[tokens.length - 1];
	if (stateToken && STATES[stateToken] && tokens.length > 2) {
		state = STATES[stateToken]!;
		tokens.pop();
	}
	trimCommas();

	const lastComma = tokens.lastIndexOf(",");
	const afterComma = lastComma >= 0 ? tokens.slice(lastComma + 1) : [];
	if (
		lastComma >= 0 &&
		afterComma.length > 0 &&
		!UNIT_DESIGNATORS[afterComma[0]!] &&
		!(afterComma.length === 1 && bareUnit(afterComma[0]))
	) {
		// "street[, Unit 12], City": the segment after the last comma is the city.
		return { street: tokens.slice(0, lastComma), city: normalizeCity(afterComma.join(" ")), state, zip };
	}
	const plain = tokens.filter((t) => t !== ",");
	const known = matchCityAtEnd(plain);
	if (known && known.start > 0) return { street: plain.slice(0, known.start), city: known.city, state, zip };
	if (state || zip) {
		// An unknown city after a unit number: "... UNIT 12 SOMEWHERE".
		const unitAt = plain.findIndex((t, i) => i > 0 && LEADING_DESIGNATORS.has(t));
		if (unitAt >= 0 && plain.length > unitAt + 2) {
			let valueEnd = unitAt + 1;
			while (valueEnd < plain.length && UNIT_DESIGNATORS[plain[valueEnd]!]) valueEnd++;
			valueEnd++;
			if (plain.length > valueEnd && plain.slice(valueEnd).every((t) => /^[A-Z]+$/.test(t)))
				return { street: plain.slice(0, valueEnd), city: plain.slice(valueEnd).join(" "), state, zip };
		}
		// An unknown city after the street suffix: "... RD SOMEWHERE AZ 85000".
		for (let i = plain.length - 2; i >= 2; i--) {
			if (!SUFFIXES[plain[i]!]) continue;
			// A street name before the suffix, not only a number and a directional.
			if (!plain.slice(1, i).some((t) => !DIRECTIONALS[t])) break;
			const rest = plain.slice(i + 1);
			if (
				rest.every((t) => /^[A-Z]{3,}$/.test(t) && !DIRECTIONALS[t] && !UNIT_DESIGNATORS[t] && !SUFFIXES[t])
			)
				return { street: plain.slice(0, i + 1), city: rest.join(" "), state, zip };
			break;
		}
	}
	return { street: plain, city: null, state, zip };
}

/** The parts of a one-line address as a record address (street line, city, state, ZIP). */
export function splitAddressLine(
	line: string,
): { street: string; city: string | null; state: string | null; zip: string | null } | null {
	const tokens = tokenize(line);
	const split = splitLastLine(tokens);
	if (split.street.filter((t) => t !== ",").length === 0) return null;
	return {
		street: split.street.filter((t) => t !== ",").join(" "),
		city: split.city,
		state: split.state,
		zip: split.zip,
	};
}
