/**
 * Client of the Assessor's public GIS parcels layer (contract: shared/contracts/maricopa-gis.md): the
 * parcels of a ZIP with their core facts, up to ~1,000 a request, paged with resultOffset. Paced and
 * retried by the GIS host's own HostPolicy (no token; a separate budget and breaker from the API).
 *
 * Field names are configuration (`GisFieldNames`). Before the first query the client reads the
 * layer's own field list (`.../MapServer/3?f=json`): a required field the layer lacks stops
 * collection with a clear error; an optional one is left out of the queries and reported as a gap.
 */
import { PermanentError } from "../core/errors.ts";
import type { HostPolicy } from "../core/host-policy.ts";
import {
	type Classified,
	classifiedExchange,
	classifyStatus,
	type HttpAnswer,
	httpExchange,
	isJsonType,
	parseJsonBody,
	type RequestOutcome,
} from "../core/http.ts";
import type { RequestTally } from "./http.ts";
import {
	DEFAULT_GIS_FIELDS,
	type GisFact,
	type GisFieldNames,
	type GisPage,
	GisQueryError,
	type GisRow,
	parseGisPage,
	REQUIRED_GIS_FACTS,
	UpstreamShapeError,
} from "./normalize.ts";

/** A ZIP is never more than this many pages: a guard against a layer that never stops paging. */
const MAX_PAGES = 500;

export interface GisClientOptions {
	queryUrl: string;
	pageSize: number;
	timeoutMs: number;
	policy: HostPolicy;
	/** The layer's field names (default: DEFAULT_GIS_FIELDS). */
	fields?: GisFieldNames;
	onRequest?: (endpoint: string, outcome: RequestOutcome) => void;
}

/** The configured field names against the layer's own list. */
export interface GisLayerCheck {
	/** Facts whose configured field the layer does not have (left out of queries: gaps). */
	missing: { fact: GisFact; field: string }[];
	/** False when the layer could not describe itself (the configured names are used unchecked). */
	checked: boolean;
	maxRecordCount: number | null;
}

/** The layer lacks a field Saguaro cannot work without: a configuration problem, not a retry. */
export class GisLayerError extends PermanentError {
	constructor(message: string) {
		super(message, { type: "MARICOPA_GIS_FIELDS" });
	}
}

export function classifyGisAnswer<T>(parse: (json: unknown) => T): (a: HttpAnswer) => Classified<T> {
	return (a) => {
		const byStatus = classifyStatus(a);
		if (byStatus) return byStatus;
		if (!isJsonType(a.contentType) && !/^\s*[{[]/.test(a.body)) {
			return {
				outcome: "html",
				attempt: { kind: "failed", reason: `expected JSON, got '${a.contentType || "no content type"}'` },
			};
		}
		const json = parseJsonBody(a);
		if (!json.ok) return { outcome: "malformed", attempt: { kind: "transient", reason: json.reason } };
		try {
			return { outcome: "ok", attempt: { kind: "ok", value: parse(json.value) } };
		} catch (err) {
			if (err instanceof GisQueryError) {
				// ArcGIS reports server trouble as code 5xx inside an HTTP 200; a 4xx code is our query's fault.
				return {
					outcome: "gis_error",
					attempt: { kind: err.code >= 500 ? "transient" : "failed", reason: err.message },
				};
			}
			if (err instanceof UpstreamShapeError) {
				return { outcome: "bad_shape", attempt: { kind: "failed", reason: err.message } };
			}
			throw err;
		}
	};
}

/** `{count: n}` of a returnCountOnly query. */
function parseCount(json: unknown): number {
	const body = json as { count?: unknown; error?: { code?: unknown; message?: unknown } } | null;
	if (body && typeof body === "object" && body.error && typeof body.error === "object") {
		throw new GisQueryError(Number(body.error.code) || 0, String(body.error.message ?? "unknown error"));
	}
	if (!body || typeof body.count !== "number" || !Number.isInteger(body.count) || body.count < 0) {
		throw new UpstreamShapeError("gis: count answer has no count");
	}
	return body.count;
}

/** `{fields: [{name}], maxRecordCount}` of the layer description. */
function parseLayer(json: unknown): { fields: Set<string>; maxRecordCount: number | null } {
	const body = json as { fields?: unknown; maxRecordCount?: unknown; error?: { code?: unknown } } | null;
	if (body && typeof body === "object" && body.error && typeof body.error === "object") {
		throw new GisQueryError(Number(body.error.code) || 0, "layer description refused");
	}
	if (!body || !Array.isArray(body.fields))
		throw new UpstreamShapeError("gis: layer description has no fields");
	const fields = new Set(
		body.fields.map((f) => (f && typeof f === "object" ? String((f as { name?: unknown }).name) : "")),
	);
	return { fields, maxRecordCount: typeof body.maxRecordCount === "number" ? body.maxRecordCount : null };
}

export class MaricopaGisClient {
	readonly #opts: GisClientOptions;
	readonly #configured: GisFieldNames;
	/** The fields queries ask for, once the layer was checked (a missing optional fact is null). */
	#fields: Record<GisFact, string | null> | null = null;
	#check: Promise<GisLayerCheck> | null = null;

	constructor(opts: GisClientOptions) {
		this.#opts = opts;
		this.#configured = opts.fields ?? DEFAULT_GIS_FIELDS;
	}

	/** The layer's URL (the query URL without `/query`). */
	get layerUrl(): string {
		return this.#opts.queryUrl.replace(/\/query\/?$/, "");
	}

	/**
	 * Check the configured field names against the layer (once; again after a failure to reach it).
	 * Throws GisLayerError when a required field is missing.
	 */
	checkLayer(tally?: RequestTally, signal?: AbortSignal): Promise<GisLayerCheck> {
		this.#check ??= this.#readLayer(tally, signal).catch((err: unknown) => {
			this.#check = null;
			throw err;
		});
		return this.#check;
	}

	async #readLayer(tally?: RequestTally, signal?: AbortSignal): Promise<GisLayerCheck> {
		const url = `${this.layerUrl}?${new URLSearchParams({ f: "json" })}`;
		let layer: { fields: Set<string>; maxRecordCount: number | null } | null = null;
		try {
			layer = await this.#request("gis-layer", url, parseLayer, tally, signal);
		} catch (err) {
			signal?.throwIfAborted();
			// A layer that answers queries but not its description: use the names as configured.
			if (!(err instanceof Error) || err instanceof GisLayerError) throw err;
		}
		const entries = Object.entries(this.#configured) as [GisFact, string][];
		const missing = layer ? entries.filter(([, field]) => !layer.fields.has(field)) : [];
		const required = missing.filter(([fact]) => REQUIRED_GIS_FACTS.includes(fact));
		if (required.length > 0) {
			throw new GisLayerError(
				`the GIS layer has no field ${required.map(([fact, field]) => `${field} (${fact})`).join(", ")}: set MARICOPA_GIS_FIELDS to the layer's names`,
			);
		}
		const absent = new Set(missing.map(([fact]) => fact));
		this.#fields = Object.fromEntries(
			entries.map(([fact, field]) => [fact, absent.has(fact) ? null : field]),
		) as Record<GisFact, string | null>;
		return {
			missing: missing.map(([fact, field]) => ({ fact, field })),
			checked: layer !== null,
			maxRecordCount: layer?.maxRecordCount ?? null,
		};
	}

	/** Parcels of a ZIP on the layer (one count request). */
	async countZip(zip: string, tally?: RequestTally, signal?: AbortSignal): Promise<number> {
		const fields = await this.#ready(tally, signal);
		const params = new URLSearchParams({ f: "json", where: zipWhere(fields, zip), returnCountOnly: "true" });
		return this.#request("gis-count", `${this.#opts.queryUrl}?${params}`, parseCount, tally, signal);
	}

	/** Pages of `pageSize` rows a ZIP of `count` parcels takes. */
	pagesFor(count: number): number {
		return Math.max(1, Math.ceil(count / this.#opts.pageSize));
	}

	/** One page (1-based) of a ZIP's parcels, in APN order. */
	async zipPage(zip: string, page: number, tally?: RequestTally, signal?: AbortSignal): Promise<GisPage> {
		const fields = await this.#ready(tally, signal);
		return this.query(zipWhere(fields, zip), (page - 1) * this.#opts.pageSize, tally, signal);
	}

	/** Every parcel of a ZIP, in APN order, with its core facts. */
	async listZip(zip: string, tally?: RequestTally, signal?: AbortSignal): Promise<GisRow[]> {
		const rows: GisRow[] = [];
		for (let page = 1; page <= MAX_PAGES; page++) {
			const result = await this.zipPage(zip, page, tally, signal);
			rows.push(...result.rows);
			// Some servers cap a page below what was asked; exceededTransferLimit says whether rows remain.
			if (!result.exceededTransferLimit || result.rows.length === 0) return dedupe(rows);
		}
		throw new Error(`GIS layer kept paging past ${MAX_PAGES} pages for ZIP ${zip}`);
	}

	async query(where: string, offset: number, tally?: RequestTally, signal?: AbortSignal): Promise<GisPage> {
		const fields = await this.#ready(tally, signal);
		const params = new URLSearchParams({
			f: "json",
			where,
			outFields: Object.values(fields)
				.filter((f): f is string => f !== null)
				.join(","),
			returnGeometry: "false",
			orderByFields: fields.apn!,
			resultOffset: String(offset),
			resultRecordCount: String(this.#opts.pageSize),
		});
		return this.#request(
			"gis-query",
			`${this.#opts.queryUrl}?${params}`,
			(json) => parseGisPage(json, fields),
			tally,
			signal,
		);
	}

	async #ready(tally?: RequestTally, signal?: AbortSignal): Promise<Record<GisFact, string | null>> {
		if (!this.#fields) await this.checkLayer(tally, signal);
		return this.#fields!;
	}

	#request<T>(
		endpoint: string,
		url: string,
		parse: (json: unknown) => T,
		tally?: RequestTally,
		signal?: AbortSignal,
	): Promise<T> {
		const { timeoutMs, policy, onRequest } = this.#opts;
		return policy.run(
			endpoint,
			async () => {
				if (tally) tally.bulk++;
				const c = await classifiedExchange(
					() => httpExchange(url, {}, timeoutMs, signal),
					classifyGisAnswer(parse),
					signal,
				);
				onRequest?.(endpoint, c.outcome);
				return c.attempt;
			},
			signal,
		);
	}
}

function zipWhere(fields: Record<GisFact, string | null>, zip: string): string {
	if (!/^\d{5}$/.test(zip)) throw new RangeError(`not a ZIP code: '${zip}'`);
	return `${fields.zip}='${zip}'`;
}

/** A row repeated across pages (the layer changed between two pages) is kept once. */
function dedupe(rows: GisRow[]): GisRow[] {
	const seen = new Set<string>();
	return rows.filter((r) => {
		if (seen.has(r.apn)) return false;
		seen.add(r.apn);
		return true;
	});
}
