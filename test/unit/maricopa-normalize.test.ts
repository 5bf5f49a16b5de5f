/** Assessor answers: classification (fatal, not found, HTML, malformed, 429) and normalization. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type HttpAnswer, retryAfterMs } from "../../src/core/http.ts";
import { classifyApiAnswer } from "../../src/maricopa/api-client.ts";
import { classifyGisAnswer } from "../../src/maricopa/gis-client.ts";
import {
	DEFAULT_GIS_FIELDS,
	parseGisPage,
	parseNumber,
	parseParcelDetail,
	parseSearchPage,
	parseUsDate,
	propertyTypeFromUseCode,
} from "../../src/maricopa/normalize.ts";

const answer = (a: Partial<HttpAnswer>): HttpAnswer => ({
	status: 200,
	statusText: "OK",
	contentType: "application/json; charset=utf-8",
	body: "{}",
	retryAfter: null,
	...a,
});

const DETAIL = {
	MCR: "6706",
	PropertyAddress: "4027 N 55TH AVE PHOENIX 85031",
	LotSize: "6534",
	IsResidential: true,
	SubdivisionName: "MARYVALE TERRACE  3 AMD",
	PropertyType: "Residential",
	PropertyUseCode: "0131",
	Zoning: "R1-6",
	IsRental: false,
	Owner: {
		Ownership: "GARCIA JOSE",
		MailingAddress1: "4027 N 55TH AVE",
		MailingCity: "PHOENIX",
		MailingState: "AZ",
		MailingZip: "85031",
		DeedDate: "02/12/2015",
		DeedType: "WD",
		SalePrice: "153000",
		SaleDate: "01/2015",
	},
	Geo: { lat: 33.4937, long: -112.1823 },
	Valuations: [
		{
			TaxYear: "2026",
			FullCashValue: "241900",
			LimitedPropertyValue: "135279      ",
			LegalClassificationCode: "3.1 ",
			AssessedFCV: "24190",
			AssessedLPV: "13528",
		},
	],
	ResidentialPropertyData: {
		ConstructionYear: "1959",
		LotSize: "6534",
		LivableSpace: "1248",
		Pool: false,
		BathFixtures: "6",
		NumberOfGarages: "0",
		NumberOfCarports: "1",
	},
};

describe("Assessor answer classification", () => {
	test("the Unauthorized answer (HTTP 500 + reason phrase) is fatal", () => {
		const c = classifyApiAnswer(
			answer({
				status: 500,
				statusText: "[search]:Unauthorized access! Please contact support.",
				contentType: "text/html",
				body: "",
			}),
			true,
			() => 1,
		);
		assert.equal(c.attempt.kind, "fatal");
		assert.equal(c.outcome, "unauthorized");
	});

	test("a plain 500 is transient; 404 on a parcel is 'not found'; 429 carries Retry-After", () => {
		assert.equal(
			classifyApiAnswer(answer({ status: 500, statusText: "Internal Server Error" }), true, () => 1).attempt
				.kind,
			"transient",
		);
		const nf = classifyApiAnswer(answer({ status: 404, body: "", contentType: "text/html" }), true, () => 1);
		assert.deepEqual(nf.attempt, { kind: "ok", value: null });
		const limited = classifyApiAnswer(answer({ status: 429, retryAfter: "3" }), true, () => 1).attempt;
		assert.equal(limited.kind, "rate-limited");
		assert.equal(limited.kind === "rate-limited" && limited.retryAfterMs, 3000);
		assert.equal(retryAfterMs(new Date(Date.now() + 5000).toUTCString())! > 3000, true);
	});

	test("HTML where JSON was expected fails; malformed JSON is a transient failure", () => {
		const html = classifyApiAnswer(
			answer({ contentType: "text/html", body: "<html></html>" }),
			true,
			() => 1,
		);
		assert.equal(html.attempt.kind, "failed");
		assert.equal(html.outcome, "html");
		const truncated = classifyApiAnswer(answer({ body: '{"TOTAL":3,"Resu' }), false, parseSearchPage);
		assert.equal(truncated.attempt.kind, "transient");
		assert.equal(truncated.outcome, "malformed");
		const shape = classifyApiAnswer(answer({ body: '{"TOTAL":"x"}' }), false, parseSearchPage);
		assert.equal(shape.attempt.kind, "failed");
	});

	test("GIS errors inside HTTP 200", () => {
		const bad = classifyGisAnswer(parseGisPage)(
			answer({ body: '{"error":{"code":400,"message":"Unable","details":["bad where"]}}' }),
		);
		assert.equal(bad.attempt.kind, "failed");
		const down = classifyGisAnswer(parseGisPage)(answer({ body: '{"error":{"code":500,"message":"busy"}}' }));
		assert.equal(down.attempt.kind, "transient");
	});

	test("GIS field names are configuration: another layer's names read the same facts", () => {
		const attributes = {
			APN: "10306005",
			SITUS: "4027 N 55TH AVE",
			ZIP5: "85031",
			USE_CODE: "0131",
			LAND_SQF: "6,534",
			YR_BLT: "1959",
		};
		const fields = {
			...DEFAULT_GIS_FIELDS,
			address: "SITUS",
			zip: "ZIP5",
			useCode: "USE_CODE",
			lotSize: "LAND_SQF",
			constructionYear: "YR_BLT",
			owner: null,
		};
		const page = parseGisPage({ features: [{ attributes }] }, fields);
		const row = page.rows[0]!;
		assert.equal(row.propertyType, "RESIDENTIAL");
		assert.equal(row.record.address?.zip, "85031");
		assert.equal(row.record.facts?.lotSize, 6534);
		assert.equal(row.record.facts?.constructionYear, 1959);
		// With the default names nothing but the APN is found: no type, no facts.
		const blind = parseGisPage({ features: [{ attributes }] }).rows[0]!;
		assert.equal(blind.propertyType, null);
		assert.equal(blind.record.address, undefined);
	});
});

describe("Assessor normalization", () => {
	test("numbers as strings, padded and formatted; US dates", () => {
		assert.equal(parseNumber("135279      "), 135279);
		assert.equal(parseNumber("     241,900"), 241900);
		assert.equal(parseNumber(""), null);
		assert.equal(parseNumber("N/A"), null);
		assert.equal(parseUsDate("02/12/2015"), "2015-02-12");
		assert.equal(parseUsDate("01/2015"), "2015-01");
		assert.equal(propertyTypeFromUseCode("0131"), "RESIDENTIAL");
		assert.equal(propertyTypeFromUseCode("0010"), "VACANT LAND");
		assert.equal(propertyTypeFromUseCode("1100"), "COMMERCIAL");
	});

	test("search rows keep the misspelled SubdivisonName and undashed APNs", () => {
		const page = parseSearchPage({
			TOTAL: 1,
			Results: [
				{
					MCR: "6706",
					SubdivisonName: "MARYVALE TERRACE  3 AMD",
					APN: "10306005",
					Ownership: "GARCIA JOSE",
					SitusAddress: "4027 N 55TH AVE",
					SitusCity: "PHOENIX",
					SitusZip: "85031",
					PropertyType: "RESIDENTIAL",
					RentalID: null,
				},
			],
		});
		assert.equal(page.total, 1);
		assert.equal(page.rows[0]!.apn, "10306005");
		assert.equal(page.rows[0]!.record.subdivision, "MARYVALE TERRACE  3 AMD");
		assert.deepEqual(page.rows[0]!.record.address, {
			street: "4027 N 55TH AVE",
			city: "PHOENIX",
			state: "AZ",
			zip: "85031",
		});
	});

	test("parcel details become a store record", () => {
		const r = parseParcelDetail("103-06-005", DETAIL);
		assert.equal(r.apn, "10306005");
		assert.equal(r.propertyType, "RESIDENTIAL");
		assert.deepEqual(r.valuations, [
			{
				taxYear: 2026,
				fullCashValue: 241900,
				limitedPropertyValue: 135279,
				legalClass: "3.1",
				assessedFcv: 24190,
				assessedLpv: 13528,
			},
		]);
		assert.equal(r.owner?.deedDate, "2015-02-12");
		assert.equal(r.owner?.saleDate, "2015-01");
		assert.equal(r.facts?.livableSpace, 1248);
		assert.equal(r.facts?.bathFixtures, 6);
		assert.equal(r.facts?.pool, false);
		assert.throws(() => parseParcelDetail("10306005", "<html>"), /not an object/);
	});

	test("GIS rows: formatted money, use code to type, paging flag", () => {
		const page = parseGisPage({
			features: [
				{
					attributes: {
						APN: "10306005",
						PHYSICAL_ADDRESS: "4027 N 55TH AVE",
						PHYSICAL_CITY: "PHOENIX",
						PHYSICAL_ZIP: "85031",
						PUC: "0131",
						LAND_SIZE: 6534,
						CONST_YEAR: "1959",
						LIVING_SPACE: 1248,
						FCV_CUR: "     241,900",
						LPV_CUR: "135,279",
						TAX_YR_CUR: "2026",
					},
				},
			],
			exceededTransferLimit: true,
		});
		assert.equal(page.exceededTransferLimit, true);
		const row = page.rows[0]!;
		assert.equal(row.propertyType, "RESIDENTIAL");
		assert.deepEqual(row.record.valuations, [
			{ taxYear: 2026, fullCashValue: 241900, limitedPropertyValue: 135279 },
		]);
		assert.deepEqual(row.record.facts, { lotSize: 6534, livableSpace: 1248, constructionYear: 1959 });
	});
});
