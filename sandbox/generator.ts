/**
 * Deterministic generator of a Phoenix-area "world": Assessor parcels for a set of ZIPs, the MLS
 * listings of some residential parcels, and the ground truth tying each listing to its parcel.
 *
 * Every simulator serves views of one World, so a test can compare what Saguaro collected with what
 * is really there. Same options (seed included) = same world, byte for byte.
 *
 * Realism that matters to the clients: 8-digit book-map-parcel APNs (a few split parcels with a
 * letter suffix), situs addresses on the county grid (directionals, numbered avenues/streets, named
 * roads, USPS suffixes, condo units), and MLS addresses that are *variants* of the situs address
 * ("5219 W EL CAMINITO DR" vs "5219 West El Caminito Drive", "UNIT 12" vs "#12", "PHOENIX" vs
 * "Phoenix"). Every variant normalizes (USPS directionals, suffixes, unit designators, case,
 * punctuation) to the situs address, so the merge is solvable, but not by string equality.
 */

import { Rng } from "./rng.ts";

export type PropertyType = "RESIDENTIAL" | "COMMERCIAL" | "VACANT LAND";
export type Directional = "N" | "S" | "E" | "W";
export type ListingStatus = "Active" | "Pending" | "Contingent" | "Sold";

export interface SitusAddress {
	number: number;
	direction: Directional;
	/** "55TH", "EL CAMINITO", "INDIAN SCHOOL". */
	streetName: string;
	/** USPS abbreviation: AVE, DR, ST, RD, LN, WAY, PL, CT, BLVD. */
	suffix: string;
	/** Condo unit, e.g. "12" or "1024"; null for a whole house or lot. */
	unit: string | null;
}

export interface ResidentialFacts {
	constructionYear: number;
	livableSpace: number;
	bathFixtures: number;
	/** Not reported by the Assessor (it reports fixtures); ground truth for MLS listings. */
	fullBaths: number;
	halfBaths: number;
	/** Not reported by the Assessor; ground truth for MLS listings. */
	bedrooms: number;
	garages: number;
	carports: number;
	pool: boolean;
	stories: number;
	exteriorWalls: string;
	roofType: string;
}

export interface Valuation {
	taxYear: number;
	fullCashValue: number;
	limitedPropertyValue: number;
	/** "3.1" owner occupied, "4.1" rental, "1.12" commercial, "2.R" vacant. */
	legalClass: string;
	assessedFcv: number;
	assessedLpv: number;
}

export interface Owner {
	name: string;
	mailingAddress1: string;
	mailingCity: string;
	mailingState: string;
	mailingZip: string;
	/** MM/DD/YYYY */
	deedDate: string;
	deedType: string;
	salePrice: number | null;
	/** MM/YYYY */
	saleDate: string | null;
}

export interface Parcel {
	/** Undashed APN, letter suffix kept: "10306005", "10402008A". */
	apn: string;
	/** Dashed form: "103-06-005", "104-02-008A". */
	apnDisplay: string;
	mcr: string;
	subdivision: string;
	sectionTownshipRange: string;
	situs: SitusAddress;
	/** Assessor style: "4027 N 55TH AVE", "7009 E CAMELBACK RD UNIT 12". */
	situsAddress: string;
	city: string;
	zip: string;
	propertyType: PropertyType;
	isCondo: boolean;
	/**
	 * Ground truth when `sharedSitusShare` made this parcel share its situs with others: a lot split
	 * (the halves keep one address) or a condo whose Assessor address has no unit. Absent otherwise.
	 */
	sharedSitus?: "lot-split" | "condo-no-unit";
	useCode: string;
	zoning: string;
	isRental: boolean;
	rentalId: string | null;
	lat: number;
	long: number;
	lotSize: number;
	/** Null for vacant land. */
	constructionYear: number | null;
	/** Residential parcels only. */
	residential: ResidentialFacts | null;
	/** Newest tax year first. */
	valuations: Valuation[];
	owner: Owner;
}

export interface Listing {
	/** 7 digits. */
	mlsId: string;
	/** Ground truth: the parcel this listing is for. */
	apn: string;
	/** The MLS street line, a variant of the situs address ("5219 W EL CAMINITO Drive"). */
	address: string;
	/** Title case as the MLS writes it ("Glendale"). */
	city: string;
	state: "AZ";
	zip: string;
	/** "5219 W EL CAMINITO Drive, Glendale, AZ 85302" as the site's autocomplete shows it. */
	fullAddress: string;
	/**
	 * The ZIP written in the address when the agent wrote another than the parcel's (a neighbouring
	 * postal ZIP, `neighbouringZipShare`); `zip` stays the parcel's (the MLS area it is listed in).
	 */
	addressZip?: string;
	/**
	 * Ground truth of how the address is written when `addressKindShare` asked for harder spellings
	 * (see ADDRESS_KINDS); absent for the usual variants.
	 */
	addressKind?: AddressKind;
	price: number;
	status: ListingStatus;
	/** YYYY-MM-DD */
	listDate: string;
	beds: number;
	fullBaths: number;
	halfBaths: number;
	sqft: number;
	lotSqft: number;
	lotAcres: number;
	yearBuilt: number;
	garageSpaces: number;
	pool: "Private" | "Community" | "None";
	sewer: "Sewer - Public" | "Septic Tank";
	/** Monthly; 0 when there is no HOA. */
	hoaFee: number;
	associationFeeIncl: string[];
	propertyType: "Single Family - Detached" | "Apartment Style/Flat" | "Townhouse";
	description: string;
	/** sparkplatform photo ids: https://cdn.photos.sparkplatform.com/az/{id}-t.jpg */
	photoIds: string[];
}

export interface CanonicalProperty {
	/** The canonical key: the undashed APN. */
	key: string;
	apn: string;
	zip: string;
	situsAddress: string;
	propertyType: PropertyType;
	/** MLS ids of every listing of this parcel (a relisted parcel has several). */
	mlsIds: string[];
}

export interface GroundTruth {
	/** mlsId -> APN. */
	listingApn: Record<string, string>;
	/** One per parcel, in APN order. */
	properties: CanonicalProperty[];
}

export interface GeneratorOptions {
	seed: number;
	zips: string[];
	/** Parcels per ZIP: one number for all, or per ZIP (missing ZIPs fall back to `default`). */
	parcelsPerZip: number | ({ default: number } & Record<string, number>);
	/** Share of residential parcels listed on the MLS. */
	listingShare: number;
	/** Share of listed parcels that also carry an older listing (sold, then listed again). */
	relistShare: number;
	/** Share of parcels that are halves of a split (APN letter suffix A/B). */
	splitShare: number;
	taxYear: number;
	/** The world's "today", YYYY-MM-DD: listing dates and deeds are before it. */
	asOf: string;
	/**
	 * Share of listings whose address is written in one of the harder ways real agents write them
	 * (ADDRESS_KINDS: no commas, ZIP+4 without a dash, "AZ85031", spelled ordinals, "42d", units
	 * without a designator...), each listing's kind kept as ground truth. 0 (default) leaves every
	 * listing as before; the other streams of the world do not move either way.
	 */
	addressKindShare?: number;
	/**
	 * Share of parcels made to share a situs address with another (issue 12): a residential parcel
	 * takes its neighbour's address (a lot split whose halves keep one address; its listings are
	 * written on that address), and a condo building's parcels lose their unit in the Assessor's
	 * address (their listings keep it). Ground truth in `Parcel.sharedSitus` and the listings' kind
	 * ("shared-situs-lot-split", "shared-situs-condo"). 0 (default) changes nothing of the world.
	 */
	sharedSitusShare?: number;
	/**
	 * Share of listings written with a neighbouring ZIP (the postal ZIP beside the parcel's, outside
	 * the world's ZIPs), kind "neighbouring-zip". 0 (default) changes nothing of the world.
	 */
	neighbouringZipShare?: number;
}

export interface World {
	options: GeneratorOptions;
	/** All parcels, sorted by APN. */
	parcels: Parcel[];
	/** All listings, sorted by MLS id. */
	listings: Listing[];
	truth: GroundTruth;
	byApn: Map<string, Parcel>;
	/** Parcels of a ZIP, APN order. */
	byZip: Map<string, Parcel[]>;
	listingById: Map<string, Listing>;
	listingsByZip: Map<string, Listing[]>;
	listingsByApn: Map<string, Listing[]>;
	/** Parcel by undashed/dashed/dotted/spaced APN, case-insensitive; undefined when absent. */
	parcel(apn: string): Parcel | undefined;
}

export const DEFAULT_ZIPS: readonly string[] = ["85031", "85033", "85008", "85301", "85379"];

export function defaultGeneratorOptions(): GeneratorOptions {
	return {
		seed: 20260,
		zips: [...DEFAULT_ZIPS],
		parcelsPerZip: 2000,
		listingShare: 0.08,
		relistShare: 0.03,
		splitShare: 0.012,
		taxYear: 2026,
		asOf: "2026-03-15",
	};
}

/** Undashed, upper-case APN: "103-06-005" / "103.06.005" / "103 06 005" -> "10306005". */
export function normalizeApn(input: string): string {
	return input.replace(/[\s.-]/g, "").toUpperCase();
}

/** "10306005" -> "103-06-005", "10402008A" -> "104-02-008A". */
export function formatApn(apn: string): string {
	const a = normalizeApn(apn);
	return a.length >= 8 ? `${a.slice(0, 3)}-${a.slice(3, 5)}-${a.slice(5)}` : a;
}

export function formatSitus(s: SitusAddress): string {
	const base = `${s.number} ${s.direction} ${s.streetName} ${s.suffix}`;
	return s.unit ? `${base} UNIT ${s.unit}` : base;
}

export function ordinal(n: number): string {
	const mod100 = n % 100;
	if (mod100 >= 11 && mod100 <= 13) return `${n}TH`;
	switch (n % 10) {
		case 1:
			return `${n}ST`;
		case 2:
			return `${n}ND`;
		case 3:
			return `${n}RD`;
		default:
			return `${n}TH`;
	}
}

// ---------------------------------------------------------------------------------------------
// ZIP profiles: where the ZIP sits on the county grid and what its housing stock looks like.

interface NamedStreet {
	direction: Directional;
	name: string;
	suffix: string;
	/** Arterials carry the commercial parcels and condo complexes. */
	arterial?: boolean;
}

interface ZipProfile {
	city: string;
	books: number[];
	/** Grid side of the numbered N-S streets: W = avenues (AVE/DR/LN), E = streets (ST/PL/WAY). */
	side: "W" | "E";
	/** Numbered streets from..to (e.g. 43..59 = 43RD AVE .. 59TH AVE). */
	numbered: [number, number];
	/** House numbers on N-S streets (north of Washington St). */
	north: [number, number];
	named: NamedStreet[];
	years: [number, number];
	sqft: [number, number];
	lot: [number, number];
	/** Full cash value per livable square foot, tax year 2026. */
	ppsf: number;
	landPerSqft: number;
	poolShare: number;
	condoShare: number;
	commercialShare: number;
	vacantShare: number;
	hoaShare: number;
	stems: string[];
	zoning: string[];
}

const W = (name: string, suffix: string, arterial = false): NamedStreet => ({
	direction: "W",
	name,
	suffix,
	arterial,
});
const E = (name: string, suffix: string, arterial = false): NamedStreet => ({
	direction: "E",
	name,
	suffix,
	arterial,
});

const PROFILES: Record<string, ZipProfile> = {
	"85031": {
		city: "PHOENIX",
		books: [103, 104],
		side: "W",
		numbered: [43, 59],
		north: [2800, 4300],
		named: [
			W("INDIAN SCHOOL", "RD", true),
			W("THOMAS", "RD", true),
			W("OSBORN", "RD"),
			W("WHITTON", "AVE"),
			W("CLARENDON", "AVE"),
			W("GLENROSA", "AVE"),
			W("HEATHERBRAE", "DR"),
			W("EARLL", "DR"),
			W("MONTEREY", "WAY"),
			W("FLOWER", "ST"),
		],
		years: [1955, 1968],
		sqft: [950, 1700],
		lot: [5200, 8200],
		ppsf: 192,
		landPerSqft: 9,
		poolShare: 0.14,
		condoShare: 0.02,
		commercialShare: 0.04,
		vacantShare: 0.015,
		hoaShare: 0,
		stems: ["MARYVALE TERRACE", "MARYVALE", "CAMELBACK PARK", "WESTRIDGE", "ROYAL PALM", "SUNSET RIDGE"],
		zoning: ["R1-6", "R1-6", "R1-8"],
	},
	"85033": {
		city: "PHOENIX",
		books: [102, 145],
		side: "W",
		numbered: [60, 75],
		north: [1600, 3600],
		named: [
			W("MCDOWELL", "RD", true),
			W("THOMAS", "RD", true),
			W("ENCANTO", "BLVD", true),
			W("PALM", "LN"),
			W("HOLLY", "ST"),
			W("CORONADO", "RD"),
			W("WOLF", "ST"),
			W("EDGEMONT", "AVE"),
			W("VIRGINIA", "AVE"),
			W("WINDSOR", "AVE"),
		],
		years: [1958, 1976],
		sqft: [1000, 1800],
		lot: [5500, 8000],
		ppsf: 185,
		landPerSqft: 8.5,
		poolShare: 0.12,
		condoShare: 0.03,
		commercialShare: 0.035,
		vacantShare: 0.015,
		hoaShare: 0.02,
		stems: ["MARYVALE", "PALM CREST", "WESTERN PLAZA", "ESTRELLA VISTA", "VILLA DE PAZ", "SUNRISE TERRACE"],
		zoning: ["R1-6", "R1-6", "R-2"],
	},
	"85008": {
		city: "PHOENIX",
		books: [120, 121, 122],
		side: "E",
		numbered: [32, 48],
		north: [1600, 3600],
		named: [
			E("THOMAS", "RD", true),
			E("MCDOWELL", "RD", true),
			E("CAMELBACK", "RD", true),
			E("OAK", "ST"),
			E("WILLETTA", "ST"),
			E("CULVER", "ST"),
			E("PALM", "LN"),
			E("MONTE VISTA", "RD"),
			E("ALMERIA", "RD"),
			E("VIRGINIA", "AVE"),
		],
		years: [1946, 1986],
		sqft: [800, 2100],
		lot: [5000, 9500],
		ppsf: 255,
		landPerSqft: 14,
		poolShare: 0.2,
		condoShare: 0.12,
		commercialShare: 0.05,
		vacantShare: 0.02,
		hoaShare: 0.03,
		stems: ["PAPAGO PARK", "EL REPOSO", "MONTE VISTA", "CORONADO", "ARCADIA VISTA", "PARK CENTRAL"],
		zoning: ["R1-6", "R-3", "R-4", "R1-6"],
	},
	"85301": {
		city: "GLENDALE",
		books: [142, 143, 144],
		side: "W",
		numbered: [43, 67],
		north: [5900, 7100],
		named: [
			W("GLENDALE", "AVE", true),
			W("NORTHERN", "AVE", true),
			W("MYRTLE", "AVE"),
			W("ORANGEWOOD", "AVE"),
			W("LAMAR", "RD"),
			W("MARYLAND", "AVE"),
			W("STATE", "AVE"),
			W("EL CAMINITO", "DR"),
			W("LAWRENCE", "LN"),
			W("ECHO", "CT"),
		],
		years: [1950, 1982],
		sqft: [900, 1900],
		lot: [6000, 9000],
		ppsf: 205,
		landPerSqft: 10,
		poolShare: 0.22,
		condoShare: 0.08,
		commercialShare: 0.05,
		vacantShare: 0.02,
		hoaShare: 0.05,
		stems: [
			"GLENDALE GARDENS",
			"SAHUARO VISTA",
			"CATLIN COURT",
			"BONSALL",
			"MYRTLE ACRES",
			"ORANGEWOOD ESTATES",
		],
		zoning: ["R1-6", "R1-8", "R-3"],
	},
	"85379": {
		city: "SURPRISE",
		books: [501, 502, 509],
		side: "W",
		numbered: [150, 170],
		north: [12000, 17000],
		named: [
			W("BELL", "RD", true),
			W("GREENWAY", "RD", true),
			W("WINDROSE", "DR"),
			W("CAROL", "AVE"),
			W("DESERT COVE", "AVE"),
			W("ACOMA", "DR"),
			W("SHANGRI LA", "RD"),
			W("CALLE LEJOS", "ST"),
			W("VIA MONTOYA", "DR"),
			W("PARADISE", "CT"),
			W("LISBON", "LN"),
		],
		years: [1998, 2022],
		sqft: [1300, 3100],
		lot: [5500, 9800],
		ppsf: 215,
		landPerSqft: 9.5,
		poolShare: 0.3,
		condoShare: 0.04,
		commercialShare: 0.03,
		vacantShare: 0.035,
		hoaShare: 0.85,
		stems: [
			"SURPRISE FARMS",
			"ASHTON RANCH",
			"SIERRA MONTANA",
			"ROSEVIEW",
			"ARIZONA TRADITIONS",
			"KINGSWOOD PARKE",
		],
		zoning: ["PAD", "R1-7", "PAD"],
	},
};

/** A plausible profile for a ZIP the table does not know, derived from the ZIP itself. */
function fallbackProfile(zip: string): ZipProfile {
	const r = new Rng(`profile:${zip}`);
	const base = r.int(20, 90);
	const north = r.int(10, 60) * 100;
	return {
		...PROFILES["85033"]!,
		books: [r.int(150, 240), r.int(150, 240)],
		numbered: [base, base + 14],
		north: [north, north + 2000],
		stems: ["DESERT VISTA", "PALO VERDE", "SONORAN HILLS", "MESQUITE ESTATES", "SAGUARO PARK"],
	};
}

// ---------------------------------------------------------------------------------------------
// Name pools.

const LAST = [
	"GARCIA",
	"MARTINEZ",
	"HERNANDEZ",
	"LOPEZ",
	"GONZALEZ",
	"RODRIGUEZ",
	"PEREZ",
	"SANCHEZ",
	"RAMIREZ",
	"TORRES",
	"FLORES",
	"RIVERA",
	"GOMEZ",
	"DIAZ",
	"REYES",
	"CRUZ",
	"MORALES",
	"ORTIZ",
	"GUTIERREZ",
	"CHAVEZ",
	"RAMOS",
	"RUIZ",
	"MENDOZA",
	"ALVAREZ",
	"CASTILLO",
	"JIMENEZ",
	"MORENO",
	"ROMERO",
	"HERRERA",
	"MEDINA",
	"AGUILAR",
	"VARGAS",
	"SMITH",
	"JOHNSON",
	"WILLIAMS",
	"BROWN",
	"JONES",
	"MILLER",
	"DAVIS",
	"WILSON",
	"ANDERSON",
	"TAYLOR",
	"THOMAS",
	"MOORE",
	"MARTIN",
	"JACKSON",
	"THOMPSON",
	"WHITE",
	"HARRIS",
	"CLARK",
	"LEWIS",
	"ROBINSON",
	"WALKER",
	"YOUNG",
	"ALLEN",
	"KING",
	"WRIGHT",
	"SCOTT",
	"HILL",
	"GREEN",
	"ADAMS",
	"NELSON",
	"BAKER",
	"CAMPBELL",
	"MITCHELL",
	"CARTER",
	"NGUYEN",
	"TRAN",
	"PATEL",
	"KIM",
];
const FIRST = [
	"JOSE",
	"MARIA",
	"JUAN",
	"LUIS",
	"CARLOS",
	"JESUS",
	"ANTONIO",
	"MIGUEL",
	"FRANCISCO",
	"ROSA",
	"ANA",
	"GUADALUPE",
	"JAMES",
	"JOHN",
	"ROBERT",
	"MICHAEL",
	"WILLIAM",
	"DAVID",
	"RICHARD",
	"MARY",
	"PATRICIA",
	"LINDA",
	"BARBARA",
	"ELIZABETH",
	"JENNIFER",
	"SUSAN",
	"KAREN",
	"NANCY",
	"DANIEL",
	"JOSEPH",
	"THOMAS",
	"CHRISTOPHER",
	"SARAH",
	"JESSICA",
	"KEVIN",
	"BRIAN",
];
const COMPANY_A = [
	"DESERT",
	"SONORAN",
	"CACTUS",
	"SUN",
	"VALLEY",
	"CANYON",
	"MESA",
	"PINNACLE",
	"COPPER",
	"SAGE",
];
const COMPANY_B = [
	"BLOOM",
	"RIDGE",
	"HOMES",
	"PROPERTIES",
	"REALTY",
	"CAPITAL",
	"RENTALS",
	"HOLDINGS",
	"ESTATES",
];
const OUT_OF_STATE: readonly (readonly [string, string, string])[] = [
	["IRVINE", "CA", "92618"],
	["DALLAS", "TX", "75201"],
	["SEATTLE", "WA", "98101"],
	["DENVER", "CO", "80202"],
	["LAS VEGAS", "NV", "89109"],
	["SCOTTSDALE", "AZ", "85251"],
	["TEMPE", "AZ", "85281"],
	["CHANDLER", "AZ", "85224"],
];
const WALLS = ["Fw - Frame Wood", "Bl - Block", "Fs - Frame Stucco", "Br - Brick", "Sl - Slump Block"];
const ROOFS = [
	"Ct - Concrete Tile",
	"As - Asphalt Shingle",
	"Bu - Built Up",
	"Ct - Concrete Tile",
	"Ta - Tile",
];

// ---------------------------------------------------------------------------------------------
// Geometry: the county grid. Washington St / Central Ave are 0; 800 address numbers = 1 mile.

const ORIGIN_LAT = 33.4484;
const ORIGIN_LONG = -112.074;
const LAT_PER_MILE = 0.01449;
const LONG_PER_MILE = 0.01732;

function gridToLatLong(northNumber: number, eastNumber: number): [number, number] {
	const lat = ORIGIN_LAT + (northNumber / 800) * LAT_PER_MILE;
	const long = ORIGIN_LONG + (eastNumber / 800) * LONG_PER_MILE;
	return [Math.round(lat * 1e6) / 1e6, Math.round(long * 1e6) / 1e6];
}

/** Public Land Survey section/township/range as the Assessor prints it ("292N2E"). */
function sectionTownshipRange(lat: number, long: number): string {
	const BASE_LAT = 33.377; // Gila and Salt River baseline
	const MERIDIAN = -112.334; // Gila and Salt River meridian, on this simplified grid
	const TWP = 6 * LAT_PER_MILE;
	const RNG = 6 * LONG_PER_MILE;
	const tN = lat >= BASE_LAT;
	const t = Math.floor(Math.abs(lat - BASE_LAT) / TWP) + 1;
	const rE = long >= MERIDIAN;
	const r = Math.floor(Math.abs(long - MERIDIAN) / RNG) + 1;
	// Within the township: rows from the north, columns from the east, numbered back and forth.
	const yIn = (((lat - BASE_LAT) % TWP) + TWP) % TWP;
	const xIn = (((long - MERIDIAN) % RNG) + RNG) % RNG;
	const row = 5 - Math.min(5, Math.floor(yIn / LAT_PER_MILE));
	const colFromEast = 5 - Math.min(5, Math.floor(xIn / LONG_PER_MILE));
	const section = row % 2 === 0 ? row * 6 + colFromEast + 1 : row * 6 + (6 - colFromEast);
	return `${section}${t}${tN ? "N" : "S"}${r}${rE ? "E" : "W"}`;
}

// ---------------------------------------------------------------------------------------------
// Dates and formatting helpers.

function pad2(n: number): string {
	return n < 10 ? `0${n}` : String(n);
}

function isoDate(d: Date): string {
	return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
}

function roundTo(n: number, step: number): number {
	return Math.round(n / step) * step;
}

function titleCase(text: string): string {
	return text.toLowerCase().replace(/\b([a-z])/g, (m) => m.toUpperCase());
}

// ---------------------------------------------------------------------------------------------
// Parcels.

interface Slot {
	situs: SitusAddress;
	northNumber: number;
	eastNumber: number;
	onArterial: boolean;
	/** "A"/"B" for the halves of a split parcel, "" otherwise. */
	letter: "" | "A" | "B";
}

/** Parcels that share an APN base or a plat: one house, a split pair, or a condo complex. */
interface SlotGroup {
	kind: "house" | "split" | "condo";
	slots: Slot[];
}

function numberedStreets(p: ZipProfile): NamedStreet[] {
	const out: NamedStreet[] = [];
	const suffixes = p.side === "W" ? ["AVE", "DR", "LN"] : ["ST", "PL", "WAY"];
	for (let n = p.numbered[0]; n <= p.numbered[1]; n++) {
		for (const suffix of suffixes) out.push({ direction: "N", name: ordinal(n), suffix });
	}
	return out;
}

/** East-west coordinate of a numbered street: AVE/ST at n*100, DR/PL a third further, LN/WAY two thirds. */
function numberedOffset(s: NamedStreet, side: "W" | "E"): number {
	const n = Number.parseInt(s.name, 10);
	const extra =
		s.suffix === "DR" || s.suffix === "PL" ? 33 : s.suffix === "LN" || s.suffix === "WAY" ? 66 : 0;
	const v = n * 100 + extra;
	return side === "W" ? -v : v;
}

/**
 * Lays out `count` parcels on the ZIP's streets. Every situs address is unique within the ZIP (a
 * condo unit counts as its own address), so an address key identifies at most one parcel.
 */
function makeGroups(p: ZipProfile, count: number, splitShare: number, rng: Rng): SlotGroup[] {
	const numbered = numberedStreets(p);
	const ewMin = p.numbered[0] * 100;
	const ewMax = p.numbered[1] * 100 + 99;
	// Each named east-west street runs at a fixed north coordinate inside the ZIP.
	const namedNorth = p.named.map((_, i) =>
		roundTo(p.north[0] + ((i + 0.5) / p.named.length) * (p.north[1] - p.north[0]), 10),
	);
	const arterials = p.named.map((s, i) => ({ s, i })).filter((x) => x.s.arterial);
	const used = new Set<string>();
	const groups: SlotGroup[] = [];
	let placed = 0;
	const take = (key: string) => {
		if (used.has(key)) return false;
		used.add(key);
		return true;
	};

	const condoTarget = Math.round(count * p.condoShare);
	while (placed < condoTarget) {
		const a = rng.pick(arterials);
		const num = rng.int(ewMin, ewMax) | 1;
		if (!take(`${a.s.name}|${a.s.suffix}|${num}`)) continue;
		const units = Math.min(condoTarget - placed, rng.int(8, 48));
		const floors = rng.chance(0.5);
		const slots: Slot[] = [];
		for (let u = 0; u < units; u++) {
			const unit = floors ? String((Math.floor(u / 12) + 1) * 100 + (u % 12) + 1) : String(u + 1);
			slots.push({
				situs: { number: num, direction: a.s.direction, streetName: a.s.name, suffix: a.s.suffix, unit },
				northNumber: namedNorth[a.i]!,
				eastNumber: a.s.direction === "W" ? -num : num,
				onArterial: true,
				letter: "",
			});
		}
		groups.push({ kind: "condo", slots });
		placed += units;
	}

	let guard = 0;
	while (placed < count) {
		if (++guard > count * 50) throw new Error(`generator: ZIP grid too small for ${count} parcels`);
		let street: NamedStreet;
		let num: number;
		let north: number;
		let east: number;
		let arterial = false;
		if (rng.chance(0.6)) {
			street = rng.pick(numbered);
			num = rng.int(p.north[0] / 2, p.north[1] / 2) * 2 + (rng.chance(0.5) ? 1 : 0);
			north = num;
			east = numberedOffset(street, p.side);
		} else {
			const i = rng.int(0, p.named.length - 1);
			street = p.named[i]!;
			num = rng.int(ewMin / 2, ewMax / 2) * 2 + (rng.chance(0.5) ? 1 : 0);
			north = namedNorth[i]! + (num % 2 === 0 ? 15 : -15);
			east = street.direction === "W" ? -num : num;
			arterial = street.arterial === true;
		}
		const key = (n: number) => `${street.name}|${street.suffix}|${n}`;
		const split = placed + 2 <= count && rng.chance(splitShare / 2) && !used.has(key(num + 2));
		if (!take(key(num))) continue;
		const slot = (n: number, letter: Slot["letter"]): Slot => ({
			situs: {
				number: n,
				direction: street.direction,
				streetName: street.name,
				suffix: street.suffix,
				unit: null,
			},
			northNumber: north + (n - num),
			eastNumber: east,
			onArterial: arterial,
			letter,
		});
		if (split) {
			// The split-off half gets the next house number on the same side of the street.
			take(key(num + 2));
			groups.push({ kind: "split", slots: [slot(num, "A"), slot(num + 2, "B")] });
			placed += 2;
		} else {
			groups.push({ kind: "house", slots: [slot(num, "")] });
			placed++;
		}
	}
	// APNs follow the land: sort along the grid so neighbours share a book/map/subdivision.
	const at = (g: SlotGroup) => g.slots[0]!;
	groups.sort((a, b) => at(a).eastNumber - at(b).eastNumber || at(a).northNumber - at(b).northNumber);
	return groups;
}

function ownerName(rng: Rng, corporate: boolean): string {
	if (corporate) {
		return rng.chance(0.8)
			? `${rng.pick(COMPANY_A)} ${rng.pick(COMPANY_B)} ${rng.chance(0.3) ? `${rng.int(1, 9)} ` : ""}LLC`
			: `${rng.pick(COMPANY_A)} ${rng.pick(COMPANY_B)} ${rng.int(2015, 2024)}-${rng.int(1, 4)} BORROWER LLC`;
	}
	const last = rng.pick(LAST);
	const first = rng.pick(FIRST);
	return rng.weighted<string>([
		[`${last} ${first}`, 40],
		[`${last} ${first}/${rng.pick(FIRST)}`, 25],
		[`${last} ${first} ${String.fromCharCode(65 + rng.int(0, 25))} & ${rng.pick(FIRST)}`, 15],
		[`${last} FAMILY TRUST`, 10],
		[`${last} ${first} TR`, 10],
	]);
}

function subdivisionName(p: ZipProfile, rng: Rng, condo: boolean, serial: number): string {
	const stem = rng.pick(p.stems);
	if (condo) return `${stem} ${rng.pick(["CONDOMINIUM", "CONDOMINIUMS", "TOWNHOMES CONDOMINIUM"])}`;
	const n = (serial % 9) + 1;
	// The double space before the plat number is in the real data ("MARYVALE TERRACE  3 AMD").
	return rng.weighted<string>([
		[`${stem}  ${n} AMD`, 20],
		[`${stem} UNIT ${n}`, 30],
		[`${stem} ${n}`, 20],
		[`${stem} ESTATES`, 15],
		[`${stem} PARCEL ${n}`, 15],
	]);
}

interface SubdivisionPlan {
	name: string;
	mcr: string;
	year: number;
	sqft: number;
	hoa: boolean;
}

function valuationsFor(
	p: ZipProfile,
	rng: Rng,
	taxYear: number,
	type: PropertyType,
	lot: number,
	res: ResidentialFacts | null,
	isCondo: boolean,
	rental: boolean,
): Valuation[] {
	let fcv: number;
	if (type === "VACANT LAND") fcv = lot * p.landPerSqft * rng.range(0.7, 1.2);
	else if (type === "COMMERCIAL") fcv = lot * p.landPerSqft * rng.range(3.2, 6);
	else {
		const r = res!;
		const ageFactor = 1 - Math.min(0.25, (taxYear - r.constructionYear) / 280);
		fcv =
			r.livableSpace * p.ppsf * (isCondo ? 0.82 : 1) * ageFactor * rng.range(0.9, 1.1) +
			(isCondo ? 0 : lot * p.landPerSqft * 0.35) +
			(r.pool ? 14000 : 0) +
			r.garages * 6000;
	}
	fcv = roundTo(fcv, 100);
	const legalClass = type === "COMMERCIAL" ? "1.12" : type === "VACANT LAND" ? "2.R" : rental ? "4.1" : "3.1";
	const ratio = type === "COMMERCIAL" ? 0.17 : type === "VACANT LAND" ? 0.15 : 0.1;
	const out: Valuation[] = [];
	let lpvShare = rng.range(0.5, 0.78);
	for (let y = 0; y < 3; y++) {
		const yearFcv = roundTo(fcv / 1.045 ** y, 100);
		const lpv = Math.min(yearFcv, Math.round((fcv * lpvShare) / 1.05 ** y));
		out.push({
			taxYear: taxYear - y,
			fullCashValue: yearFcv,
			limitedPropertyValue: lpv,
			legalClass,
			assessedFcv: Math.round(yearFcv * ratio),
			assessedLpv: Math.round(lpv * ratio),
		});
		lpvShare = Math.min(1, lpvShare * rng.range(0.99, 1.01));
	}
	return out;
}

function ownerFor(
	rng: Rng,
	name: string,
	corporate: boolean,
	rental: boolean,
	situs: string,
	city: string,
	zip: string,
	fcv: number,
	builtYear: number,
	asOfYear: number,
): Owner {
	const saleYear = rng.int(Math.max(1975, builtYear), asOfYear - 1);
	const month = rng.int(1, 12);
	const day = rng.int(1, 28);
	const deedType = rng.weighted<string>([
		["WD", 60],
		["SW", corporate ? 40 : 10],
		["JT", 8],
		["QC", 8],
		["CD", 3],
	]);
	// Price index: 1990 ~ 25% of today's value, steady climb to today.
	const idx = 0.25 + 0.75 * Math.max(0, Math.min(1, (saleYear - 1990) / (asOfYear - 1990))) ** 1.4;
	const salePrice = deedType === "QC" ? null : roundTo(fcv * idx * rng.range(0.85, 1.2), 500);
	const saleMonth = month === 1 ? 12 : month - 1;
	const saleYearOfMonth = month === 1 ? saleYear - 1 : saleYear;
	let mailing: [string, string, string, string] = [situs, city, "AZ", zip];
	if (rental) {
		const [mc, ms, mz] = rng.pick(OUT_OF_STATE);
		mailing = rng.chance(0.5)
			? [`PO BOX ${rng.int(1000, 99999)}`, mc, ms, mz]
			: [
					`${rng.int(100, 9999)} ${rng.pick(["MAIN ST", "COMMERCE DR", "CORPORATE BLVD", "1ST AVE"])}`,
					mc,
					ms,
					mz,
				];
	}
	return {
		name,
		mailingAddress1: mailing[0],
		mailingCity: mailing[1],
		mailingState: mailing[2],
		mailingZip: mailing[3],
		deedDate: `${pad2(month)}/${pad2(day)}/${saleYear}`,
		deedType,
		salePrice,
		saleDate: salePrice === null ? null : `${pad2(saleMonth)}/${saleYearOfMonth}`,
	};
}

/** Hands out APN books so two ZIPs never share one: the profile's books first, then free ones from 600. */
class BookAllocator {
	readonly #used = new Set<number>();
	#next = 600;

	take(preferred: readonly number[]): number {
		for (const b of preferred) {
			if (!this.#used.has(b)) {
				this.#used.add(b);
				return b;
			}
		}
		while (this.#used.has(this.#next)) this.#next++;
		this.#used.add(this.#next);
		return this.#next;
	}
}

function generateZip(
	zip: string,
	count: number,
	opts: GeneratorOptions,
	books: BookAllocator,
	rng: Rng,
): Parcel[] {
	const p = PROFILES[zip] ?? fallbackProfile(zip);
	const groups = makeGroups(p, count, opts.splitShare, rng.fork("slots"));
	const asOfYear = Number(opts.asOf.slice(0, 4));
	const parcels: Parcel[] = [];

	let book = books.take(p.books);
	let map = rng.int(1, 20);
	let parcelNo = 0;
	let sub: SubdivisionPlan | null = null;
	let subLeft = 0;
	let serial = rng.int(0, 8);
	let inCondo = false;

	const nextMap = (step: number) => {
		map += step;
		if (map > 99) {
			map = rng.int(1, 9);
			book = books.take(p.books);
		}
		parcelNo = rng.int(1, 12);
	};

	for (const group of groups) {
		const isCondo = group.kind === "condo";
		// A new subdivision (plat, and map page) every 40..220 parcels, and one per condo complex.
		if (!sub || subLeft <= 0 || isCondo || inCondo) {
			serial++;
			const yearBase = rng.int(p.years[0], p.years[1]);
			sub = {
				name: subdivisionName(p, rng, isCondo, serial),
				mcr: String(rng.int(isCondo ? 300 : 1000, isCondo ? 999 : 99999)),
				year: isCondo ? Math.max(yearBase, 1972) : yearBase,
				sqft: rng.int(p.sqft[0], p.sqft[1]),
				hoa: isCondo || rng.chance(p.hoaShare),
			};
			subLeft = rng.int(40, 220);
			nextMap(rng.int(1, 3));
		}
		inCondo = isCondo;
		if (parcelNo + group.slots.length + 4 > 999) nextMap(1);
		let base = "";
		for (const slot of group.slots) {
			if (slot.letter !== "B") {
				parcelNo += rng.chance(0.06) ? rng.int(2, 4) : 1;
				base = `${book}${pad2(map)}${String(parcelNo).padStart(3, "0")}`;
			}
			subLeft--;
			parcels.push(makeParcel(p, zip, sub, slot, isCondo, base + slot.letter, opts, asOfYear, rng));
		}
	}
	return parcels;
}

function makeParcel(
	p: ZipProfile,
	zip: string,
	sub: SubdivisionPlan,
	slot: Slot,
	isCondo: boolean,
	apn: string,
	opts: GeneratorOptions,
	asOfYear: number,
	rng: Rng,
): Parcel {
	const { situs, letter } = slot;
	let type: PropertyType = "RESIDENTIAL";
	if (!isCondo) {
		const r = rng.float();
		if (slot.onArterial && r < p.commercialShare * 6) type = "COMMERCIAL";
		else if (r > 1 - p.vacantShare || (letter === "B" && rng.chance(0.5))) type = "VACANT LAND";
	}
	const corporate = type === "COMMERCIAL" || rng.chance(type === "RESIDENTIAL" ? 0.13 : 0.35);
	const rental = type === "RESIDENTIAL" && (corporate || rng.chance(0.12));
	const lot = isCondo
		? rng.int(600, 1400)
		: type === "COMMERCIAL"
			? rng.int(12000, 60000)
			: Math.round(rng.int(p.lot[0], p.lot[1]) / (letter ? 2 : 1));

	let residential: ResidentialFacts | null = null;
	let constructionYear: number | null = null;
	if (type === "RESIDENTIAL") {
		const year = Math.min(asOfYear - 1, sub.year + rng.int(-2, 3));
		const livable = Math.max(
			520,
			Math.round(sub.sqft * (isCondo ? 0.6 : 1) * rng.range(0.78, 1.25) * (letter ? 0.7 : 1)),
		);
		const bedrooms =
			livable < 800
				? rng.int(1, 2)
				: livable < 1200
					? rng.int(2, 3)
					: livable < 1800
						? rng.int(3, 4)
						: rng.int(3, 5);
		const fullBaths = Math.max(1, Math.min(4, Math.round(livable / 850 + rng.range(-0.4, 0.4))));
		const halfBaths = livable > 1500 && rng.chance(0.4) ? 1 : 0;
		const garages = isCondo ? 0 : year < 1970 ? (rng.chance(0.3) ? 1 : 0) : rng.int(2, 3);
		residential = {
			constructionYear: year,
			livableSpace: livable,
			bathFixtures: fullBaths * 3 + halfBaths * 2,
			fullBaths,
			halfBaths,
			bedrooms,
			garages,
			carports: garages === 0 && !isCondo ? rng.int(0, 2) : 0,
			pool: !isCondo && rng.chance(p.poolShare),
			stories: livable > 2200 && rng.chance(0.5) ? 2 : 1,
			exteriorWalls: rng.pick(WALLS),
			roofType: rng.pick(ROOFS),
		};
		constructionYear = year;
	} else if (type === "COMMERCIAL") {
		constructionYear = rng.int(Math.min(p.years[0], 1990), asOfYear - 2);
	}

	const valuations = valuationsFor(p, rng, opts.taxYear, type, lot, residential, isCondo, rental);
	const situsAddress = formatSitus(situs);
	const [lat, long] = gridToLatLong(slot.northNumber, slot.eastNumber);
	const name = ownerName(rng, corporate);
	return {
		apn,
		apnDisplay: formatApn(apn),
		mcr: sub.mcr,
		subdivision: type === "COMMERCIAL" && rng.chance(0.6) ? "" : sub.name,
		sectionTownshipRange: sectionTownshipRange(lat, long),
		situs,
		situsAddress,
		city: p.city,
		zip,
		propertyType: type,
		isCondo,
		useCode:
			type === "COMMERCIAL"
				? rng.pick(["1100", "1200", "1700", "2000"])
				: type === "VACANT LAND"
					? "0010"
					: isCondo
						? "0151"
						: "0131",
		zoning:
			type === "COMMERCIAL"
				? rng.pick(["C-1", "C-2", "C-3"])
				: isCondo
					? rng.pick(["R-3", "R-4", "R-5"])
					: rng.pick(p.zoning),
		isRental: rental,
		rentalId: rental ? String(rng.int(100000, 999999)) : null,
		lat,
		long,
		lotSize: lot,
		constructionYear,
		residential,
		valuations,
		owner: ownerFor(
			rng,
			name,
			corporate,
			rental,
			situsAddress,
			p.city,
			zip,
			valuations[0]!.fullCashValue,
			constructionYear ?? 1975,
			asOfYear,
		),
	};
}

// ---------------------------------------------------------------------------------------------
// Listings: MLS addresses as variants of the situs address.

const DIR_WORD: Record<Directional, string> = { N: "North", S: "South", E: "East", W: "West" };
const SUFFIX_WORD: Record<string, string> = {
	AVE: "Avenue",
	DR: "Drive",
	ST: "Street",
	RD: "Road",
	LN: "Lane",
	WAY: "Way",
	PL: "Place",
	CT: "Court",
	BLVD: "Boulevard",
};

/** The MLS street line for a situs address, in one of the styles agents type. */
export function mlsAddressVariant(s: SitusAddress, rng: Rng): string {
	const dir = rng.weighted<string>([
		[s.direction, 55],
		[DIR_WORD[s.direction], 30],
		[`${s.direction}.`, 15],
	]);
	const upperName = rng.chance(0.45);
	const name = upperName ? s.streetName : titleCase(s.streetName);
	const word = SUFFIX_WORD[s.suffix] ?? titleCase(s.suffix);
	const suffix = rng.weighted<string>([
		[s.suffix, upperName ? 25 : 10],
		[titleCase(s.suffix), 20],
		[word, 45],
		[`${titleCase(s.suffix)}.`, 10],
	]);
	let line = `${s.number} ${dir} ${name} ${suffix}`;
	if (s.unit) {
		line += rng.weighted<string>([
			[` Unit ${s.unit}`, 35],
			[` #${s.unit}`, 30],
			[` # ${s.unit}`, 10],
			[` Apt ${s.unit}`, 10],
			[` UNIT ${s.unit}`, 10],
			[`, Unit ${s.unit}`, 5],
		]);
	}
	return line;
}

const FEATURES = [
	"updated kitchen with granite counters",
	"new HVAC in 2023",
	"tile floors throughout",
	"RV gate",
	"covered patio",
	"low-maintenance desert landscaping",
	"vaulted ceilings",
	"fresh interior paint",
	"dual-pane windows",
	"owned solar panels",
	"remodeled bathrooms",
	"large backyard with citrus trees",
	"walking distance to schools and parks",
];

function photoId(rng: Rng, year: number): string {
	let tail = "";
	for (let i = 0; i < 12; i++) tail += String(rng.int(0, 9));
	return `${year}${pad2(rng.int(1, 12))}${pad2(rng.int(1, 28))}${pad2(rng.int(0, 23))}${pad2(rng.int(0, 59))}${pad2(rng.int(0, 59))}${tail}`;
}

function makeListing(
	parcel: Parcel,
	mlsId: string,
	status: ListingStatus,
	listDate: Date,
	rng: Rng,
): Listing {
	const r = parcel.residential!;
	const address = mlsAddressVariant(parcel.situs, rng);
	const city = titleCase(parcel.city);
	const fcv = parcel.valuations[0]!.fullCashValue;
	const price =
		roundTo(fcv * rng.range(1.08, 1.4), rng.chance(0.5) ? 1000 : 100) - (rng.chance(0.3) ? 100 : 0);
	// MLS square footage is agent-reported: usually the Assessor's, sometimes off a little.
	const sqft = rng.chance(0.8) ? r.livableSpace : roundTo(r.livableSpace * rng.range(0.95, 1.06), 1);
	const hoaFee = parcel.isCondo
		? rng.int(150, 420)
		: rng.chance(parcel.zip === "85379" ? 0.85 : 0.04)
			? rng.int(40, 130)
			: 0;
	const features = rng.shuffle(FEATURES).slice(0, rng.int(2, 4));
	if (r.pool) features.unshift("sparkling private pool");
	if (hoaFee === 0 && rng.chance(0.3)) features.push("no HOA");
	const kind = parcel.isCondo ? "condo" : "home";
	const description =
		`Welcome to this ${rng.pick(["charming", "spacious", "move-in ready", "beautifully updated", "well-kept"])} ` +
		`${r.bedrooms} bedroom, ${r.fullBaths + r.halfBaths * 0.5} bath ${kind} in ${titleCase(parcel.subdivision || parcel.city).replace(/\s+/g, " ")}. ` +
		`Built in ${r.constructionYear} with ${sqft.toLocaleString("en-US")} sq ft of living space. ` +
		`Features include ${features.join(", ")}. ` +
		`${r.garages > 0 ? `${r.garages}-car garage. ` : r.carports > 0 ? `${r.carports}-car carport. ` : ""}` +
		`Close to shopping, dining and freeway access. ${rng.pick(["Don't miss it!", "Schedule your showing today.", "Priced to sell."])}`;
	const photos: string[] = [];
	const nPhotos = rng.int(6, 30);
	for (let i = 0; i < nPhotos; i++) photos.push(photoId(rng, listDate.getUTCFullYear()));
	return {
		mlsId,
		apn: parcel.apn,
		address,
		city,
		state: "AZ",
		zip: parcel.zip,
		fullAddress: `${address}, ${city}, AZ ${parcel.zip}`,
		price,
		status,
		listDate: isoDate(listDate),
		beds: r.bedrooms,
		fullBaths: r.fullBaths,
		halfBaths: r.halfBaths,
		sqft,
		lotSqft: parcel.lotSize,
		lotAcres: Math.round((parcel.lotSize / 43560) * 100) / 100,
		yearBuilt: r.constructionYear,
		garageSpaces: r.garages + (rng.chance(0.3) ? r.carports : 0),
		pool: r.pool ? "Private" : parcel.isCondo && rng.chance(0.7) ? "Community" : "None",
		sewer: parcel.zip === "85379" && rng.chance(0.03) ? "Septic Tank" : "Sewer - Public",
		hoaFee,
		associationFeeIncl:
			hoaFee === 0
				? []
				: parcel.isCondo
					? ["Roof Repair", "Insurance", "Maintenance Exterior", "Water", "Trash"]
					: ["Common Area Maint"],
		propertyType: parcel.isCondo
			? rng.chance(0.5)
				? "Apartment Style/Flat"
				: "Townhouse"
			: "Single Family - Detached",
		description,
		photoIds: photos,
	};
}

function generateListings(parcels: Parcel[], opts: GeneratorOptions, rng: Rng): Listing[] {
	const asOf = new Date(`${opts.asOf}T00:00:00Z`);
	const DAY = 86_400_000;
	const usedIds = new Set<string>();
	const newId = () => {
		for (;;) {
			const id = String(rng.int(5_000_000, 6_999_999));
			if (!usedIds.has(id)) {
				usedIds.add(id);
				return id;
			}
		}
	};
	const listings: Listing[] = [];
	for (const parcel of parcels) {
		if (parcel.propertyType !== "RESIDENTIAL" || !rng.chance(opts.listingShare)) continue;
		const status = rng.weighted<ListingStatus>([
			["Active", 60],
			["Pending", 15],
			["Contingent", 10],
			["Sold", 15],
		]);
		const listDate = new Date(asOf.getTime() - rng.int(1, 150) * DAY);
		if (rng.chance(opts.relistShare)) {
			// An older listing of the same parcel that sold (or expired) before this one.
			const older = new Date(listDate.getTime() - rng.int(200, 1500) * DAY);
			const prev = makeListing(parcel, newId(), "Sold", older, rng);
			prev.price = roundTo(prev.price * rng.range(0.7, 0.92), 1000);
			listings.push(prev);
		}
		listings.push(makeListing(parcel, newId(), status, listDate, rng));
	}
	return listings.sort((a, b) => (a.mlsId < b.mlsId ? -1 : 1));
}

// ---------------------------------------------------------------------------------------------
// Harder address spellings, with ground truth (entity-resolution bench and tests).

export const ADDRESS_KINDS = [
	"no-commas",
	"zip-plus4-no-dash",
	"zip-state-joined",
	"zip-trailing-period",
	"spelled-ordinal",
	"ordinal-d",
	"unit-no-designator",
	"unit-spelling",
	"name-split",
	"directional-word-late",
] as const;
/** Kinds written by `sharedSitusShare` and `neighbouringZipShare`, not drawn by `addressKindShare`. */
export const SITUS_KINDS = ["shared-situs-lot-split", "shared-situs-condo", "neighbouring-zip"] as const;
export type AddressKind = (typeof ADDRESS_KINDS)[number] | (typeof SITUS_KINDS)[number];

const ONES = ["", "First", "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh", "Eighth", "Ninth"];
const TEENS = [
	"Tenth",
	"Eleventh",
	"Twelfth",
	"Thirteenth",
	"Fourteenth",
	"Fifteenth",
	"Sixteenth",
	"Seventeenth",
	"Eighteenth",
	"Nineteenth",
];
const TENS_CARD = ["", "", "Twenty", "Thirty", "Forty", "Fifty", "Sixty", "Seventy", "Eighty", "Ninety"];
const TENS_ORD = [
	"",
	"",
	"Twentieth",
	"Thirtieth",
	"Fortieth",
	"Fiftieth",
	"Sixtieth",
	"Seventieth",
	"Eightieth",
	"Ninetieth",
];

/** 55 -> "Fifty-Fifth" (or "Fifty Fifth"), 12 -> "Twelfth"; null past 99. */
export function spelledOrdinal(n: number, hyphen = true): string | null {
	if (n < 1 || n > 99) return null;
	if (n < 10) return ONES[n]!;
	if (n < 20) return TEENS[n - 10]!;
	const tens = Math.floor(n / 10);
	const ones = n % 10;
	if (ones === 0) return TENS_ORD[tens]!;
	return `${TENS_CARD[tens]}${hyphen ? "-" : " "}${ONES[ones]}`;
}

/** The kinds a situs address can be written in (a unit kind needs a unit, an ordinal one a numbered street...). */
function kindsFor(s: SitusAddress): AddressKind[] {
	const numbered = /^\d+(ST|ND|RD|TH)$/.test(s.streetName);
	return ADDRESS_KINDS.filter((k) => {
		if (k === "spelled-ordinal") return numbered && Number.parseInt(s.streetName, 10) < 100;
		if (k === "ordinal-d")
			return /^\d*[23](ND|RD)$/.test(s.streetName) && !/1[23]RD|1[23]ND/.test(s.streetName);
		if (k === "unit-no-designator" || k === "unit-spelling") return s.unit !== null;
		if (k === "name-split") return /^MC[A-Z]{3,}/.test(s.streetName);
		return true;
	});
}

/** One listing's address written in `kind`: the street line and the full line the site shows. */
export function addressInKind(
	s: SitusAddress,
	city: string,
	zip: string,
	kind: AddressKind,
	rng: Rng,
): { address: string; fullAddress: string } {
	const dir = rng.pick([s.direction, DIR_WORD[s.direction]]);
	const suffix = rng.pick([s.suffix, SUFFIX_WORD[s.suffix] ?? titleCase(s.suffix)]);
	let name = titleCase(s.streetName);
	let unit = s.unit ? rng.pick([` Unit ${s.unit}`, ` #${s.unit}`]) : "";
	const plus4 = String(rng.int(1000, 9999));
	let last = `, ${city}, AZ ${zip}`;
	switch (kind) {
		case "no-commas":
			last = ` ${city} AZ ${rng.pick([zip, `${zip}-${plus4}`])}`;
			break;
		case "zip-plus4-no-dash":
			last = rng.pick([`, ${city}, AZ ${zip}${plus4}`, ` ${city} AZ ${zip}${plus4}`]);
			break;
		case "zip-state-joined":
			last = rng.pick([`, ${city}, AZ${zip}`, ` ${city} AZ${zip}`]);
			break;
		case "zip-trailing-period":
			last = rng.pick([`, ${city}, AZ ${zip}.`, ` ${city}, AZ ${zip}-${plus4}.`]);
			break;
		case "spelled-ordinal":
			name = spelledOrdinal(Number.parseInt(s.streetName, 10), rng.chance(0.7)) ?? name;
			break;
		case "ordinal-d":
			name = s.streetName.replace(/(ND|RD)$/, "d").toLowerCase();
			break;
		case "unit-no-designator":
			unit = ` ${s.unit}`;
			break;
		case "unit-spelling":
			unit = rng.pick([
				` Unit No. ${s.unit}`,
				` Apt #${s.unit}`,
				` Ste ${s.unit!.padStart(4, "0")}`,
				` UNIT # ${s.unit}`,
			]);
			break;
		case "name-split":
			name = `Mc ${titleCase(s.streetName.slice(2))}`;
			break;
		case "directional-word-late":
			return {
				address: `${s.number} ${DIR_WORD[s.direction].toUpperCase()} ${name} ${suffix}${unit}`,
				fullAddress: `${s.number} ${DIR_WORD[s.direction].toUpperCase()} ${name} ${suffix}${unit} ${city.toUpperCase()} ${zip}`,
			};
	}
	const address = `${s.number} ${dir} ${name} ${suffix}${unit}`;
	return { address, fullAddress: `${address}${last}` };
}

/** Rewrites a share of the listings' addresses in the harder kinds (own random stream). */
function writeAddressKinds(listings: Listing[], parcels: Map<string, Parcel>, share: number, rng: Rng): void {
	for (const l of listings) {
		if (!rng.chance(share)) continue;
		const p = parcels.get(l.apn)!;
		const kinds = kindsFor(p.situs);
		const kind = rng.pick(kinds);
		const written = addressInKind(p.situs, l.city, l.zip, kind, rng);
		l.address = written.address;
		l.fullAddress = written.fullAddress;
		l.addressKind = kind;
	}
}

/**
 * Parcels that share a situs (own random stream). Lot splits: a residential house takes the address
 * of the next house of its ZIP in APN order (its listings are rewritten on that address). Condos: a
 * share of the condo buildings (parcels on one street line but for the unit) lose the unit in the
 * Assessor's address; their listings keep the unit the agents write.
 */
function shareSitus(parcels: Parcel[], listings: Listing[], share: number, rng: Rng): void {
	const listingsOf = new Map<string, Listing[]>();
	for (const l of listings) listingsOf.set(l.apn, [...(listingsOf.get(l.apn) ?? []), l]);
	const houses = parcels.filter((p) => p.propertyType === "RESIDENTIAL" && !p.isCondo && !p.situs.unit);
	for (let i = 0; i + 1 < houses.length; i++) {
		const [a, b] = [houses[i]!, houses[i + 1]!];
		if (a.zip !== b.zip || a.sharedSitus || b.sharedSitus || !rng.chance(share)) continue;
		b.situs = { ...a.situs };
		b.situsAddress = a.situsAddress;
		a.sharedSitus = "lot-split";
		b.sharedSitus = "lot-split";
		for (const l of listingsOf.get(a.apn) ?? []) l.addressKind = "shared-situs-lot-split";
		for (const l of listingsOf.get(b.apn) ?? []) {
			l.address = mlsAddressVariant(b.situs, rng);
			l.fullAddress = `${l.address}, ${l.city}, AZ ${l.zip}`;
			l.addressKind = "shared-situs-lot-split";
		}
		i++;
	}
	const buildings = new Map<string, Parcel[]>();
	for (const p of parcels) {
		if (!p.situs.unit) continue;
		const line = `${p.zip}|${formatSitus({ ...p.situs, unit: null })}`;
		buildings.set(line, [...(buildings.get(line) ?? []), p]);
	}
	for (const units of buildings.values()) {
		if (!rng.chance(share * 5)) continue;
		for (const p of units) {
			p.situs = { ...p.situs, unit: null };
			p.situsAddress = formatSitus(p.situs);
			p.sharedSitus = "condo-no-unit";
			for (const l of listingsOf.get(p.apn) ?? []) l.addressKind = "shared-situs-condo";
		}
	}
}

/** A ZIP beside `zip` (same first three digits) that is not one of the world's. */
function neighbourZip(zip: string, zips: string[], rng: Rng): string {
	const n = Number(zip);
	const options = [n - 2, n - 1, n + 1, n + 2]
		.map((x) => String(x).padStart(5, "0"))
		.filter((z) => z.slice(0, 3) === zip.slice(0, 3) && !zips.includes(z));
	return options.length > 0 ? rng.pick(options) : zip;
}

/** Listings written with the ZIP beside their parcel's (own random stream). */
function writeNeighbouringZips(listings: Listing[], zips: string[], share: number, rng: Rng): void {
	for (const l of listings) {
		if (!rng.chance(share) || l.addressKind?.startsWith("shared-situs")) continue;
		const zip = neighbourZip(l.zip, zips, rng);
		if (zip === l.zip) continue;
		l.fullAddress = `${l.address}, ${l.city}, AZ ${zip}`;
		l.addressZip = zip;
		l.addressKind = "neighbouring-zip";
	}
}

// ---------------------------------------------------------------------------------------------

function countFor(opts: GeneratorOptions, zip: string): number {
	const c = opts.parcelsPerZip;
	return typeof c === "number" ? c : (c[zip] ?? c.default);
}

function validateOptions(o: GeneratorOptions): void {
	if (!Number.isInteger(o.seed)) throw new RangeError("generator: seed must be an integer");
	if (o.zips.length === 0 || !o.zips.every((z) => /^\d{5}$/.test(z))) {
		throw new RangeError(`generator: zips must be 5-digit ZIP codes, got ${JSON.stringify(o.zips)}`);
	}
	for (const zip of o.zips) {
		const n = countFor(o, zip);
		if (!(Number.isInteger(n) && n >= 0 && n <= 200_000))
			throw new RangeError(`generator: bad parcel count for ${zip}: ${n}`);
	}
	for (const k of [
		"listingShare",
		"relistShare",
		"splitShare",
		"addressKindShare",
		"sharedSitusShare",
		"neighbouringZipShare",
	] as const) {
		const share = o[k];
		if (share === undefined) continue;
		if (!(share >= 0 && share <= 1)) throw new RangeError(`generator: ${k} must be in 0..1`);
	}
	if (!/^\d{4}-\d{2}-\d{2}$/.test(o.asOf)) throw new RangeError("generator: asOf must be YYYY-MM-DD");
}

/** Builds a world. Deterministic: the same options give the same parcels, listings and truth. */
export function generateWorld(options: Partial<GeneratorOptions> = {}): World {
	const opts: GeneratorOptions = { ...defaultGeneratorOptions(), ...options };
	opts.zips = [...new Set(opts.zips)];
	validateOptions(opts);
	const root = new Rng(opts.seed);
	const books = new BookAllocator();

	const parcels: Parcel[] = [];
	for (const zip of opts.zips) {
		// One stream per ZIP, so a ZIP's parcels do not depend on how many parcels other ZIPs have.
		parcels.push(...generateZip(zip, countFor(opts, zip), opts, books, new Rng(`${opts.seed}:${zip}`)));
	}
	parcels.sort((a, b) => (a.apn < b.apn ? -1 : a.apn > b.apn ? 1 : 0));
	for (let i = 1; i < parcels.length; i++) {
		if (parcels[i]!.apn === parcels[i - 1]!.apn) {
			throw new Error(`generator: duplicate APN ${parcels[i]!.apn} (two ZIPs share a book?)`);
		}
	}
	const listings = generateListings(parcels, opts, root.fork("listings"));
	if (opts.addressKindShare) {
		const byApn = new Map(parcels.map((p) => [p.apn, p]));
		writeAddressKinds(listings, byApn, opts.addressKindShare, root.fork("address-kinds"));
	}
	if (opts.sharedSitusShare) shareSitus(parcels, listings, opts.sharedSitusShare, root.fork("shared-situs"));
	if (opts.neighbouringZipShare)
		writeNeighbouringZips(listings, opts.zips, opts.neighbouringZipShare, root.fork("neighbouring-zip"));
	return buildWorld(opts, parcels, listings);
}

function buildWorld(options: GeneratorOptions, parcels: Parcel[], listings: Listing[]): World {
	const byApn = new Map<string, Parcel>();
	const byZip = new Map<string, Parcel[]>();
	for (const zip of options.zips) byZip.set(zip, []);
	for (const p of parcels) {
		byApn.set(p.apn, p);
		byZip.get(p.zip)!.push(p);
	}
	const listingById = new Map<string, Listing>();
	const listingsByZip = new Map<string, Listing[]>();
	const listingsByApn = new Map<string, Listing[]>();
	for (const zip of options.zips) listingsByZip.set(zip, []);
	const listingApn: Record<string, string> = {};
	for (const l of listings) {
		listingById.set(l.mlsId, l);
		listingsByZip.get(l.zip)!.push(l);
		const arr = listingsByApn.get(l.apn);
		if (arr) arr.push(l);
		else listingsByApn.set(l.apn, [l]);
		listingApn[l.mlsId] = l.apn;
	}
	const properties: CanonicalProperty[] = parcels.map((p) => ({
		key: p.apn,
		apn: p.apn,
		zip: p.zip,
		situsAddress: p.situsAddress,
		propertyType: p.propertyType,
		mlsIds: (listingsByApn.get(p.apn) ?? []).map((l) => l.mlsId),
	}));
	return {
		options,
		parcels,
		listings,
		truth: { listingApn, properties },
		byApn,
		byZip,
		listingById,
		listingsByZip,
		listingsByApn,
		parcel: (apn: string) => byApn.get(normalizeApn(apn)),
	};
}

export interface TruthSnapshot {
	seed: number;
	zips: string[];
	asOf: string;
	taxYear: number;
	counts: { parcels: number; listings: number; byZip: Record<string, { parcels: number; listings: number }> };
	/** mlsId -> APN. */
	listingApn: Record<string, string>;
	listings: {
		mlsId: string;
		apn: string;
		zip: string;
		mlsAddress: string;
		situsAddress: string;
		status: ListingStatus;
		price: number;
	}[];
	/** Every canonical property (one per parcel); only when asked for, it is large. */
	properties?: CanonicalProperty[];
}

/** The ground truth as JSON-able data, for other processes (served on GET /__sandbox/truth). */
export function truthSnapshot(world: World, withProperties = false): TruthSnapshot {
	const byZip: Record<string, { parcels: number; listings: number }> = {};
	for (const zip of world.options.zips) {
		byZip[zip] = {
			parcels: world.byZip.get(zip)?.length ?? 0,
			listings: world.listingsByZip.get(zip)?.length ?? 0,
		};
	}
	return {
		seed: world.options.seed,
		zips: [...world.options.zips],
		asOf: world.options.asOf,
		taxYear: world.options.taxYear,
		counts: { parcels: world.parcels.length, listings: world.listings.length, byZip },
		listingApn: world.truth.listingApn,
		listings: world.listings.map((l) => ({
			mlsId: l.mlsId,
			apn: l.apn,
			zip: l.zip,
			mlsAddress: l.fullAddress,
			situsAddress: world.byApn.get(l.apn)!.situsAddress,
			status: l.status,
			price: l.price,
		})),
		...(withProperties ? { properties: world.truth.properties } : {}),
	};
}
