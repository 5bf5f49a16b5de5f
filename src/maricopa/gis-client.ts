/**
 * Client of the Assessor's public GIS parcels layer (contract: shared/contracts/maricopa-gis.md): the
 * parcels of a ZIP with their core facts, up to ~1,000 a request, paged with resultOffset. Paced and
 * retried by the GIS host's own HostPolicy (no token; a separate budget and breaker from the API).
 */
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
import { type GisPage, GisQueryError, type GisRow, parseGisPage, UpstreamShapeError } from "./normalize.ts";

export const GIS_OUT_FIELDS = [
	"APN",
	"PHYSICAL_ADDRESS",
	"PHYSICAL_CITY",
	"PHYSICAL_ZIP",
	"OWNER_NAME",
	"SUBNAME",
	"MCRNUM",
	"PUC",
	"LAND_SIZE",
	"CONST_YEAR",
	"LIVING_SPACE",
	"FCV_CUR",
	"LPV_CUR",
	"TAX_YR_CUR",
	"LATITUDE",
	"LONGITUDE",
] as const;

/** A ZIP is never more than this many pages: a guard against a layer that never stops paging. */
const MAX_PAGES = 500;

export interface GisClientOptions {
	queryUrl: string;
	pageSize: number;
	timeoutMs: number;
	policy: HostPolicy;
	onRequest?: (endpoint: string, outcome: RequestOutcome) => void;
}

export function classifyGisAnswer(a: HttpAnswer): Classified<GisPage> {
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
		return { outcome: "ok", attempt: { kind: "ok", value: parseGisPage(json.value) } };
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
}

export class MaricopaGisClient {
	readonly #opts: GisClientOptions;

	constructor(opts: GisClientOptions) {
		this.#opts = opts;
	}

	/** Every parcel of a ZIP, in APN order, with its core facts. */
	async listZip(zip: string, tally?: RequestTally, signal?: AbortSignal): Promise<GisRow[]> {
		if (!/^\d{5}$/.test(zip)) throw new RangeError(`not a ZIP code: '${zip}'`);
		const rows: GisRow[] = [];
		for (let page = 0; page < MAX_PAGES; page++) {
			const result = await this.query(`PHYSICAL_ZIP='${zip}'`, rows.length, tally, signal);
			rows.push(...result.rows);
			// Some servers cap a page below what was asked; exceededTransferLimit says whether rows remain.
			if (!result.exceededTransferLimit || result.rows.length === 0) return dedupe(rows);
		}
		throw new Error(`GIS layer kept paging past ${MAX_PAGES} pages for ZIP ${zip}`);
	}

	async query(where: string, offset: number, tally?: RequestTally, signal?: AbortSignal): Promise<GisPage> {
		const { queryUrl, pageSize, timeoutMs, policy, onRequest } = this.#opts;
		const params = new URLSearchParams({
			f: "json",
			where,
			outFields: GIS_OUT_FIELDS.join(","),
			returnGeometry: "false",
			orderByFields: "APN",
			resultOffset: String(offset),
			resultRecordCount: String(pageSize),
		});
		const url = `${queryUrl}?${params}`;
		return policy.run(
			"gis-query",
			async () => {
				if (tally) tally.bulk++;
				const c = await classifiedExchange(
					() => httpExchange(url, {}, timeoutMs, signal),
					classifyGisAnswer,
					signal,
				);
				onRequest?.("gis-query", c.outcome);
				return c.attempt;
			},
			signal,
		);
	}
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
