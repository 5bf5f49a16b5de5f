/**
 * Tables of USPS Publication 28 (Postal Addressing Standards) that address normalization uses:
 * directionals (§233), street suffixes (appendix C1: standard abbreviation <- common spellings),
 * secondary unit designators (appendix C2) and spelled-out ordinals. General US rules live here;
 * Maricopa County's own (places, street-name variants, highway spellings) are data in
 * config/maricopa-address.json.
 */

export const DIRECTIONALS: Readonly<Record<string, string>> = {
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

/** Two-word directionals ("North West") read as one. */
export const DIRECTIONAL_PAIRS: Readonly<Record<string, string>> = {
	"N E": "NE",
	"N W": "NW",
	"S E": "SE",
	"S W": "SW",
};

// Standard abbreviation, then the spellings USPS lists for it (and a few seen in Arizona data).
const SUFFIX_TABLE: readonly (readonly string[])[] = [
	["ALY", "ALLEY", "ALLEE", "ALLY"],
	["ANX", "ANNEX", "ANNX", "ANEX"],
	["ARC", "ARCADE"],
	["AVE", "AVENUE", "AV", "AVEN", "AVENU", "AVN", "AVNUE"],
	["BYU", "BAYOU", "BAYOO"],
	["BCH", "BEACH"],
	["BND", "BEND"],
	["BLF", "BLUFF", "BLUF"],
	["BTM", "BOTTOM", "BOT", "BOTTM"],
	["BLVD", "BOULEVARD", "BOUL", "BOULV", "BLV"],
	["BR", "BRANCH", "BRNCH"],
	["BRG", "BRIDGE", "BRDGE"],
	["BRK", "BROOK"],
	["BYP", "BYPASS", "BYPA", "BYPAS", "BYPS"],
	["CP", "CAMP", "CMP"],
	["CYN", "CANYON", "CANYN", "CNYN"],
	["CPE", "CAPE"],
	["CSWY", "CAUSEWAY", "CAUSWA"],
	["CTR", "CENTER", "CEN", "CENT", "CENTR", "CENTRE", "CNTER", "CNTR"],
	["CIR", "CIRCLE", "CIRC", "CIRCL", "CRCL", "CRCLE", "CR"],
	["CLF", "CLIFF"],
	["CLB", "CLUB"],
	["CMN", "COMMON"],
	["COR", "CORNER"],
	["CRSE", "COURSE"],
	["CT", "COURT", "CRT"],
	["CTS", "COURTS"],
	["CV", "COVE"],
	["CRK", "CREEK"],
	["CRES", "CRESCENT", "CRSENT", "CRSNT"],
	["CRST", "CREST"],
	["XING", "CROSSING", "CRSSNG"],
	["DL", "DALE"],
	["DM", "DAM"],
	["DV", "DIVIDE", "DIV", "DVD"],
	["DR", "DRIVE", "DRIV", "DRV"],
	["EST", "ESTATE"],
	["ESTS", "ESTATES"],
	["EXPY", "EXPRESSWAY", "EXP", "EXPR", "EXPRESS", "EXPW"],
	["EXT", "EXTENSION", "EXTN", "EXTNSN"],
	["FLS", "FALLS"],
	["FLD", "FIELD"],
	["FLDS", "FIELDS"],
	["FLT", "FLAT"],
	["FRD", "FORD"],
	["FRST", "FOREST", "FORESTS"],
	["FRG", "FORGE", "FORG"],
	["FRK", "FORK"],
	["FWY", "FREEWAY", "FREEWY", "FRWAY", "FRWY"],
	["GDN", "GARDEN", "GARDN", "GRDEN", "GRDN"],
	["GDNS", "GARDENS", "GRDNS"],
	["GTWY", "GATEWAY", "GATEWY", "GATWAY", "GTWAY"],
	["GLN", "GLEN"],
	["GRN", "GREEN"],
	["GRV", "GROVE", "GROV"],
	["HBR", "HARBOR", "HARB", "HARBR", "HRBOR"],
	["HVN", "HAVEN"],
	["HTS", "HEIGHTS", "HT"],
	["HWY", "HIGHWAY", "HIGHWY", "HIWAY", "HIWY", "HWAY"],
	["HL", "HILL"],
	["HLS", "HILLS"],
	["HOLW", "HOLLOW", "HLLW", "HOLLOWS", "HOLWS"],
	["IS", "ISLAND", "ISLND"],
	["JCT", "JUNCTION", "JCTION", "JCTN", "JUNCTN", "JUNCTON"],
	["KNL", "KNOLL", "KNOL"],
	["LK", "LAKE"],
	["LKS", "LAKES"],
	["LNDG", "LANDING", "LNDNG"],
	["LN", "LANE"],
	["LOOP", "LOOPS"],
	["MALL"],
	["MNR", "MANOR"],
	["MDW", "MEADOW"],
	["MDWS", "MEADOWS", "MEDOWS"],
	["MEWS"],
	["ML", "MILL"],
	["MSN", "MISSION", "MISSN", "MSSN"],
	["MTWY", "MOTORWAY"],
	["MT", "MOUNT", "MNT"],
	["MTN", "MOUNTAIN", "MNTAIN", "MNTN", "MOUNTIN", "MTIN"],
	["OVAL", "OVL"],
	["OPAS", "OVERPASS"],
	["PARK", "PRK"],
	["PKWY", "PARKWAY", "PARKWY", "PKWAY", "PKY"],
	["PASS"],
	["PSGE", "PASSAGE"],
	["PATH", "PATHS"],
	["PIKE", "PIKES"],
	["PNE", "PINE"],
	["PNES", "PINES"],
	["PL", "PLACE"],
	["PLN", "PLAIN"],
	["PLNS", "PLAINS"],
	["PLZ", "PLAZA", "PLZA"],
	["PT", "POINT"],
	["PTS", "POINTS"],
	["PRT", "PORT"],
	["PR", "PRAIRIE", "PRR"],
	["RADL", "RADIAL", "RAD", "RADIEL"],
	["RAMP"],
	["RNCH", "RANCH", "RANCHES", "RNCHS"],
	["RPD", "RAPID"],
	["RST", "REST"],
	["RDG", "RIDGE", "RDGE"],
	["RIV", "RIVER", "RVR", "RIVR"],
	["RD", "ROAD"],
	["RDS", "ROADS"],
	["RTE", "ROUTE"],
	["ROW"],
	["RUN"],
	["SHR", "SHORE", "SHOAR"],
	["SKWY", "SKYWAY"],
	["SPG", "SPRING", "SPNG", "SPRNG"],
	["SPGS", "SPRINGS", "SPNGS", "SPRNGS"],
	["SQ", "SQUARE", "SQR", "SQRE", "SQU"],
	["STA", "STATION", "STATN", "STN"],
	["STRA", "STRAVENUE", "STRAV", "STRAVEN", "STRAVN", "STRVN", "STRVNUE"],
	["ST", "STREET", "STRT", "STR"],
	["SMT", "SUMMIT", "SUMIT", "SUMITT"],
	["TER", "TERRACE", "TERR"],
	["TRCE", "TRACE", "TRACES"],
	["TRAK", "TRACK", "TRACKS", "TRK", "TRKS"],
	["TRL", "TRAIL", "TRAILS", "TRLS", "TR"],
	["TUNL", "TUNNEL", "TUNEL", "TUNLS", "TUNNELS", "TUNNL"],
	["UN", "UNION"],
	["VLY", "VALLEY", "VALLY", "VLLY"],
	["VIA", "VIADUCT", "VDCT", "VIADCT"],
	["VW", "VIEW"],
	["VWS", "VIEWS"],
	["VLG", "VILLAGE", "VILL", "VILLAG", "VILLG", "VILLIAGE"],
	["VL", "VILLE"],
	["VIS", "VISTA", "VIST", "VST", "VSTA"],
	["WALK", "WALKS"],
	["WAY", "WY"],
	["WL", "WELL"],
	["WLS", "WELLS"],
];

export const SUFFIXES: Readonly<Record<string, string>> = Object.fromEntries(
	SUFFIX_TABLE.flatMap(([abbr, ...variants]) => [abbr!, ...variants].map((v) => [v, abbr!])),
);

/**
 * Secondary unit designators (appendix C2) and the words written for them. "#" and "NO" ("Unit No.
 * 312") are read as designators too. BLDG names a building and combines with a unit (see address.ts).
 */
export const UNIT_DESIGNATORS: Readonly<Record<string, string>> = {
	"#": "#",
	NO: "#",
	NUM: "#",
	NUMBER: "#",
	APT: "APT",
	APARTMENT: "APT",
	BLDG: "BLDG",
	BUILDING: "BLDG",
	BLD: "BLDG",
	STE: "STE",
	SUITE: "STE",
	UNIT: "UNIT",
	UNT: "UNIT",
	LOT: "LOT",
	SPC: "SPC",
	SPACE: "SPC",
	TRLR: "TRLR",
	TRAILER: "TRLR",
	RM: "RM",
	ROOM: "RM",
	FL: "FL",
	FLOOR: "FL",
	PH: "PH",
	PENTHOUSE: "PH",
	OFC: "OFC",
	OFFICE: "OFC",
	DEPT: "DEPT",
};

/** Designators that may start a secondary part; NO/NUMBER only follow another designator. */
export const LEADING_DESIGNATORS = new Set(
	Object.keys(UNIT_DESIGNATORS).filter((d) => d !== "NO" && d !== "NUM" && d !== "NUMBER"),
);

const UNITS = ["", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"];
const UNIT_ORDINALS = [
	"",
	"FIRST",
	"SECOND",
	"THIRD",
	"FOURTH",
	"FIFTH",
	"SIXTH",
	"SEVENTH",
	"EIGHTH",
	"NINTH",
];
const TEEN_ORDINALS = [
	"TENTH",
	"ELEVENTH",
	"TWELFTH",
	"THIRTEENTH",
	"FOURTEENTH",
	"FIFTEENTH",
	"SIXTEENTH",
	"SEVENTEENTH",
	"EIGHTEENTH",
	"NINETEENTH",
];
const TENS = ["", "", "TWENTY", "THIRTY", "FORTY", "FIFTY", "SIXTY", "SEVENTY", "EIGHTY", "NINETY"];
const TENS_ORDINALS = [
	"",
	"",
	"TWENTIETH",
	"THIRTIETH",
	"FORTIETH",
	"FIFTIETH",
	"SIXTIETH",
	"SEVENTIETH",
	"EIGHTIETH",
	"NINETIETH",
];

/** A spelled ordinal word alone ("TWELFTH" -> 12, "FIFTIETH" -> 50). */
export const ORDINAL_WORDS: Readonly<Record<string, number>> = (() => {
	const out: Record<string, number> = {};
	UNIT_ORDINALS.forEach((w, i) => {
		if (w) out[w] = i;
	});
	TEEN_ORDINALS.forEach((w, i) => {
		out[w] = 10 + i;
	});
	TENS_ORDINALS.forEach((w, i) => {
		if (w) out[w] = i * 10;
	});
	out.HUNDREDTH = 100;
	return out;
})();

/** Tens words that start a compound ordinal ("FIFTY" of "FIFTY-FIFTH"). */
export const TENS_WORDS: Readonly<Record<string, number>> = Object.fromEntries(
	TENS.flatMap((w, i) => (w ? [[w, i * 10]] : [])),
);

/** Unit ordinal words that end a compound ordinal ("FIFTH" of "FIFTY-FIFTH"). */
export const UNIT_ORDINAL_WORDS: Readonly<Record<string, number>> = Object.fromEntries(
	UNIT_ORDINALS.flatMap((w, i) => (w ? [[w, i]] : [])),
);

/** Cardinal words, for numbered roads written out ("Highway Eighty-Five" is rare; kept small). */
export const CARDINAL_WORDS: Readonly<Record<string, number>> = Object.fromEntries(
	UNITS.flatMap((w, i) => (w ? [[w, i]] : [])),
);

export const STATES: Readonly<Record<string, string>> = { AZ: "AZ", ARIZONA: "AZ", ARIZ: "AZ" };
