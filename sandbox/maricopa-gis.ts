/**
 * ArcGIS REST simulator of the Assessor's public parcel layer (contract:
 * ../shared/contracts/maricopa-gis.md), serving the same World as the API simulator.
 *
 * `GET|POST /arcgis/rest/services/MaricopaDynamicQueryService/MapServer/3/query` with the standard
 * parameters: f (json|pjson; absent/html gives an HTML page), where (`1=1`, `FIELD='value'` on string
 * fields such as PHYSICAL_ZIP and APN, joined with AND), outFields (`*` or a list; absent = OBJECTID
 * only, as ArcGIS does), returnGeometry (default true), orderByFields, resultOffset,
 * resultRecordCount (capped at maxRecordCount), returnCountOnly. Errors are HTTP 200 with
 * `{"error":{"code":400,"message":"Unable to complete operation.","details":[...]}}`; money fields
 * are formatted strings ("     241,900"); `exceededTransferLimit: true` while rows remain.
 * `GET .../MapServer/3?f=json` returns the layer description (maxRecordCount, fields).
 */

import { RequestCounters } from "./counters.ts";
import type { FaultKnobs } from "./faults.ts";
import { FaultInjector } from "./faults.ts";
import type { Parcel, World } from "./generator.ts";
import type { SimContext, SimServer } from "./http.ts";
import { HttpError, startSimServer } from "./http.ts";

export const GIS_LAYER_PATH = "/arcgis/rest/services/MaricopaDynamicQueryService/MapServer/3";
export const GIS_QUERY_PATH = `${GIS_LAYER_PATH}/query`;

export interface MaricopaGisOptions {
	world: World;
	/** Most rows one query returns (the real layer: 1000; some report 2000). */
	maxRecordCount?: number;
	faults?: Partial<FaultKnobs>;
	seed?: number;
	host?: string;
	port?: number;
}

export interface MaricopaGisHandle extends SimServer {
	/** Changeable at run time. */
	maxRecordCount: number;
}

type FieldType = "esriFieldTypeOID" | "esriFieldTypeString" | "esriFieldTypeInteger" | "esriFieldTypeDouble";
type Value = string | number | null;

interface FieldDef {
	name: string;
	type: FieldType;
	alias: string;
	length?: number;
	value(p: Parcel, oid: number): Value;
}

/** "241900" -> "241,900"; the Assessor pads some of these to a fixed width. */
export function formatMoney(n: number, width = 0): string {
	return n.toLocaleString("en-US").padStart(width, " ");
}

const FIELDS: FieldDef[] = [
	{ name: "OBJECTID", type: "esriFieldTypeOID", alias: "OBJECTID", value: (_p, oid) => oid },
	{ name: "APN", type: "esriFieldTypeString", alias: "APN", length: 12, value: (p) => p.apn },
	{
		name: "APN_DASH",
		type: "esriFieldTypeString",
		alias: "APN (dashed)",
		length: 14,
		value: (p) => p.apnDisplay,
	},
	{
		name: "PHYSICAL_ADDRESS",
		type: "esriFieldTypeString",
		alias: "Situs Address",
		length: 80,
		value: (p) => p.situsAddress,
	},
	{
		name: "PHYSICAL_CITY",
		type: "esriFieldTypeString",
		alias: "Situs City",
		length: 30,
		value: (p) => p.city,
	},
	{ name: "PHYSICAL_ZIP", type: "esriFieldTypeString", alias: "Situs Zip", length: 10, value: (p) => p.zip },
	{ name: "OWNER_NAME", type: "esriFieldTypeString", alias: "Owner", length: 80, value: (p) => p.owner.name },
	{
		name: "SUBNAME",
		type: "esriFieldTypeString",
		alias: "Subdivision",
		length: 80,
		value: (p) => p.subdivision,
	},
	{ name: "MCRNUM", type: "esriFieldTypeString", alias: "MCR", length: 10, value: (p) => p.mcr },
	{
		name: "PUC",
		type: "esriFieldTypeString",
		alias: "Property Use Code",
		length: 4,
		value: (p) => p.useCode,
	},
	{ name: "LAND_SIZE", type: "esriFieldTypeInteger", alias: "Land Size", value: (p) => p.lotSize },
	{
		name: "CONST_YEAR",
		type: "esriFieldTypeString",
		alias: "Construction Year",
		length: 4,
		value: (p) => (p.constructionYear === null ? null : String(p.constructionYear)),
	},
	{
		name: "LIVING_SPACE",
		type: "esriFieldTypeInteger",
		alias: "Living Space",
		value: (p) => p.residential?.livableSpace ?? null,
	},
	{
		name: "FCV_CUR",
		type: "esriFieldTypeString",
		alias: "Full Cash Value",
		length: 12,
		value: (p) => formatMoney(p.valuations[0]!.fullCashValue, 12),
	},
	{
		name: "LPV_CUR",
		type: "esriFieldTypeString",
		alias: "Limited Value",
		length: 12,
		value: (p) => formatMoney(p.valuations[0]!.limitedPropertyValue),
	},
	{
		name: "TAX_YR_CUR",
		type: "esriFieldTypeString",
		alias: "Tax Year",
		length: 4,
		value: (p) => String(p.valuations[0]!.taxYear),
	},
	{ name: "LATITUDE", type: "esriFieldTypeDouble", alias: "Latitude", value: (p) => p.lat },
	{ name: "LONGITUDE", type: "esriFieldTypeDouble", alias: "Longitude", value: (p) => p.long },
];
const FIELD_BY_NAME = new Map(FIELDS.map((f) => [f.name, f]));

class QueryError extends Error {
	readonly details: string[];
	constructor(...details: string[]) {
		super("Unable to complete operation.");
		this.details = details;
	}
}

type Predicate = (p: Parcel, oid: number) => boolean;

/** Splits on AND outside quoted literals, so `PHYSICAL_ADDRESS='1 N A AND B ST'` stays one clause. */
function splitAnd(text: string): string[] {
	const out: string[] = [];
	let start = 0;
	let inQuote = false;
	for (let i = 0; i < text.length; i++) {
		const ch = text[i]!;
		if (ch === "'") inQuote = !inQuote;
		else if (!inQuote && /\s/.test(ch)) {
			const m = /^\s+AND\s+/i.exec(text.slice(i));
			if (m) {
				out.push(text.slice(start, i));
				start = i + m[0].length;
				i = start - 1;
			}
		}
	}
	out.push(text.slice(start));
	return out;
}

/** Parses the supported `where` subset: `1=1` and `FIELD='value'` clauses joined by AND. */
export function parseWhere(where: string): Predicate {
	const text = where.trim();
	if (text === "") throw new QueryError("'where' parameter is invalid");
	const clauses = splitAnd(text).map((c) =>
		c
			.trim()
			.replace(/^\((.*)\)$/, "$1")
			.trim(),
	);
	const preds: Predicate[] = [];
	for (const clause of clauses) {
		if (/^1\s*=\s*1$/.test(clause)) continue;
		const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*'((?:[^']|'')*)'$/.exec(clause);
		const field = m ? FIELD_BY_NAME.get(m[1]!.toUpperCase()) : undefined;
		if (!m || !field || field.type !== "esriFieldTypeString") {
			throw new QueryError(`'where' parameter is invalid: unsupported clause ${JSON.stringify(clause)}`);
		}
		const want = m[2]!.replace(/''/g, "'");
		preds.push((p, oid) => field.value(p, oid) === want);
	}
	return (p, oid) => preds.every((f) => f(p, oid));
}

function parseOutFields(raw: string | undefined): FieldDef[] {
	if (raw === undefined || raw.trim() === "") return [FIELD_BY_NAME.get("OBJECTID")!];
	if (raw.trim() === "*") return FIELDS;
	return raw.split(",").map((name) => {
		const f = FIELD_BY_NAME.get(name.trim().toUpperCase());
		if (!f) throw new QueryError(`Invalid field name in 'outFields': ${name.trim()}`);
		return f;
	});
}

function parseOrder(raw: string | undefined): (a: [Parcel, number], b: [Parcel, number]) => number {
	if (raw === undefined || raw.trim() === "") return (a, b) => a[1] - b[1];
	const keys = raw.split(",").map((part) => {
		const [name = "", dir = "ASC", ...rest] = part.trim().split(/\s+/);
		const f = FIELD_BY_NAME.get(name.toUpperCase());
		if (!f || rest.length > 0 || !/^(ASC|DESC)$/i.test(dir)) {
			throw new QueryError(`Invalid 'orderByFields': ${part.trim()}`);
		}
		return { f, sign: dir.toUpperCase() === "DESC" ? -1 : 1 };
	});
	return (a, b) => {
		for (const { f, sign } of keys) {
			const va = f.value(a[0], a[1]);
			const vb = f.value(b[0], b[1]);
			if (va === vb) continue;
			if (va === null) return sign;
			if (vb === null) return -sign;
			return (va < vb ? -1 : 1) * sign;
		}
		return a[1] - b[1];
	};
}

function parseIntParam(raw: string | undefined, name: string): number | undefined {
	if (raw === undefined || raw.trim() === "") return undefined;
	if (!/^\d+$/.test(raw.trim())) throw new QueryError(`Invalid '${name}' parameter: ${raw}`);
	return Number(raw);
}

function geometryOf(p: Parcel) {
	// A small square around the centroid stands in for the parcel polygon.
	const d = 0.00012;
	const { lat: y, long: x } = p;
	return {
		rings: [
			[
				[x - d, y - d],
				[x - d, y + d],
				[x + d, y + d],
				[x + d, y - d],
				[x - d, y - d],
			],
		],
	};
}

function fieldsJson(fields: FieldDef[]) {
	return fields.map((f) => ({
		name: f.name,
		type: f.type,
		alias: f.alias,
		...(f.length ? { length: f.length } : {}),
	}));
}

/** Runs one query against the world; throws QueryError for what ArcGIS would refuse. */
export function runQuery(
	world: World,
	params: Record<string, string>,
	maxRecordCount: number,
): Record<string, unknown> {
	if (params.where === undefined) throw new QueryError("'where' parameter not specified");
	const pred = parseWhere(params.where);
	const outFields = parseOutFields(params.outFields);
	const order = parseOrder(params.orderByFields);
	const offset = parseIntParam(params.resultOffset, "resultOffset") ?? 0;
	const wanted = parseIntParam(params.resultRecordCount, "resultRecordCount") ?? maxRecordCount;
	const count = Math.min(wanted, maxRecordCount);
	const returnGeometry = (params.returnGeometry ?? "true").toLowerCase() !== "false";

	// OBJECTIDs are positions in APN order: stable across queries, as a layer's are.
	const matches: [Parcel, number][] = [];
	world.parcels.forEach((p, i) => {
		if (pred(p, i + 1)) matches.push([p, i + 1]);
	});
	if ((params.returnCountOnly ?? "").toLowerCase() === "true") return { count: matches.length };
	matches.sort(order);
	const page = matches.slice(offset, offset + count);
	const features = page.map(([p, oid]) => {
		const attributes: Record<string, Value> = {};
		for (const f of outFields) attributes[f.name] = f.value(p, oid);
		return returnGeometry ? { attributes, geometry: geometryOf(p) } : { attributes };
	});
	const fieldAliases: Record<string, string> = {};
	for (const f of outFields) fieldAliases[f.name] = f.alias;
	return {
		displayFieldName: "APN",
		fieldAliases,
		...(returnGeometry
			? { geometryType: "esriGeometryPolygon", spatialReference: { wkid: 4326, latestWkid: 4326 } }
			: {}),
		fields: fieldsJson(outFields),
		features,
		// ArcGIS only sends the flag when it is true.
		...(offset + page.length < matches.length ? { exceededTransferLimit: true } : {}),
	};
}

function htmlPage(title: string): string {
	return `<!DOCTYPE html><html><head><title>${title}</title></head><body><h2>ArcGIS REST Services Directory</h2><p>${title}</p></body></html>`;
}

export async function startMaricopaGis(opts: MaricopaGisOptions): Promise<MaricopaGisHandle> {
	const { world } = opts;
	const faults = new FaultInjector(opts.faults, opts.seed ?? 2);
	const counters = new RequestCounters();
	let handle: MaricopaGisHandle;

	const paramsOf = async (ctx: SimContext): Promise<Record<string, string>> => {
		const params: Record<string, string> = {};
		for (const [k, v] of ctx.url.searchParams) params[k] = v;
		if (ctx.req.method === "POST") {
			for (const [k, v] of new URLSearchParams(await ctx.body())) params[k] = v;
		}
		return params;
	};

	const respond = async (ctx: SimContext) => {
		const path = ctx.url.pathname.replace(/\/+$/, "");
		const params = await paramsOf(ctx);
		const f = (params.f ?? "html").toLowerCase();
		const known = path === GIS_QUERY_PATH || path === GIS_LAYER_PATH;
		if (!known) {
			if (f === "json" || f === "pjson") {
				ctx.json(200, { error: { code: 404, message: "Requested resource not found", details: [] } });
			} else {
				ctx.send(404, htmlPage("Error: Not Found"), { "content-type": "text/html; charset=utf-8" });
			}
			return;
		}
		if (f === "html") {
			ctx.send(200, htmlPage(path === GIS_QUERY_PATH ? "Query: Parcels (ID: 3)" : "Layer: Parcels (ID: 3)"), {
				"content-type": "text/html; charset=utf-8",
			});
			return;
		}
		const indent = f === "pjson" ? 2 : undefined;
		const reply = (value: unknown) =>
			ctx.send(
				200,
				JSON.stringify(value, null, indent),
				{ "content-type": "application/json; charset=utf-8" },
				{ malformable: true },
			);
		if (f !== "json" && f !== "pjson") {
			reply({
				error: { code: 400, message: "Unable to complete operation.", details: [`Invalid format: ${f}`] },
			});
			return;
		}
		if (path === GIS_LAYER_PATH) {
			reply({
				currentVersion: 10.91,
				id: 3,
				name: "Parcels",
				type: "Feature Layer",
				geometryType: "esriGeometryPolygon",
				displayField: "APN",
				maxRecordCount: handle.maxRecordCount,
				supportsPagination: true,
				fields: fieldsJson(FIELDS),
			});
			return;
		}
		try {
			reply(runQuery(world, params, handle.maxRecordCount));
		} catch (err) {
			if (!(err instanceof QueryError)) throw err;
			reply({ error: { code: 400, message: err.message, details: err.details } });
		}
	};

	const server = await startSimServer({
		name: "gis",
		host: opts.host,
		port: opts.port,
		faults,
		counters,
		classify: (url) => {
			const path = url.pathname.replace(/\/+$/, "");
			return path === GIS_QUERY_PATH ? "query" : path === GIS_LAYER_PATH ? "layer" : "other";
		},
		handle: respond,
		control: {
			"GET config": () => ({ maxRecordCount: handle.maxRecordCount }),
			"POST config": ({ body }) => {
				const n = (body as { maxRecordCount?: unknown } | undefined)?.maxRecordCount;
				if (typeof n !== "number" || !Number.isInteger(n) || n < 1)
					throw new HttpError(400, "maxRecordCount must be an integer >= 1");
				handle.maxRecordCount = n;
				return { maxRecordCount: n };
			},
		},
	});
	handle = { ...server, maxRecordCount: opts.maxRecordCount ?? 1000 };
	return handle;
}
