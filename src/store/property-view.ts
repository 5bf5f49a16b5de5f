/**
 * A property as the store's actions answer it: its fields, no per-source contributions (internal),
 * its history on request.
 */
import type { PropertyDoc } from "../domain/property.ts";

/** The fields actions return (also moleculer-db's `fields` setting for its generic reads). */
export const PROPERTY_FIELDS_OUT: (keyof PropertyDoc)[] = [
	"_id",
	"key",
	"apn",
	"apnDisplay",
	"street",
	"city",
	"state",
	"zip",
	"addressKey",
	"propertyType",
	"subdivision",
	"mcr",
	"useCode",
	"zoning",
	"isRental",
	"lat",
	"long",
	"lotSize",
	"livableSpace",
	"constructionYear",
	"bathFixtures",
	"pool",
	"garages",
	"carports",
	"exteriorWalls",
	"roofType",
	"owner",
	"valuation",
	"valuations",
	"mlsId",
	"mlsIds",
	"price",
	"status",
	"listDate",
	"beds",
	"fullBaths",
	"halfBaths",
	"sqft",
	"hoaFee",
	"photos",
	"description",
	"listingUrl",
	"sources",
	"version",
	"createdAt",
	"updatedAt",
	"changedAt",
	"enrichment",
	"match",
	"matchLog",
];

/** A property as actions return it: no per-source contributions (internal), history on request. */
export function publicProperty(doc: PropertyDoc, withHistory = false): Record<string, unknown> {
	const out: Record<string, unknown> = {};
	for (const f of PROPERTY_FIELDS_OUT) out[f] = doc[f];
	if (withHistory) out.history = doc.history;
	return out;
}
