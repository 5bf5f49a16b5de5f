import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { generateWorld } from "../../sandbox/generator.ts";
import { addressKey, addressKeyProblem, normalizeStreet, normalizeZip } from "../../src/domain/address.ts";
import { normalizeCity, parseAddress } from "../../src/domain/address-line.ts";
import { parseAddressLine } from "../../src/mls/parser.ts";

/** Every line of a group gives the same canonical street. */
function same(expected: string, ...lines: string[]) {
	for (const line of lines) assert.equal(normalizeStreet(line), expected, line);
}

describe("address normalization (USPS Publication 28)", () => {
	test("directionals, suffixes, case and punctuation", () => {
		same(
			"5219 W EL CAMINITO DR",
			"5219 W EL CAMINITO DR",
			"5219 West El Caminito Drive",
			"5219 W. El Caminito Dr.",
		);
		same(
			"4455 E DESERT CIR",
			"4455 E Desert Circle",
			"4455 E Desert Cr",
			"4455 E Desert Cir.",
			"4455 East Desert Crcl",
		);
		same("1234 N 7TH ST N", "1234 N 7th St North", "1234 North 7th Street N.");
		same("1234 NW GRAND AVE", "1234 North West Grand Avenue", "1234 NW Grand Ave");
		same("123 NORTH ST", "123 North St", "123 NORTH STREET");
		same("10 W NORTH LN", "10 W North Ln", "10 West North Lane");
	});

	test("numbered streets: digits, ordinals, 42d, spelled past tenth", () => {
		same(
			"4027 N 55TH AVE",
			"4027 N 55th Ave",
			"4027 N 55 Ave",
			"4027 N Fifty-Fifth Avenue",
			"4027 N Fifty Fifth Ave",
		);
		same("1234 W 12TH ST", "1234 W Twelfth St", "1234 W 12th Street");
		same("4201 N 42ND ST", "4201 N 42d St", "4201 N 42nd St", "4201 N Forty-Second St");
		same("100 N 1ST ST", "100 N First Street", "100 N 1st St");
		same("2215 N 23RD ST", "2215 N 23d St", "2215 N Twenty-Third Street");
	});

	test("highways and state routes", () => {
		same(
			"12345 W US HIGHWAY 60",
			"12345 W US Hwy 60",
			"12345 W US Highway 60",
			"12345 W U.S. Hwy 60",
			"12345 W US-60",
		);
		same(
			"100 W STATE ROUTE 85",
			"100 W SR-85",
			"100 W SR 85",
			"100 W State Route 85",
			"100 W State Hwy 85",
			"100 W AZ-85",
		);
		same("100 N INTERSTATE 17", "100 N I-17", "100 N Interstate 17");
		same("36000 N HIGHWAY 74", "36000 N Hwy 74", "36000 N Highway 74");
	});

	test("street-name variants and accents", () => {
		same("1521 W MCDOWELL RD", "1521 W Mc Dowell Rd", "1521 W McDowell Road", "1521 W MC DOWELL RD");
		same("1234 E SAINT JOHN RD", "1234 E St John Rd", "1234 E Saint John Rd", "1234 E St. John Road");
		same("1234 N MOUNTAIN VIEW RD", "1234 N Mtn View Rd", "1234 N Mountain View Road");
		same("234 W ONEIL DR", "234 W O'Neil Dr", "234 W ONeil Drive", "234 W O’Neil Dr", "234 W O Neil Dr");
		same("3201 E PENASCO ST", "3201 E Peñasco St", "3201 E Penasco Street", "3201 E PEÑASCO ST");
	});

	test("units: designators, no designator, spellings", () => {
		same(
			"7009 E CAMELBACK RD #12",
			"7009 E Camelback Rd Unit 12",
			"7009 E Camelback Rd #12",
			"7009 E Camelback Rd # 12",
		);
		same(
			"7009 E CAMELBACK RD #12",
			"7009 E Camelback Rd Apt 12",
			"7009 E Camelback Rd Ste 012",
			"7009 E Camelback Rd, Unit 12",
		);
		same(
			"4201 N 55TH AVE #112",
			"4201 N 55th Ave 112",
			"4201 N 55th Ave #112",
			"4201 N 55th Ave Unit No. 112",
		);
		same(
			"4201 N 55TH AVE #312",
			"4201 N 55th Ave Unit No. 312",
			"4201 N 55th Ave Unit Number 312",
			"4201 N 55th Ave Apt #312",
		);
		same(
			"7009 E CAMELBACK RD #A3",
			"7009 E Camelback Rd #A-3",
			"7009 E Camelback Rd Unit A3",
			"7009 E Camelback Rd Unit 3 Bldg A",
			"7009 E Camelback Rd Bldg A Unit 3",
		);
		same("7009 E CAMELBACK RD #12B", "7009 E Camelback Rd #12-B", "7009 E Camelback Rd Unit 12B");
	});

	test("building + unit never collapse into another unit", () => {
		const a = normalizeStreet("7009 E Camelback Rd Bldg 1 Unit 23");
		const b = normalizeStreet("7009 E Camelback Rd Bldg 12 Unit 3");
		const c = normalizeStreet("7009 E Camelback Rd Unit 123");
		const d = normalizeStreet("7009 E Camelback Rd Unit 12 Bldg 3");
		assert.equal(a, "7009 E CAMELBACK RD #1-23");
		assert.equal(b, "7009 E CAMELBACK RD #12-3");
		assert.equal(c, "7009 E CAMELBACK RD #123");
		assert.equal(d, "7009 E CAMELBACK RD #3-12");
		assert.equal(new Set([a, b, c, d]).size, 4);
		assert.equal(normalizeStreet("7009 E Camelback Rd Building 3 Apt 12"), d);
	});

	test("house numbers: fractions, letters, ranges", () => {
		same("1014 1/2 N 2ND ST", "1014 1/2 N 2nd St", "1014-1/2 N 2nd St", "1014½ N 2nd St", "1014 ½ N 2nd St");
		assert.notEqual(normalizeStreet("1014 1/2 N 2nd St"), normalizeStreet("1014 N 2nd St"));
		same("618 1/2 W ROOSEVELT ST", "618½ W Roosevelt St");
		same(
			"1521 W MCDOWELL RD #B",
			"1521-B W McDowell Rd",
			"1521B W McDowell Rd",
			"1521 W McDowell Rd Unit B",
			"1521 W McDowell Rd B",
		);
		same("4501 N 55TH AVE", "4501-4503 N 55th Ave");
		assert.ok(addressKey("1521-B W Mc Dowell Rd", "85018"));
		assert.ok(addressKey("4501-4503 N 55th Ave", "85031"));
	});

	test("ZIP and ZIP+4 in every common spelling", () => {
		for (const z of [
			"85018",
			"85018-1234",
			"850181234",
			"85018.",
			" 85018 ",
			"85018 1234",
			"AZ85018",
			"AZ 85018",
		])
			assert.equal(normalizeZip(z), "85018", z);
		for (const z of ["8501", "850181", "", "ABCDE", null, undefined])
			assert.equal(normalizeZip(z), null, String(z));
		const lines = [
			"1521 W McDowell Rd Phoenix AZ85018",
			"1521 W McDowell Rd, Phoenix, AZ 85018.",
			"1521 W McDowell Rd Phoenix AZ 850181234",
			"1521 W McDowell Rd Phoenix AZ 85018 1234",
			"1521 W McDowell Rd, Phoenix, Arizona 85018-1234, USA",
		];
		for (const line of lines) {
			const p = parseAddress(line)!;
			assert.equal(p.zip, "85018", line);
			assert.equal(p.city, "PHOENIX", line);
			assert.equal(p.state, "AZ", line);
			assert.equal(p.name, "MCDOWELL", line);
			assert.equal(p.unit, null, line);
		}
	});

	test("Maricopa places, with commas or without", () => {
		const cases: [string, string, string][] = [
			["22 W Anthem Way Anthem AZ 85086", "ANTHEM", "22 W ANTHEM WAY"],
			["27000 W Jomax Rd Wittmann AZ 85361", "WITTMANN", "27000 W JOMAX RD"],
			["50000 W US Hwy 60 Aguila AZ 85320", "AGUILA", "50000 W US HIGHWAY 60"],
			["9839 W Sun City Blvd SUN CITY WEST 85375", "SUN CITY WEST", "9839 W SUN CITY BLVD"],
			["4201 N 55th Ave 112 Glendale AZ 85031", "GLENDALE", "4201 N 55TH AVE #112"],
			["7009 E Camelback Rd Unit 12 Scottsdale AZ 85251", "SCOTTSDALE", "7009 E CAMELBACK RD #12"],
			["1234 W Foo Rd Somewhere AZ 85000", "SOMEWHERE", "1234 W FOO RD"],
			["100 W SR-85, Buckeye, AZ 85326", "BUCKEYE", "100 W STATE ROUTE 85"],
		];
		for (const [line, city, street] of cases) {
			const p = parseAddress(line)!;
			assert.equal(p.city, city, line);
			assert.equal(
				normalizeStreet(
					[p.number, p.predir, p.name, p.suffix, p.postdir].filter(Boolean).join(" ") +
						(p.unit ? ` #${p.unit}` : ""),
				),
				street,
				line,
			);
		}
		assert.equal(normalizeCity("Ft McDowell"), "FORT MCDOWELL");
		assert.equal(normalizeCity(" phoenix "), "PHOENIX");
	});

	test("a key needs a house number and a ZIP, and says why when it has none", () => {
		assert.equal(addressKey("4027 N 55th Ave", "85031-2201"), "4027 N 55TH AVE|85031");
		assert.equal(addressKey("N 55th Ave", "85031"), null);
		assert.match(addressKeyProblem("N 55th Ave", "85031")!, /house number/);
		assert.match(addressKeyProblem("4027 N 55th Ave", null)!, /ZIP/);
		assert.equal(addressKeyProblem("4027 N 55th Ave", "85031"), null);
	});
});

describe("sandbox listings in the harder kinds (ground truth)", () => {
	const plain = generateWorld({ zips: ["85031", "85033", "85008"], parcelsPerZip: 800, listingShare: 0.3 });
	const hard = generateWorld({
		zips: ["85031", "85033", "85008"],
		parcelsPerZip: 800,
		listingShare: 0.3,
		addressKindShare: 0.6,
	});

	test("the kinds move nothing else of the world", () => {
		assert.deepEqual(
			hard.parcels.map((p) => p.situsAddress),
			plain.parcels.map((p) => p.situsAddress),
		);
		assert.deepEqual(
			hard.listings.map((l) => [l.mlsId, l.apn, l.price]),
			plain.listings.map((l) => [l.mlsId, l.apn, l.price]),
		);
		assert.ok(plain.listings.every((l) => l.addressKind === undefined));
	});

	test("every listing, whatever its kind, keys to its parcel through the MLS line parser", () => {
		const kinds = new Set<string>();
		for (const l of hard.listings) {
			const p = hard.byApn.get(l.apn)!;
			const line = parseAddressLine(l.fullAddress)!;
			assert.equal(
				addressKey(line.street, line.zip),
				addressKey(p.situsAddress, p.zip),
				`${l.addressKind}: ${l.fullAddress} vs ${p.situsAddress}`,
			);
			if (l.addressKind) kinds.add(l.addressKind);
		}
		assert.ok(kinds.size >= 8, [...kinds].join(", "));
	});
});
