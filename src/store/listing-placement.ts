/**
 * Where a listing belongs among the properties on its candidate street lines (issue 12): on the
 * parcel its address matches best, else under its address key waiting for its parcel, else
 * unmatched under its own key with the reason. Pure: the write paths read the properties and act
 * on the answer (listing-merge.ts).
 */
import {
	type ListingAddress,
	listingAddress,
	type ParcelCandidate,
	resolveListing,
} from "../domain/matching.ts";
import { addressPropertyKey, type PropertyDoc, sourceKey, unmatchedPropertyKey } from "../domain/property.ts";
import type { Contribution } from "../domain/property-fields.ts";
import type { AssessorParcelRecord, MlsListingRecord } from "../domain/records.ts";
import { unmatchedReason } from "./merge-rules.ts";

export type Placement =
	| { kind: "parcel"; doc: PropertyDoc; method: "address" | "candidate"; confidence: number; reason: string }
	| { kind: "address" }
	| { kind: "unmatched"; confidence: number; reason: string };

export function addressOfListing(c: Pick<Contribution, "record">): ListingAddress {
	const address = (c.record as MlsListingRecord).address;
	return listingAddress(address?.street, address?.zip);
}

/** A parcel property as a candidate for `listing`: its address, its other listings' addresses, its facts. */
function candidateOf(doc: PropertyDoc, listing: string): ParcelCandidate {
	const parcel = doc.contributions.find((c) => c.source === "maricopa")?.record as
		| AssessorParcelRecord
		| undefined;
	const otherKeys = doc.contributions
		.filter((c) => c.source !== "maricopa" && sourceKey(c.source, c.sourceId) !== listing)
		.map((c) => addressOfListing(c).key)
		.filter((k): k is string => !!k && k !== doc.addressKey);
	return {
		id: doc._id,
		addressKey: doc.addressKey,
		street: doc.street,
		zip: doc.zip,
		otherKeys,
		facts: {
			sqft: parcel?.facts?.livableSpace,
			yearBuilt: parcel?.facts?.constructionYear,
			lotSqft: parcel?.facts?.lotSize,
		},
	};
}

/** Where a listing belongs among `docs` (the properties on its candidate street lines). */
export function placementOf(input: Contribution, a: ListingAddress, docs: PropertyDoc[]): Placement {
	if (!a.key) {
		return {
			kind: "unmatched",
			confidence: 0,
			reason: unmatchedReason(input) ?? "listing address cannot be keyed",
		};
	}
	const r = input.record as MlsListingRecord;
	const skey = sourceKey(input.source, input.sourceId);
	const parcels = docs.filter((d) => d.apn);
	const res = resolveListing(
		a,
		{ sqft: r.sqft, yearBuilt: r.yearBuilt, lotSqft: r.lotSqft },
		parcels.map((d) => candidateOf(d, skey)),
	);
	if (res.kind === "matched") {
		const doc = parcels.find((d) => d._id === res.id)!;
		return { kind: "parcel", doc, method: res.method, confidence: res.confidence, reason: res.reason };
	}
	if (res.kind === "none") return { kind: "address" };
	return { kind: "unmatched", confidence: res.confidence, reason: res.reason };
}

/** The listing `c`, held by `doc`, is where `place` puts it. */
export function isPlaced(c: Contribution, doc: PropertyDoc, place: Placement): boolean {
	if (place.kind === "parcel") return place.doc._id === doc._id;
	if (place.kind === "address") {
		const a = addressOfListing(c);
		return !doc.apn && !!a.key && doc.key === addressPropertyKey(a.key);
	}
	return doc.key === unmatchedPropertyKey(c.source, c.sourceId);
}

/** Each property once (first seen wins), nulls left out. */
export function uniqueDocs(docs: (PropertyDoc | null | undefined)[]): PropertyDoc[] {
	const byId = new Map<string, PropertyDoc>();
	for (const d of docs) if (d && !byId.has(d._id)) byId.set(d._id, d);
	return [...byId.values()];
}
