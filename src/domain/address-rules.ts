/**
 * Maricopa County's own address rules, read from config/maricopa-address.json (address.ts and
 * address-line.ts use them): place names, street-name words, joins and highway spellings. The file is
 * checked as it is read, so a malformed entry fails at start, not as a wrong address key.
 */
import maricopa from "../../config/maricopa-address.json" with { type: "json" };

/** The rules file's highways as [canonical name, spellings] pairs (a malformed entry throws). */
function highwayEntries(entries: (string | string[])[][]): [string, string[]][] {
	return entries.map((entry): [string, string[]] => {
		const [canonical, forms] = entry;
		if (typeof canonical !== "string" || !Array.isArray(forms) || entry.length !== 2)
			throw new Error(
				`config/maricopa-address.json: highway ${JSON.stringify(entry)} is not [name, [spellings]]`,
			);
		return [canonical, forms];
	});
}

export const NAME_WORDS: Readonly<Record<string, string>> = maricopa.nameWords;
export const NAME_JOINS: ReadonlySet<string> = new Set(maricopa.nameJoins);

/** Place names (and aliases) as token lists, longest first so "SUN CITY WEST" wins over "SUN CITY". */
export const CITY_FORMS: { tokens: string[]; city: string }[] = [
	...maricopa.cities.map((c) => ({ tokens: c.split(" "), city: c })),
	...Object.entries(maricopa.cityAliases).map(([alias, city]) => ({ tokens: alias.split(" "), city })),
].sort((a, b) => b.tokens.length - a.tokens.length);

/** Highway spellings as token patterns ("#" = the route number), longest first. */
export const HIGHWAYS: { pattern: string[]; canonical: string }[] = highwayEntries(maricopa.highways)
	.flatMap(([canonical, forms]) => forms.map((f) => ({ pattern: f.split(" "), canonical })))
	.sort((a, b) => b.pattern.length - a.pattern.length);
export const HIGHWAY_PREFIXES: ReadonlySet<string> = new Set(HIGHWAYS.map((h) => h.pattern[0]!));
