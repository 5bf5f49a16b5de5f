/**
 * USPS-style address normalization, so the Assessor's "5219 W EL CAMINITO DR UNIT 12" and the MLS's
 * "5219 West El Caminito Drive, #12" produce the same address key. Covers what Phoenix-area sources
 * write: case, punctuation, directionals (N/North/N.), street suffixes (Drive/DR/Dr.), numbered
 * streets (55th/55TH/55), unit designators (Unit/Apt/Ste/#), and one-line addresses with city, state
 * and ZIP ("4027 N 55TH AVE PHOENIX 85031", "..., Glendale, AZ 85302").
 */

export interface StreetParts {
	/** House number ("4027", "1234A"); null when the line has none. */
	number: string | null;
	predir: string | null;
	/** Street name, upper case, numbered streets as ordinals ("55TH", "EL CAMINITO"). */
	name: string;
	/** USPS suffix abbreviation ("AVE", "DR") or null. */
	suffix: string | null;
	postdir: string | null;
	/** Unit number without its designator ("12", "B"); null for a whole building or lot. */
	unit: string | null;
}

export interface ParsedAddress extends StreetParts {
	city: string | null;
	state: string | null;
	zip: string | null;
}

const DIRECTIONS: Record<string, string> = {
	N: "N",
	NORTH: "N",
	S: "S",
	SOUTH: "S",
	E: "E",
	EAST: "E",
	W: "W",
	WEST: "W",
	NE: "NE",
	NORTHEAST: "NE",
	NW: "NW",
	NORTHWEST: "NW",
	SE: "SE",
	SOUTHEAST: "SE",
	SW: "SW",
	SOUTHWEST: "SW",
};

/** USPS Publication 28 suffixes seen in Maricopa County (full words, abbreviations, common typos). */
const SUFFIXES: Record<string, string> = {};
for (const [abbr, ...variants] of [
	["AVE", "AVENUE", "AV", "AVEN", "AVENU", "AVN", "AVNUE"],
	["DR", "DRIVE", "DRV", "DRIV"],
	["ST", "STREET", "STR", "STRT"],
	["RD", "ROAD"],
	["LN", "LANE"],
	["WAY", "WY"],
	["PL", "PLACE"],
	["CT", "COURT", "CRT"],
	["BLVD", "BOULEVARD", "BOUL", "BOULV", "BLV"],
	["CIR", "CIRCLE", "CIRC", "CRCL"],
	["TRL", "TRAIL", "TR"],
	["PKWY", "PARKWAY", "PKY", "PARKWY"],
	["HWY", "HIGHWAY", "HIWAY"],
	["TER", "TERRACE", "TERR"],
	["LOOP", "LP"],
	["PASS"],
	["PATH"],
	["RUN"],
	["SQ", "SQUARE"],
	["XING", "CROSSING"],
	["CV", "COVE"],
	["PT", "POINT"],
	["RDG", "RIDGE"],
	["CYN", "CANYON"],
	["PLZ", "PLAZA"],
	["ALY", "ALLEY"],
	["EXPY", "EXPRESSWAY"],
	["FWY", "FREEWAY"],
	["GLN", "GLEN"],
	["HTS", "HEIGHTS"],
	["MDWS", "MEADOWS"],
	["BND", "BEND"],
	["TRCE", "TRACE"],
] as const) {
	SUFFIXES[abbr] = abbr;
	for (const v of variants) SUFFIXES[v] = abbr;
}

const UNIT_DESIGNATORS = new Set([
	"#",
	"UNIT",
	"APT",
	"APARTMENT",
	"STE",
	"SUITE",
	"LOT",
	"SPC",
	"SPACE",
	"TRLR",
	"RM",
	"ROOM",
	"BLDG",
	"BUILDING",
]);

const WORD_ORDINALS: Record<string, string> = {
	FIRST: "1ST",
	SECOND: "2ND",
	THIRD: "3RD",
	FOURTH: "4TH",
	FIFTH: "5TH",
	SIXTH: "6TH",
	SEVENTH: "7TH",
	EIGHTH: "8TH",
	NINTH: "9TH",
	TENTH: "10TH",
};

const STATES: Record<string, string> = { AZ: "AZ", ARIZONA: "AZ", ARIZ: "AZ" };

/** Maricopa County places, longest first so "SUN CITY WEST" wins over "SUN CITY". */
const KNOWN_CITIES = [
	"AVONDALE",
	"BUCKEYE",
	"CAREFREE",
	"CAVE CREEK",
	"CHANDLER",
	"EL MIRAGE",
	"FOUNTAIN HILLS",
	"GILA BEND",
	"GILBERT",
	"GLENDALE",
	"GOODYEAR",
	"GUADALUPE",
	"LAVEEN",
	"LITCHFIELD PARK",
	"MESA",
	"NEW RIVER",
	"PARADISE VALLEY",
	"PEORIA",
	"PHOENIX",
	"QUEEN CREEK",
	"RIO VERDE",
	"SCOTTSDALE",
	"SUN CITY",
	"SUN CITY WEST",
	"SUN LAKES",
	"SURPRISE",
	"TEMPE",
	"TOLLESON",
	"TONOPAH",
	"WADDELL",
	"WICKENBURG",
	"YOUNGTOWN",
]
	.map((c) => c.split(" "))
	.sort((a, b) => b.length - a.length);

export function ordinal(n: number): string {
	const mod100 = n % 100;
	if (mod100 >= 11 && mod100 <= 13) return `${n}TH`;
	return `${n}${["TH", "ST", "ND", "RD"][n % 10] ?? "TH"}`;
}

/** Upper case, punctuation to spaces, "#12" split into "# 12"; commas kept as their own token. */
function tokenize(text: string): string[] {
	return text
		.toUpperCase()
		.replace(/#/g, " # ")
		.replace(/,/g, " , ")
		.replace(/[^A-Z0-9#,/\- ]+/g, " ")
		.replace(/(^|\s)-+|-+(\s|$)/g, " ")
		.split(/\s+/)
		.filter((t) => t !== "");
}

function normalizeNameToken(token: string): string {
	const word = WORD_ORDINALS[token];
	if (word) return word;
	// "55th" / "55 TH" handled by upper-casing; a bare "55" before a suffix is the 55th.
	const ord = /^(\d+)(ST|ND|RD|TH)$/.exec(token);
	if (ord) return ordinal(Number(ord[1]));
	return token;
}

function normalizeUnit(tokens: string[]): string | null {
	const value = tokens
		.filter((t) => !UNIT_DESIGNATORS.has(t))
		.join("")
		.replace(/^0+(?=\d)/, "");
	return value === "" ? null : value;
}

/** Street line (no city/state/ZIP) into its parts. Null when nothing street-like remains. */
export function parseStreet(street: string): StreetParts | null {
	const tokens = tokenize(street).filter((t) => t !== ",");
	return partsFromTokens(tokens);
}

function partsFromTokens(input: string[]): StreetParts | null {
	const tokens = [...input];
	let number: string | null = null;
	if (tokens.length > 1 && /^\d+[A-Z]?$/.test(tokens[0]!)) number = tokens.shift()!;

	let unit: string | null = null;
	const unitAt = tokens.findIndex((t, i) => i > 0 && UNIT_DESIGNATORS.has(t));
	if (unitAt >= 0) {
		unit = normalizeUnit(tokens.slice(unitAt));
		tokens.length = unitAt;
	}

	const body = tokens;
	let predir: string | null = null;
	const first = body[0];
	if (first && DIRECTIONS[first] && (body.length >= 3 || (body.length === 2 && !SUFFIXES[body[1]!]))) {
		predir = DIRECTIONS[first]!;
		body.shift();
	}
	let postdir: string | null = null;
	const last = body[body.length - 1];
	if (last && DIRECTIONS[last] && body.length >= 3 && SUFFIXES[body[body.length - 2]!]) {
		postdir = DIRECTIONS[last]!;
		body.pop();
	}
	let suffix: string | null = null;
	const tail = body[body.length - 1];
	if (tail && body.length >= 2 && SUFFIXES[tail]) {
		suffix = SUFFIXES[tail]!;
		body.pop();
	}
	if (body.length === 0) return null;
	let nameTokens = body.map(normalizeNameToken);
	// A numbered street written without its ordinal ("55 AVE") is the 55th.
	if (nameTokens.length === 1 && /^\d+$/.test(nameTokens[0]!) && suffix)
		nameTokens = [ordinal(Number(nameTokens[0]))];
	return { number, predir, name: nameTokens.join(" "), suffix, postdir, unit };
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

/** Five-digit ZIP from "85031", "85031-1234", "850311234"; null otherwise. */
export function normalizeZip(zip: string | null | undefined): string | null {
	if (!zip) return null;
	const m = /^\s*(\d{5})(?:-?\d{4})?\s*$/.exec(zip);
	return m ? m[1]! : null;
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

function matchCityAtEnd(tokens: string[]): number {
	for (const city of KNOWN_CITIES) {
		if (city.length >= tokens.length) continue;
		const start = tokens.length - city.length;
		if (city.every((w, i) => tokens[start + i] === w)) return start;
	}
	return -1;
}

/**
 * One-line address into street parts, city, state and ZIP:
 * "4027 N 55TH AVE PHOENIX 85031", "5219 W EL CAMINITO Drive, Glendale, AZ 85302",
 * "7009 E CAMELBACK RD UNIT 12 SCOTTSDALE AZ 85251-1234".
 */
export function parseAddress(line: string): ParsedAddress | null {
	const tokens = tokenize(line);
	let zip: string | null = null;
	let state: string | null = null;
	while (tokens[tokens.length - 1] === ",") tokens.pop();
	const zipToken = tokens[tokens.length - 1];
	if (zipToken && normalizeZip(zipToken)) {
		zip = normalizeZip(zipToken);
		tokens.pop();
	}
	while (tokens[tokens.length - 1] === ",") tokens.pop();
	const stateToken = tokens[tokens.length - 1];
	if (stateToken && STATES[stateToken] && tokens.length > 2) {
		state = STATES[stateToken]!;
		tokens.pop();
	}
	while (tokens[tokens.length - 1] === ",") tokens.pop();

	let city: string | null = null;
	let streetTokens: string[];
	const lastComma = tokens.lastIndexOf(",");
	const afterComma = lastComma >= 0 ? tokens.slice(lastComma + 1) : [];
	if (lastComma >= 0 && afterComma.length > 0 && !UNIT_DESIGNATORS.has(afterComma[0]!)) {
		// "street[, Unit 12], City": the segment after the last comma is the city.
		city = afterComma.join(" ");
		streetTokens = tokens.slice(0, lastComma);
	} else {
		const plain = tokens.filter((t) => t !== ",");
		const cityAt = matchCityAtEnd(plain);
		if (cityAt > 0) {
			city = plain.slice(cityAt).join(" ");
			streetTokens = plain.slice(0, cityAt);
		} else {
			streetTokens = plain;
			// An unknown city after a unit number: "... UNIT 12 SOMEWHERE".
			const unitAt = plain.findIndex((t, i) => i > 0 && UNIT_DESIGNATORS.has(t));
			if (unitAt >= 0 && plain.length > unitAt + 2) {
				const valueEnd = plain[unitAt] === "#" || plain[unitAt + 1] !== "#" ? unitAt + 2 : unitAt + 3;
				if (plain.length > valueEnd) {
					city = plain.slice(valueEnd).join(" ");
					streetTokens = plain.slice(0, valueEnd);
				}
			}
		}
	}
	const parts = partsFromTokens(streetTokens.filter((t) => t !== ","));
	if (!parts) return null;
	return { ...parts, city, state: state ?? (zip && /^8[56]/.test(zip) ? "AZ" : null), zip };
}
