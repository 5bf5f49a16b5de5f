/**
 * Parameter rules (fastest-validator) shared by the store's actions (services/store.service.ts):
 * times, raw sources, listing statuses, paging, and moleculer-db's generic reads kept safe.
 */
import { enrichmentContentProps } from "../domain/enrichment-input.ts";
import { LISTING_STATUSES, PROPERTY_SOURCES } from "../domain/records.ts";

export const isoTime = {
	type: "string",
	pattern: /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/,
} as const;

export const rawSource = { type: "string", pattern: /^[a-z][a-z0-9-]{0,39}$/ } as const;

/** Highest page number any read accepts (a page past the data answers empty; an absurd one is refused). */
export const PAGE_MAX = 1_000_000;

/**
 * A listing `status` filter: one of LISTING_STATUSES in any case (`active` finds `Active`), turned
 * into the stored spelling; anything else is refused with the allowed values.
 */
export const statusParam = {
	type: "string",
	max: 40,
	optional: true,
	messages: { listingStatus: "The '{field}' field must be one of: {expected} (any case)." },
	custom(value: unknown, errors: { type: string; expected?: unknown; actual?: unknown }[]) {
		if (value === undefined || value === null) return value;
		const found = LISTING_STATUSES.find((s) => s.toLowerCase() === String(value).trim().toLowerCase());
		if (found) return found;
		errors.push({ type: "listingStatus", expected: LISTING_STATUSES.join(", "), actual: value });
		return value;
	},
};

/** `page` (1-based) and `pageSize` (up to STORE_PAGE_SIZE_MAX, 50 unless given). */
export function pageParams(pageSizeMax: number) {
	return {
		page: { type: "number", integer: true, min: 1, max: PAGE_MAX, default: 1, convert: true },
		pageSize: {
			type: "number",
			integer: true,
			min: 1,
			max: pageSizeMax,
			default: 50,
			convert: true,
		},
	} as const;
}

/** `properties.merge`: one record of a known source. */
export const mergeParams = {
	source: { type: "enum", values: [...PROPERTY_SOURCES] },
	sourceId: { type: "string", min: 1, max: 100 },
	record: { type: "object" },
	collectedAt: { ...isoTime, optional: true },
};

/** `properties.setEnrichment`: the enrichment's content and how it was made; unknown fields dropped. */
export const setEnrichmentParams = {
	key: { type: "string", min: 1, max: 300 },
	expectedInputHash: { type: "string", pattern: /^[0-9a-f]{16,64}$/ },
	enrichment: {
		type: "object",
		strict: "remove",
		props: {
			...enrichmentContentProps,
			processing: {
				type: "object",
				strict: "remove",
				props: {
					llm_model: { type: "string", min: 1, max: 200 },
					tokens_used: { type: "number", integer: true, min: 0 },
					processing_time_ms: { type: "number", integer: true, min: 0 },
					source: { type: "enum", values: ["llm", "cache", "rules"] },
					inputHash: { type: "string", pattern: /^[0-9a-f]{16,64}$/ },
					enrichedAt: isoTime,
				},
			},
		},
	},
};

/**
 * moleculer-db's generic reads (list, count, find) stay for the REPL and scripts, validated like the
 * REST routes: `query` only names the given fields, each a plain value (no operators, no raw query
 * objects), no search (a regex over the whole collection) nor populate, bounded paging, a plain sort.
 * (moleculer-db's own definitions are merged under these, so each rule here replaces its one.)
 */
export function guardedReads(queryProps: Record<string, unknown>, pageSizeMax: number) {
	const forbidden = { type: "forbidden" };
	const common = {
		query: { type: "object", optional: true, strict: true, props: queryProps },
		search: forbidden,
		iSearch: forbidden,
		searchFields: forbidden,
	};
	const sort = {
		type: "string",
		optional: true,
		pattern: /^-?[A-Za-z_][\w.]{0,39}([ ,]+-?[A-Za-z_][\w.]{0,39}){0,3}$/,
	};
	const count = (max: number) => ({
		type: "number",
		integer: true,
		min: 0,
		max,
		optional: true,
		convert: true,
	});
	return {
		list: {
			cache: false,
			params: {
				...common,
				populate: forbidden,
				page: { ...count(PAGE_MAX), min: 1 },
				pageSize: count(pageSizeMax),
				sort,
			},
		},
		count: { cache: false, params: common },
		find: {
			cache: false,
			params: {
				...common,
				populate: forbidden,
				limit: count(pageSizeMax),
				offset: count(PAGE_MAX * pageSizeMax),
				sort,
			},
		},
	};
}
