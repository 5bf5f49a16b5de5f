/**
 * The canonical property: one per real-world parcel, merged from every source that described it.
 *
 * A property document keeps each source's latest record (`contributions`) and derives its fields
 * from them with a fixed per-field source precedence (assessor for parcel facts, MLS for price,
 * status, beds, photos, description). Deriving from contributions, rather than patching fields in
 * arrival order, makes a merge order-independent and idempotent: the same records give the same
 * document whichever node wrote them first and however often they were re-collected.
 * The fields themselves are derived in property-fields.ts. Pure: no I/O, no clock (the caller passes `now`).
 */
import { addressKey } from "./address.ts";
import { normalizeApn } from "./apn.ts";
import {
	type Contribution,
	deriveFields,
	type PropertyFields,
	TRACKED_FIELDS,
	type TrackedField,
	trackedValue,
} from "./property-fields.ts";
import type { AssessorParcelRecord, MlsListingRecord, PropertySource } from "./records.ts";

export interface HistoryEntry {
	field: TrackedField;
	from: string | number | null;
	to: string | number | null;
	source: PropertySource;
	sourceId: string;
	/** When the record carrying the change was collected (ISO). */
	at: string;
}

/** History kept per property; the oldest entries go first past this (decades of price changes). */
export const HISTORY_LIMIT = 500;

/** An LLM's (or the rules fallback's) reading of a property (shared/contracts/llm.md). */
export interface EnrichmentContent {
	description: string;
	key_features: string[];
	investment_analysis: {
		/** USD per month. */
		rental_estimate: number;
		/** Percent, e.g. 5.4. */
		cap_rate: number;
		market_trend: "rising" | "stable" | "cooling";
		recommendation: "buy" | "hold" | "pass";
	};
	/** 0..1 */
	quality_score: number;
}

export type EnrichmentSource = "llm" | "cache" | "rules";

export interface PropertyEnrichment extends EnrichmentContent {
	processing: {
		/** Model the answer came from ("rules" for the fallback). */
		llm_model: string;
		tokens_used: number;
		processing_time_ms: number;
		source: EnrichmentSource;
		/** Hash of the facts, model and prompt version the enrichment was made from. */
		inputHash: string;
		/** ISO time. */
		enrichedAt: string;
	};
}

export interface SourceRef {
	source: PropertySource;
	sourceId: string;
	collectedAt: string;
}

/**
 * How the property's newest listing found it: by the exact address key, by a candidate (same house
 * number and street in a neighbouring ZIP, a unit variant...), or not at all (an unmatched listing,
 * stored under its own key with the reason, retried later). Confidence 0..1.
 */
export interface MatchInfo {
	method: "address" | "candidate" | "unmatched";
	confidence: number;
	/** ISO time of the merge that matched it. */
	at: string;
	/** Which candidate rule matched, or why nothing did. */
	reason?: string;
}

/** A listing joining or leaving the property: the history of its placements (issue 12). */
export interface MatchLogEntry {
	/** "mls:6937912". */
	listing: string;
	event: "joined" | "left";
	/** Where it came from (joined) or went to (left): a property key, null for a new listing. */
	other: string | null;
	method: MatchInfo["method"];
	confidence: number;
	reason?: string;
	at: string;
}

/** Placements kept per property; the oldest go first past this. */
export const MATCH_LOG_LIMIT = 100;

export interface PropertyDoc extends PropertyFields {
	_id: string;
	/** Canonical key: the APN when known, else "addr:" + address key. */
	key: string;
	/**
	 * Unique claim on an address: the address key for the first property at that address (so a
	 * listing and its parcel written at the same moment cannot both create a property), or "#" + key.
	 */
	claim: string;
	sources: SourceRef[];
	/** "source:sourceId" of every contribution, indexed to find a record's property again. */
	sourceKeys: string[];
	contributions: Contribution[];
	history: HistoryEntry[];
	/** Optimistic-concurrency version: every write is conditional on the version it read. */
	version: number;
	createdAt: string;
	updatedAt: string;
	/** Last change of a tracked field (or creation). */
	changedAt: string;
	/** Written by the llm service (`properties.setEnrichment`); kept across merges. */
	enrichment?: PropertyEnrichment;
	/** How its listing was matched (absent on a parcel no listing joined). */
	match?: MatchInfo;
	/** Listings that joined or left it, how and when (a wrong merge split, a twin folded). */
	matchLog?: MatchLogEntry[];
}

export function sourceKey(source: string, sourceId: string): string {
	return `${source}:${sourceId}`;
}

export function addressPropertyKey(addrKey: string): string {
	return `addr:${addrKey}`;
}

/** Key of a listing stored unmatched (no address key): its own source key, "mls:6937912". */
export function unmatchedPropertyKey(source: string, sourceId: string): string {
	return sourceKey(source, sourceId);
}

/** Where a contribution belongs: its APN, or (listings) its address key; null when unjoinable. */
export function identityOf(c: Pick<Contribution, "source" | "record">): {
	apn: string | null;
	addressKey: string | null;
} {
	if (c.source === "maricopa") {
		const r = c.record as AssessorParcelRecord;
		return {
			apn: normalizeApn(r.apn),
			addressKey: r.address ? addressKey(r.address.street, r.address.zip) : null,
		};
	}
	const r = c.record as MlsListingRecord;
	return { apn: null, addressKey: addressKey(r.address.street, r.address.zip) };
}

/** Later record of the same source over an earlier one: fields it leaves out keep their value. */
export function overlayRecord<T extends object>(earlier: T, later: T): T {
	const out: Record<string, unknown> = { ...(earlier as Record<string, unknown>) };
	for (const [k, v] of Object.entries(later)) {
		if (v === undefined) continue;
		const prev = out[k];
		// Parcel facts arrive in parts (GIS core facts, then REST details): merge them field-wise.
		if (k === "facts" && v && prev && typeof prev === "object")
			out[k] = overlayRecord(prev as object, v as object);
		else out[k] = v;
	}
	return out as T;
}

/** Stable JSON (sorted keys) for equality of records. */
export function canonicalJson(value: unknown): string {
	return JSON.stringify(value, (_k, val) =>
		val && typeof val === "object" && !Array.isArray(val)
			? Object.fromEntries(Object.entries(val).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))
			: val,
	);
}

export interface MergeOptions {
	/** _id for a new document. */
	id: string;
	now: string;
	/** Properties to fold into this one (an address-keyed listing property meeting its parcel). */
	absorb?: PropertyDoc[];
	/** Claim to hold: the address key when this property may own the address, else null. */
	claimAddress?: boolean;
	/** Key when the property has neither an APN nor an address key (an unmatched listing). */
	fallbackKey?: string;
	/** How the record's listing was matched, recorded on the property. */
	match?: MatchInfo;
	/** Key to give the property (an unmatched listing keeps its own key though it has an address key). */
	key?: string;
	/** Claim to hold, overriding `claimAddress`. */
	claim?: string;
	/** History entries the record brings from the property it leaves. */
	carryHistory?: HistoryEntry[];
	/** A placement to log (the listing joined from elsewhere). */
	logEntry?: MatchLogEntry;
}

/** What a merge did to the canonical property (the store's verdict on one record). */
export type MergeVerdict = "new" | "updated" | "unchanged";

export interface MergeResult {
	doc: PropertyDoc;
	status: MergeVerdict;
	changes: HistoryEntry[];
}

function putContribution(list: Contribution[], c: Contribution): Contribution[] {
	const key = sourceKey(c.source, c.sourceId);
	const prev = list.find((x) => sourceKey(x.source, x.sourceId) === key);
	// Re-collected and saying nothing new: keep the contribution as it was (no write at all).
	if (prev && canonicalJson(overlayRecord(prev.record, c.record)) === canonicalJson(prev.record)) return list;
	const merged: Contribution = prev
		? {
				...c,
				record: overlayRecord(prev.record, c.record),
				collectedAt: [prev.collectedAt, c.collectedAt].sort()[1] ?? c.collectedAt,
			}
		: c;
	return [...list.filter((x) => sourceKey(x.source, x.sourceId) !== key), merged].sort((x, y) =>
		sourceKey(x.source, x.sourceId) < sourceKey(y.source, y.sourceId) ? -1 : 1,
	);
}

/**
 * Merge one record (and any absorbed properties) into a property. Returns the next document, the
 * tracked-field changes it brings, and "unchanged" when the record adds nothing (re-collection).
 */
export function mergeProperty(
	existing: PropertyDoc | null,
	input: Contribution,
	opts: MergeOptions,
): MergeResult {
	const absorb = opts.absorb ?? [];
	let contributions = existing?.contributions ?? [];
	for (const other of absorb)
		for (const c of other.contributions) contributions = putContribution(contributions, c);
	const beforeInput = contributions;
	contributions = putContribution(contributions, input);
	const ownUnchanged =
		existing !== null && canonicalJson(contributions) === canonicalJson(existing.contributions);

	const fields = deriveFields(contributions);
	const key =
		opts.key ??
		fields.apn ??
		(fields.addressKey ? addressPropertyKey(fields.addressKey) : (existing?.key ?? opts.fallbackKey ?? null));
	if (!key) throw new Error("property has neither an APN nor an address key");
	const claim =
		opts.claim ??
		(opts.claimAddress && fields.addressKey ? fields.addressKey : (existing?.claim ?? `#${key}`));
	if (
		existing &&
		absorb.length === 0 &&
		ownUnchanged &&
		claim === existing.claim &&
		key === existing.key &&
		!opts.logEntry &&
		!opts.carryHistory?.length
	) {
		return { doc: existing, status: "unchanged", changes: [] };
	}

	// Changes are judged against everything known before this record (absorbed properties included),
	// so folding a listing property into its parcel does not repeat the listing's own history.
	const previous = beforeInput.length > 0 ? deriveFields(beforeInput) : null;
	const changes: HistoryEntry[] = [];
	for (const field of TRACKED_FIELDS) {
		const from = previous ? trackedValue(previous, field) : null;
		const to = trackedValue(fields, field);
		if (from !== to) {
			changes.push({
				field,
				from,
				to,
				source: input.source,
				sourceId: input.sourceId,
				at: input.collectedAt,
			});
		}
	}
	const carried = (opts.carryHistory ?? []).filter(
		(e) => !(existing?.history ?? []).some((h) => canonicalJson(h) === canonicalJson(e)),
	);
	const history = [...(existing?.history ?? []), ...absorb.flatMap((d) => d.history), ...carried, ...changes]
		.sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : 0))
		.slice(-HISTORY_LIMIT);
	const createdAt = [existing?.createdAt, ...absorb.map((d) => d.createdAt)]
		.filter((x): x is string => !!x)
		.sort()[0];
	const doc: PropertyDoc = {
		_id: existing?._id ?? opts.id,
		key,
		claim: claim === `#${existing?.key}` ? `#${key}` : claim,
		...fields,
		sources: contributions.map((c) => ({
			source: c.source,
			sourceId: c.sourceId,
			collectedAt: c.collectedAt,
		})),
		sourceKeys: contributions.map((c) => sourceKey(c.source, c.sourceId)),
		contributions,
		history,
		version: (existing?.version ?? 0) + 1,
		createdAt: createdAt ?? opts.now,
		updatedAt: opts.now,
		changedAt: changes.length > 0 || !existing ? opts.now : existing.changedAt,
	};
	// Facts may have changed, so the enrichment may be out of date: its inputHash tells the llm
	// service, which re-enriches it; dropping it here would leave the property with none meanwhile.
	const enrichment = existing?.enrichment ?? absorb.find((d) => d.enrichment)?.enrichment;
	if (enrichment) doc.enrichment = enrichment;
	const match = opts.match ?? existing?.match ?? absorb.find((d) => d.match)?.match;
	if (match) doc.match = match;
	const log = [...(existing?.matchLog ?? []), ...absorb.flatMap((d) => d.matchLog ?? [])];
	if (opts.logEntry) log.push(opts.logEntry);
	if (log.length > 0) doc.matchLog = log.slice(-MATCH_LOG_LIMIT);
	return { doc, status: existing ? "updated" : "new", changes };
}

/**
 * The property without one record (a listing that leaves it: a wrong merge split, a key that
 * changed): fields derived again from the records left, the changes this makes appended to the
 * history (the record's earlier entries stay: they happened), the departure logged. Null when no
 * record is left (the property is to be deleted).
 */
export function removeContribution(
	doc: PropertyDoc,
	key: string,
	opts: { now: string; logEntry?: MatchLogEntry },
): PropertyDoc | null {
	const removed = doc.contributions.find((c) => sourceKey(c.source, c.sourceId) === key);
	const contributions = doc.contributions.filter((c) => sourceKey(c.source, c.sourceId) !== key);
	if (!removed) return doc;
	if (contributions.length === 0) return null;
	const before = deriveFields(doc.contributions);
	const fields = deriveFields(contributions);
	const changes: HistoryEntry[] = [];
	for (const field of TRACKED_FIELDS) {
		const from = trackedValue(before, field);
		const to = trackedValue(fields, field);
		if (from !== to)
			changes.push({ field, from, to, source: removed.source, sourceId: removed.sourceId, at: opts.now });
	}
	const newKey = fields.apn ?? (fields.addressKey ? addressPropertyKey(fields.addressKey) : doc.key);
	const claim = doc.claim.startsWith("#") || doc.claim !== fields.addressKey ? `#${newKey}` : doc.claim;
	const next: PropertyDoc = {
		...doc,
		...fields,
		key: newKey,
		claim,
		sources: contributions.map((c) => ({
			source: c.source,
			sourceId: c.sourceId,
			collectedAt: c.collectedAt,
		})),
		sourceKeys: contributions.map((c) => sourceKey(c.source, c.sourceId)),
		contributions,
		history: [...doc.history, ...changes].slice(-HISTORY_LIMIT),
		version: doc.version + 1,
		updatedAt: opts.now,
		changedAt: changes.length > 0 ? opts.now : doc.changedAt,
	};
	if (!contributions.some((c) => c.source === "mls")) delete next.match;
	if (opts.logEntry) next.matchLog = [...(doc.matchLog ?? []), opts.logEntry].slice(-MATCH_LOG_LIMIT);
	return next;
}
