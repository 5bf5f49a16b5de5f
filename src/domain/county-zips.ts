/**
 * The ZIP codes of Maricopa County with residential parcels (USPS delivery ZIPs; P.O.-box-only and
 * unique-business ZIPs left out): what a county-wide collection sweeps unless COUNTY_ZIPS says
 * otherwise. A few ZIPs straddle the county line (85142 Queen Creek, 85390 Wickenburg); the Assessor
 * layer answers only the Maricopa parcels of those.
 */
// biome-ignore format: a table of ZIPs reads best packed by area
export const MARICOPA_COUNTY_ZIPS: readonly string[] = [
	// Phoenix
	"85003", "85004", "85006", "85007", "85008", "85009", "85012", "85013", "85014", "85015", "85016",
	"85017", "85018", "85019", "85020", "85021", "85022", "85023", "85024", "85027", "85028", "85029",
	"85031", "85032", "85033", "85034", "85035", "85037", "85040", "85041", "85042", "85043", "85044",
	"85045", "85048", "85050", "85051", "85053", "85054", "85083", "85085", "85086", "85087",
	// Mesa, Chandler, Gilbert, Tempe, Queen Creek, Sun Lakes
	"85142", "85201", "85202", "85203", "85204", "85205", "85206", "85207", "85208", "85209", "85210",
	"85212", "85213", "85215", "85224", "85225", "85226", "85233", "85234", "85248", "85249", "85281",
	"85282", "85283", "85284", "85286", "85295", "85296", "85297", "85298",
	// Scottsdale, Paradise Valley, Fountain Hills, Rio Verde, Fort McDowell, Cave Creek, Carefree
	"85250", "85251", "85253", "85254", "85255", "85257", "85258", "85259", "85260", "85262", "85263",
	"85264", "85266", "85268", "85331", "85377",
	// Glendale, Peoria, Sun City, Surprise, El Mirage, Youngtown, the West Valley
	"85301", "85302", "85303", "85304", "85305", "85306", "85307", "85308", "85309", "85310", "85320",
	"85322", "85323", "85326", "85335", "85337", "85338", "85339", "85340", "85342", "85343", "85345",
	"85351", "85353", "85354", "85355", "85361", "85363", "85373", "85374", "85375", "85378", "85379",
	"85381", "85382", "85383", "85387", "85388", "85390", "85392", "85395", "85396",
];
