/**
 * Data quality of the stored properties, computed from the public property documents that
 * `properties.find` pages out (by key), so a script gets the same figures the dashboard shows:
 *
 * - completeness of each field by source: among the properties a source contributed to, the share
 *   where each field that source provides is filled (the assessor's parcel facts, the MLS's listing
 *   facts);
 * - the share of properties described by both sources (an MLS listing merged into its parcel);
 * - match confidence of those merged properties: the share of the checks that agree, over the checks
 *   that can be made — the property is keyed by a parcel number (the listing joined a real parcel),
 *   it has a normalized address key, and the listing's living area is within 10% of the assessor's
 *   (when both are known). Buckets: < 0.5, 0.5–0.8, 0.8–0.95, ≥ 0.95.
 * Pure: rows in, figures out.
 */

/** Fields each source fills on the canonical property (src/domain/property.ts precedence). */
export const FIELDS_BY_SOURCE: Readonly<Record<string, readonly string[]>> = {
	maricopa: [
		"apn",
		"street",
		"city",
		"zip",
		"propertyType",
		"subdivision",
		"useCode",
		"lat",
		"long",
		"lotSize",
		"livableSpace",
		"constructionYear",
		"pool",
		"garages",
		"owner",
		"valuation",
	],
	mls: [
		"mlsId",
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
	],
};

export const CONFIDENCE_BUCKETS = ["<0.5", "0.5-0.8", "0.8-0.95", ">=0.95"] as const;

export interface PropertyRowLike {
	key?: string;
	apn?: string | null;
	addressKey?: string | null;
	sqft?: number | null;
	livableSpace?: number | null;
	sources?: { source: string }[];
	enrichment?: unknown;
	[field: string]: unknown;
}

export interface DataQuality {
	/** Properties looked at (all of them unless `sampled`). */
	properties: number;
	sampled: boolean;
	bySource: Record<string, { properties: number; fields: Record<string, number> }>;
	bothSources: { count: number; share: number };
	enriched: { count: number; share: number };
	matchConfidence: { buckets: Record<(typeof CONFIDENCE_BUCKETS)[number], number>; mean: number | null };
}

function filled(v: unknown): boolean {
	if (v === null || v === undefined || v === "") return false;
	if (Array.isArray(v)) return v.length > 0;
	return true;
}

/** Confidence of a merged property's match (see the module comment), 0..1. */
export function matchConfidence(p: PropertyRowLike): number {
	const checks: boolean[] = [
		typeof p.key === "string" && !p.key.startsWith("addr:") && filled(p.apn),
		filled(p.addressKey),
	];
	if (typeof p.sqft === "number" && typeof p.livableSpace === "number" && p.livableSpace > 0) {
		checks.push(Math.abs(p.sqft - p.livableSpace) / p.livableSpace <= 0.1);
	}
	return checks.filter(Boolean).length / checks.length;
}

export class DataQualityAccumulator {
	#properties = 0;
	#both = 0;
	#enriched = 0;
	#confidenceSum = 0;
	readonly #buckets = Object.fromEntries(
		CONFIDENCE_BUCKETS.map((b) => [b, 0]),
	) as DataQuality["matchConfidence"]["buckets"];
	readonly #bySource = new Map<string, { properties: number; fields: Map<string, number> }>();

	add(rows: PropertyRowLike[]): void {
		for (const p of rows) {
			this.#properties++;
			const names = new Set(
				(p.sources ?? []).map((s) => (String(s?.source).startsWith("mls") ? "mls" : String(s?.source))),
			);
			if (filled(p.enrichment)) this.#enriched++;
			for (const source of names) {
				let s = this.#bySource.get(source);
				if (!s) {
					s = { properties: 0, fields: new Map((FIELDS_BY_SOURCE[source] ?? []).map((f) => [f, 0])) };
					this.#bySource.set(source, s);
				}
				s.properties++;
				for (const f of s.fields.keys()) if (filled(p[f])) s.fields.set(f, (s.fields.get(f) ?? 0) + 1);
			}
			if (names.has("mls") && names.size > 1) {
				this.#both++;
				const c = matchConfidence(p);
				this.#confidenceSum += c;
				const bucket = c < 0.5 ? "<0.5" : c < 0.8 ? "0.5-0.8" : c < 0.95 ? "0.8-0.95" : ">=0.95";
				this.#buckets[bucket]++;
			}
		}
	}

	result(sampled: boolean): DataQuality {
		const share = (n: number, of: number) => (of > 0 ? Math.round((n / of) * 10_000) / 10_000 : 0);
		const bySource: DataQuality["bySource"] = {};
		for (const [source, s] of [...this.#bySource].sort(([a], [b]) => a.localeCompare(b))) {
			bySource[source] = {
				properties: s.properties,
				fields: Object.fromEntries([...s.fields].map(([f, n]) => [f, share(n, s.properties)])),
			};
		}
		return {
			properties: this.#properties,
			sampled,
			bySource,
			bothSources: { count: this.#both, share: share(this.#both, this.#properties) },
			enriched: { count: this.#enriched, share: share(this.#enriched, this.#properties) },
			matchConfidence: {
				buckets: { ...this.#buckets },
				mean: this.#both > 0 ? Math.round((this.#confidenceSum / this.#both) * 1000) / 1000 : null,
			},
		};
	}
}
