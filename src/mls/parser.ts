/**
 * Parses Phoenix MLS pages by configuration (src/mls/fields.ts): search result pages into listing
 * links, detail pages into MlsListingRecord. Fields are found by their labels ("List Price",
 * "# Bedrooms") wherever the markup puts them: a table row, a definition list, "Label: value" text.
 * A detail page that yields no facts is a failure, never an empty listing; when it carries script,
 * the failure says so, because its facts are probably filled client-side and a browser can read them.
 */
import { type CheerioAPI, load } from "cheerio";
import type { AnyNode } from "domhandler";
import { splitAddressLine } from "../domain/address-line.ts";
import { LISTING_STATUSES, type ListingStatus, type MlsListingRecord } from "../domain/records.ts";
import type { FieldSpec, FieldType, MlsFieldConfig } from "./fields.ts";

export interface SearchCard {
	mlsId: string;
	url: string;
	/** The card's visible address text, when it has one. */
	address: string | null;
}

export interface SearchPage {
	cards: SearchCard[];
	nextUrl: string | null;
}

export type FieldValue = string | number | null;

export type ListingParse =
	| { ok: true; record: MlsListingRecord; facts: number; extra: Record<string, FieldValue> }
	| { ok: false; reason: "no-facts" | "no-id" | "no-address"; needsScript: boolean };

const SPACES = /\s+/g;
const norm = (text: string) => text.replace(SPACES, " ").trim();

export function parseSearchPage(html: string, pageUrl: string, cfg: MlsFieldConfig): SearchPage {
	const $ = load(html);
	const seen = new Map<string, SearchCard>();
	const add = (href: string | undefined, address: string | null) => {
		if (!href) return;
		let url: string;
		try {
			url = new URL(href, pageUrl).toString();
		} catch {
			return;
		}
		const id = cfg.search.idFromUrl.exec(new URL(url).pathname)?.[1];
		if (!id || seen.has(id)) return;
		seen.set(id, { mlsId: id, url, address: address && address.length > 0 ? address : null });
	};
	let found = false;
	for (const selector of cfg.search.cards) {
		const cards = $(selector).filter((_, el) => $(el).find(cfg.search.link).length > 0);
		if (cards.length === 0) continue;
		found = true;
		cards.each((_, card) => {
			const link = $(card).find(cfg.search.link).first();
			const heading = $(card).find("h2, h3, h4, .address").first().text();
			add(link.attr("href"), norm(heading || link.text()));
		});
		break;
	}
	// Markup without recognisable cards: every listing link on the page is a card.
	if (!found) $(cfg.search.link).each((_, a) => add($(a).attr("href"), norm($(a).text())));
	const nextHref = $(cfg.search.next).first().attr("href");
	let nextUrl: string | null = null;
	if (nextHref) {
		try {
			nextUrl = new URL(nextHref, pageUrl).toString();
		} catch {
			nextUrl = null;
		}
	}
	return { cards: [...seen.values()], nextUrl };
}

/** Reads label/value pairs for the configured fields. First match per field wins. */
function readLabelledFields(
	$: CheerioAPI,
	fields: Record<string, FieldSpec>,
	labelTags: string[],
): Record<string, string> {
	const found: Record<string, string> = {};
	const pending = new Set(Object.keys(fields));
	const matchField = (label: string): string | undefined => {
		const clean = label.replace(/[:\s]+$/, "").trim();
		if (clean === "") return undefined;
		for (const name of pending) if (fields[name]!.labels.some((re) => re.test(clean))) return name;
		return undefined;
	};
	const take = (name: string, value: string) => {
		found[name] = value;
		pending.delete(name);
	};
	$(labelTags.join(",")).each((_, el) => {
		if (pending.size === 0) return false;
		const lines = $(el)
			.text()
			.split("\n")
			.map(norm)
			.filter((l) => l !== "");
		if (lines.length === 0) return;
		// "Label" element followed by its value element.
		if (lines.length === 1 && lines[0]!.length <= 80) {
			const name = matchField(lines[0]!);
			if (name) {
				const value = valueAfterLabel($, el, lines[0]!);
				if (value) take(name, value);
				return;
			}
		}
		// "Label: value" text, one pair per line (<br> separated), in elements without nested blocks.
		if ($(el).children().length > 2) return;
		for (const line of lines) {
			const colon = line.indexOf(":");
			if (colon <= 0 || colon > 80) continue;
			const name = matchField(line.slice(0, colon));
			const value = norm(line.slice(colon + 1));
			if (name && value) take(name, value);
		}
		return;
	});
	return found;
}

function valueAfterLabel($: CheerioAPI, el: AnyNode, labelText: string): string {
	const next = $(el).next();
	if (next.length > 0) return norm(next.text());
	const parentText = norm($(el).parent().text());
	const at = parentText.indexOf(labelText);
	if (at < 0) return "";
	return norm(parentText.slice(at + labelText.length).replace(/^\s*:/, ""));
}

function firstText($: CheerioAPI, selectors: string[]): string {
	for (const selector of selectors) {
		const text = norm($(selector).first().text());
		if (text) return text;
	}
	return "";
}

const NONE = /^(none|no|n\/a|na|-|—)$/i;

/** Converts a labelled value to its type; unreadable values are null (absent), never a guess. */
export function convertValue(type: FieldType, raw: string): FieldValue {
	const text = norm(raw);
	if (text === "") return null;
	switch (type) {
		case "money": {
			if (NONE.test(text)) return 0;
			const m = /\$?\s*(\d[\d,]*(?:\.\d+)?)/.exec(text);
			return m ? Math.round(Number(m[1]!.replace(/,/g, ""))) : null;
		}
		case "int": {
			const m = /-?\d[\d,]*/.exec(text);
			if (!m) return NONE.test(text) ? 0 : null;
			const n = Number(m[0].replace(/,/g, ""));
			return Number.isSafeInteger(n) ? n : null;
		}
		case "number": {
			const m = /-?\d[\d,]*(?:\.\d+)?/.exec(text);
			return m ? Number(m[0].replace(/,/g, "")) : null;
		}
		case "acres": {
			const m = /(\d[\d,]*(?:\.\d+)?)\s*(acres?|ac\b|sq\.?\s*ft|sqft)?/i.exec(text);
			if (!m) return null;
			const n = Number(m[1]!.replace(/,/g, ""));
			// "Lot Size: 7,841 SqFt" is square feet, not acres.
			return m[2] && /sq/i.test(m[2]) ? Math.round((n / 43_560) * 10_000) / 10_000 : n;
		}
		case "status": {
			const status = LISTING_STATUSES.find((s) => s.toLowerCase() === text.toLowerCase().split(" ")[0]);
			return status ?? null;
		}
		case "date": {
			let m = /(\d{4})-(\d{2})-(\d{2})/.exec(text);
			if (m) return `${m[1]}-${m[2]}-${m[3]}`;
			m = /(\d{1,2})\/(\d{1,2})\/(\d{4})/.exec(text);
			if (m) return `${m[3]}-${m[1]!.padStart(2, "0")}-${m[2]!.padStart(2, "0")}`;
			return null;
		}
		case "id": {
			const m = /[A-Za-z0-9-]{1,20}/.exec(text);
			return m ? m[0] : null;
		}
		case "text":
			return text.slice(0, 200);
	}
}

/**
 * "5219 W EL CAMINITO Drive, Glendale, AZ 85302" -> street, city, state, zip. Commas or none
 * ("4027 N 55th Ave Phoenix AZ 85031"), ZIP and ZIP+4 in any spelling ("AZ85018", "850181234",
 * "85018."): the last line is found by the address parser (Maricopa places, src/domain/address.ts)
 * and cut off the line as written, so the street keeps the site's spelling.
 */
export function parseAddressLine(line: string): MlsListingRecord["address"] | null {
	const text = norm(line);
	if (!text) return null;
	const split = splitAddressLine(text);
	if (!split) return null;
	const cityWords = split.city ? split.city.split(" ").map(escapeRegExp).join("[\\s.,'-]+") : null;
	const tail = new RegExp(
		`^(.*?)${cityWords ? `[\\s,]+(${cityWords})` : "()"}` +
			"(?:[\\s,]+(AZ|ARIZ|ARIZONA)\\.?)?(?:[\\s,]*(\\d{5})(?:[\\s-]?\\d{4})?)?[\\s.,]*(?:USA?\\.?)?$",
		"i",
	);
	const m = split.city || split.state || split.zip ? tail.exec(text) : null;
	const street = (m?.[1] ?? "").replace(/[\s,]+$/, "");
	return {
		street: street || split.street,
		city: m?.[2] || split.city,
		state: (m?.[3] ? "AZ" : null) ?? split.state ?? "AZ",
		zip: split.zip,
	};
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function photoUrls(html: string, cfg: MlsFieldConfig): string[] {
	const ids = new Set<string>();
	for (const m of html.matchAll(cfg.listing.photos.pattern)) if (m[1]) ids.add(m[1]);
	return [...ids].map((id) => cfg.listing.photos.urlTemplate.replace("{id}", id));
}

export function parseListingPage(html: string, pageUrl: string, cfg: MlsFieldConfig): ListingParse {
	const $ = load(html);
	const hasScript = $("script").filter((_, s) => norm($(s).text()) !== "" || !!$(s).attr("src")).length > 0;
	$("script, style, noscript, template").remove();
	$("br").replaceWith("\n");
	const raw = readLabelledFields($, cfg.listing.fields, cfg.listing.labelTags);
	const values: Record<string, FieldValue> = {};
	let facts = 0;
	for (const [name, spec] of Object.entries(cfg.listing.fields)) {
		const value = raw[name] === undefined ? null : convertValue(spec.type, raw[name]);
		values[name] = value;
		if (spec.fact && value !== null) facts++;
	}
	if (facts === 0) return { ok: false, reason: "no-facts", needsScript: hasScript };
	const mlsId =
		(typeof values.mlsId === "string" ? values.mlsId : null) ??
		cfg.search.idFromUrl.exec(new URL(pageUrl).pathname)?.[1] ??
		null;
	if (!mlsId) return { ok: false, reason: "no-id", needsScript: hasScript };
	const address = parseAddressLine(firstText($, cfg.listing.address));
	if (!address) return { ok: false, reason: "no-address", needsScript: hasScript };
	let description = firstText($, cfg.listing.description.selectors);
	if (!description) {
		const d = readLabelledFields(
			$,
			{ description: { labels: cfg.listing.description.labels, type: "text", fact: false } },
			cfg.listing.labelTags,
		);
		description = d.description ?? "";
	}
	const num = (k: string) => (typeof values[k] === "number" ? (values[k] as number) : undefined);
	const str = (k: string) => (typeof values[k] === "string" ? (values[k] as string) : undefined);
	const lotAcres = num("lotAcres");
	const record: MlsListingRecord = {
		mlsId,
		address,
		url: pageUrl,
		photos: photoUrls(html, cfg),
	};
	const set = <K extends keyof MlsListingRecord>(key: K, value: MlsListingRecord[K] | undefined) => {
		if (value !== undefined && value !== null) record[key] = value;
	};
	set("price", num("price"));
	set("status", str("status") as ListingStatus | undefined);
	set("listDate", str("listDate"));
	set("beds", num("beds"));
	set("fullBaths", num("fullBaths"));
	set("halfBaths", num("halfBaths"));
	set("sqft", num("sqft"));
	set("lotSqft", num("lotSqft") ?? (lotAcres !== undefined ? Math.round(lotAcres * 43_560) : undefined));
	set("yearBuilt", num("yearBuilt"));
	set("garageSpaces", num("garageSpaces"));
	set("pool", str("pool"));
	set("hoaFee", num("hoaFee"));
	set("propertyType", str("propertyType"));
	if (description) record.description = description.slice(0, 20_000);
	const known = new Set([
		"mlsId",
		"price",
		"status",
		"listDate",
		"beds",
		"fullBaths",
		"halfBaths",
		"sqft",
		"lotSqft",
		"yearBuilt",
		"garageSpaces",
		"pool",
		"hoaFee",
		"propertyType",
		"lotAcres",
	]);
	const extra: Record<string, FieldValue> = {};
	for (const [k, v] of Object.entries(values)) if (!known.has(k) && v !== null) extra[k] = v;
	if (lotAcres !== undefined) extra.lotAcres = lotAcres;
	return { ok: true, record, facts, extra };
}
