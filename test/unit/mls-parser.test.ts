import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { generateWorld, type Listing } from "../../sandbox/generator.ts";
import { listingFacts, type MlsSite, startMlsSite } from "../../sandbox/mls-site.ts";
import { compileFieldConfig, FieldConfigError, loadFieldConfig } from "../../src/mls/fields.ts";
import { convertValue, parseAddressLine, parseListingPage, parseSearchPage } from "../../src/mls/parser.ts";

const FIELDS_FILE = resolve(import.meta.dirname, "../../config/mls-fields.json");
const cfg = loadFieldConfig(FIELDS_FILE);

/** Parses sandbox-generated HTML: the MLS simulator serves it over loopback with defences off. */
describe("mls parser on sandbox pages", () => {
	let site: MlsSite;
	const get = async (path: string) => {
		const res = await fetch(new URL(path, site.url));
		return res.text();
	};
	before(async () => {
		const world = generateWorld({ seed: 7, zips: ["85031"], parcelsPerZip: 300, listingShare: 0.2 });
		site = await startMlsSite({
			world,
			pageSize: 7,
			jsRenderedShare: 0.3,
			defences: { direct: "allow", rateLimit: null },
		});
	});
	after(() => site.close());

	test("search pages list every listing of the ZIP across pages", async () => {
		const expected = site.listingIds("85031");
		assert.ok(expected.length > 14, "world has several pages of listings");
		const seen: string[] = [];
		let url: string | null = new URL("/simple-search/?q=85031&page=1", site.url).toString();
		while (url) {
			const page = parseSearchPage(await get(url), url, cfg);
			for (const card of page.cards) {
				assert.match(card.url, /\/mls\/.+-mls_\d+\/$/);
				assert.ok(card.address?.includes("85031"));
				seen.push(card.mlsId);
			}
			url = page.nextUrl;
		}
		assert.deepEqual(seen, expected);
	});

	test("every markup variant yields the listing's facts; script-filled pages are a failure that asks for a browser", async () => {
		const world = site.world;
		const variantsSeen = new Set<string>();
		let jsPages = 0;
		for (const id of site.listingIds("85031")) {
			const listing = world.listingById.get(id) as Listing;
			const url = new URL(site.detailPath(id), site.url).toString();
			const parsed = parseListingPage(await get(url), url, cfg);
			if (site.isJsRendered(id)) {
				jsPages++;
				assert.deepEqual(parsed, { ok: false, reason: "no-facts", needsScript: true });
				continue;
			}
			variantsSeen.add(site.markupVariant(id));
			assert.ok(parsed.ok, `listing ${id} parsed`);
			const r = parsed.record;
			assert.equal(r.mlsId, id);
			assert.deepEqual(r.address, {
				street: listing.address,
				city: listing.city,
				state: "AZ",
				zip: listing.zip,
			});
			assert.equal(r.price, listing.price);
			assert.equal(r.status, listing.status);
			assert.equal(r.listDate, listing.listDate);
			assert.equal(r.beds, listing.beds);
			assert.equal(r.fullBaths, listing.fullBaths);
			assert.equal(r.halfBaths, listing.halfBaths);
			assert.equal(r.sqft, listing.sqft);
			assert.ok(Math.abs((r.lotSqft ?? 0) - listing.lotSqft) <= 250, `lot ${r.lotSqft} ~ ${listing.lotSqft}`);
			assert.equal(r.yearBuilt, listing.yearBuilt);
			assert.equal(r.garageSpaces, listing.garageSpaces);
			assert.equal(r.pool, listing.pool);
			assert.equal(r.hoaFee, listing.hoaFee);
			assert.equal(r.propertyType, listing.propertyType);
			assert.equal(r.description, listing.description);
			assert.deepEqual(
				r.photos,
				listing.photoIds.map((p) => `https://cdn.photos.sparkplatform.com/az/${p}-o.jpg`),
			);
			assert.equal(parsed.extra.sewer, listing.sewer);
			const facts = listingFacts(listing, false).length - 1; // MLS # is an id, not a fact
			assert.equal(parsed.facts, facts);
		}
		assert.deepEqual([...variantsSeen].sort(), ["dl", "table", "text"]);
		assert.ok(jsPages > 0, "some pages are script-filled");
	});

	test("a page without facts and without script is a plain parse failure", () => {
		const html = "<html><body><h1>1 N 1ST ST, Phoenix, AZ 85031</h1><p>Nothing here</p></body></html>";
		assert.deepEqual(parseListingPage(html, "http://x/mls/a-mls_1234567/", cfg), {
			ok: false,
			reason: "no-facts",
			needsScript: false,
		});
	});
});

describe("mls value conversion and config", () => {
	test("values convert by type, unreadable ones are null", () => {
		assert.equal(convertValue("money", "$1,234,500"), 1234500);
		assert.equal(convertValue("money", "$85 / Month"), 85);
		assert.equal(convertValue("money", "None"), 0);
		assert.equal(convertValue("int", "2,014"), 2014);
		assert.equal(convertValue("int", "many"), null);
		assert.equal(convertValue("acres", "0.18 Acres"), 0.18);
		assert.equal(convertValue("status", "pending"), "Pending");
		assert.equal(convertValue("status", "Lost"), null);
		assert.equal(convertValue("date", "02/03/2026"), "2026-02-03");
		assert.equal(convertValue("text", "  Private  "), "Private");
	});

	test("address lines split into street, city, state and ZIP", () => {
		assert.deepEqual(parseAddressLine("5219 W EL CAMINITO Drive, Glendale, AZ 85302"), {
			street: "5219 W EL CAMINITO Drive",
			city: "Glendale",
			state: "AZ",
			zip: "85302",
		});
		assert.equal(parseAddressLine("   "), null);
	});

	test("address lines without commas: city, state and ZIP are not left in the street", () => {
		const cases: [string, { street: string; city: string | null; zip: string | null }][] = [
			["4027 N 55th Ave Phoenix AZ 85031", { street: "4027 N 55th Ave", city: "Phoenix", zip: "85031" }],
			[
				"1521-B W Mc Dowell Rd Phoenix AZ85018",
				{ street: "1521-B W Mc Dowell Rd", city: "Phoenix", zip: "85018" },
			],
			[
				"4501 N 55th Ave 112 Glendale AZ 850311234.",
				{ street: "4501 N 55th Ave 112", city: "Glendale", zip: "85031" },
			],
			[
				"9839 W Sun City Blvd Sun City West AZ 85375-1234",
				{ street: "9839 W Sun City Blvd", city: "Sun City West", zip: "85375" },
			],
			["22 W Anthem Way, Anthem AZ 85086", { street: "22 W Anthem Way", city: "Anthem", zip: "85086" }],
			[
				"7009 E Camelback Rd Unit 12, Scottsdale, Arizona 85251",
				{ street: "7009 E Camelback Rd Unit 12", city: "Scottsdale", zip: "85251" },
			],
			[
				"27000 W Jomax Rd Wittmann, AZ 85361 USA",
				{ street: "27000 W Jomax Rd", city: "Wittmann", zip: "85361" },
			],
		];
		for (const [line, want] of cases) {
			const got = parseAddressLine(line)!;
			assert.deepEqual({ street: got.street, city: got.city, zip: got.zip }, want, line);
			assert.equal(got.state, "AZ", line);
		}
	});

	test("a bad configuration is refused with a message", () => {
		assert.throws(() => compileFieldConfig({ search: {} }), FieldConfigError);
		const raw = JSON.parse(readFileSync(FIELDS_FILE, "utf8"));
		assert.doesNotThrow(() => compileFieldConfig(raw));
		raw.search.idFromUrl = "(";
		assert.throws(() => compileFieldConfig(raw), /search\.idFromUrl: invalid pattern/);
	});
});
