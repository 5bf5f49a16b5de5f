import type { ValidationRule } from "fastest-validator";
import { intRule, listRule, type SettingGroup, urlRule } from "./define.ts";
import { type HostBreakerConfig, hostBreakerSettings, msToS, toHostBreaker } from "./host-policy.ts";

/** The Assessor GIS layer's field name of each fact (src/maricopa/normalize.ts reads rows by them). */
export interface GisFieldNames {
	apn: string;
	address: string;
	city: string;
	zip: string;
	owner: string;
	subdivision: string;
	mcr: string;
	useCode: string;
	lotSize: string;
	constructionYear: string;
	livingSpace: string;
	fullCashValue: string;
	limitedValue: string;
	taxYear: string;
	lat: string;
	long: string;
}

export type GisFact = keyof GisFieldNames;

export const DEFAULT_GIS_FIELDS: GisFieldNames = {
	apn: "APN",
	address: "PHYSICAL_ADDRESS",
	city: "PHYSICAL_CITY",
	zip: "PHYSICAL_ZIP",
	owner: "OWNER_NAME",
	subdivision: "SUBNAME",
	mcr: "MCRNUM",
	useCode: "PUC",
	lotSize: "LAND_SIZE",
	constructionYear: "CONST_YEAR",
	livingSpace: "LIVING_SPACE",
	fullCashValue: "FCV_CUR",
	limitedValue: "LPV_CUR",
	taxYear: "TAX_YR_CUR",
	lat: "LATITUDE",
	long: "LONGITUDE",
};

/** "useCode=USE_CODE,lotSize=LAND_SQF": layer field names over DEFAULT_GIS_FIELDS. */
const gisFieldsRule = {
	type: "string",
	custom(value: unknown, errors: unknown[]) {
		if (typeof value !== "string") return value;
		const out: Partial<GisFieldNames> = {};
		for (const part of value
			.split(",")
			.map((s) => s.trim())
			.filter(Boolean)) {
			const [fact, field] = part.split("=", 2).map((s) => s.trim());
			if (!fact || !(fact in DEFAULT_GIS_FIELDS) || !field || !/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(field)) {
				(errors as { type: string; message: string }[]).push({
					type: "gisFields",
					message: `has a bad entry '${part.slice(0, 80)}' (expected fact=FIELD with fact one of ${Object.keys(DEFAULT_GIS_FIELDS).join(", ")})`,
				});
				continue;
			}
			out[fact as keyof GisFieldNames] = field;
		}
		return out;
	},
} as ValidationRule;

/** Assessor property types `collectZip` fetches REST details for (lower case in the setting). */
export const MARICOPA_PROPERTY_TYPES = ["residential", "commercial", "vacant"] as const;
export type MaricopaPropertyType = (typeof MARICOPA_PROPERTY_TYPES)[number];

/** Maricopa County Assessor: REST API (details) and public GIS layer (bulk lists), each with its own budget. */
export const maricopaSettings = {
	MARICOPA_BASE_URL: {
		rule: urlRule(["http", "https"]),
		default: "https://mcassessor.maricopa.gov",
		description: "Assessor REST API base URL.",
	},
	MARICOPA_TOKEN: {
		rule: { type: "string", min: 1, max: 500 },
		description:
			"Assessor API token (sent raw in the AUTHORIZATION header). Unset = REST calls fail clearly.",
		secret: true,
	},
	MARICOPA_GIS_URL: {
		rule: urlRule(["http", "https"]),
		default:
			"https://gis.mcassessor.maricopa.gov/arcgis/rest/services/MaricopaDynamicQueryService/MapServer/3/query",
		description: "Assessor public GIS parcels layer query URL (ArcGIS REST).",
	},
	MARICOPA_RATE_PER_MIN: {
		rule: intRule(1, 100_000),
		default: "60",
		description: "Cluster-wide request budget for the REST API, per sliding minute (all nodes together).",
	},
	MARICOPA_GIS_RATE_PER_MIN: {
		rule: intRule(1, 100_000),
		default: "30",
		description: "Cluster-wide request budget for the GIS layer, per sliding minute.",
	},
	MARICOPA_RATE_WINDOW_S: {
		rule: intRule(1, 3600),
		default: "60",
		description:
			"Window of both budgets in seconds: the budget is RATE_PER_MIN requests per this window (tests use short windows).",
	},
	MARICOPA_RATE_SLACK_MS: {
		rule: intRule(1, 60_000),
		default: "10",
		description:
			"Clock-skew allowance between nodes of the budgets: a request leaves window + slack after the request a budget before it got its answer, so the budget holds in every sliding window on the host's clock (timers, network and load need no slack).",
	},
	MARICOPA_GIS_FIELDS: {
		rule: gisFieldsRule,
		description: `Field names of the GIS layer, as fact=FIELD pairs over the defaults (${Object.entries(
			DEFAULT_GIS_FIELDS,
		)
			.map(([k, v]) => `${k}=${v}`)
			.join(
				",",
			)}); checked at start against the layer's field list: a missing apn/zip/address stops collection, another missing field is a reported gap.`,
	},
	MARICOPA_GIS_PAGE_SIZE: {
		rule: intRule(1, 2000),
		default: "1000",
		description: "Rows asked for per GIS query (the layer's MaxRecordCount caps it).",
	},
	MARICOPA_PROPERTY_TYPES: {
		rule: listRule([...MARICOPA_PROPERTY_TYPES, "none"]),
		default: "residential",
		description: `Property types collectZip fetches REST parcel details for: ${MARICOPA_PROPERTY_TYPES.join(", ")} (parcels the layer gives no type get details too); none = bulk facts only.`,
	},
	MARICOPA_DETAIL_MAX_AGE_H: {
		rule: intRule(0, 100_000),
		default: "720",
		description:
			"Incremental collection: a parcel whose bulk facts are unchanged and whose details are younger than this is not fetched again. 0 = always fetch.",
	},
	MARICOPA_TIMEOUT_MS: {
		rule: intRule(100, 600_000),
		default: "20000",
		description: "Timeout of one HTTP request to the Assessor (API or GIS).",
	},
	MARICOPA_MAX_ATTEMPTS: {
		rule: intRule(1, 20),
		default: "5",
		description: "Attempts per request on transient errors (5xx, timeouts, malformed bodies).",
	},
	MARICOPA_BACKOFF_BASE_MS: {
		rule: intRule(1, 600_000),
		default: "1000",
		description: "First retry backoff; doubles per attempt, with jitter.",
	},
	MARICOPA_BACKOFF_MAX_MS: {
		rule: intRule(1, 3_600_000),
		default: "60000",
		description: "Longest retry backoff.",
	},
	// Each Assessor host (REST, GIS) has its own breaker with these settings.
	...hostBreakerSettings(
		"MARICOPA",
		"Assessor host's",
		{},
		{
			OPEN_S: { name: "MARICOPA_BREAKER_OPEN_MS", convert: msToS },
		},
	),
	MARICOPA_DETAIL_BATCH: {
		rule: intRule(1, 500),
		default: "50",
		description:
			"Parcel details a page writes to the store at once (and at least every 2 s): smaller = fewer refetched after a worker dies mid-page, more store round trips.",
	},
	MARICOPA_CONCURRENCY: {
		rule: intRule(1, 1000),
		default: "8",
		description:
			"Parcel detail requests one collectZip task (a page) keeps in flight (the budget paces them cluster-wide).",
	},
} satisfies SettingGroup;

export interface MaricopaConfig {
	baseUrl: string;
	token: string | null;
	gisUrl: string;
	ratePerWindow: number;
	gisRatePerWindow: number;
	rateWindowMs: number;
	rateSlackMs: number;
	gisPageSize: number;
	gisFields: GisFieldNames;
	propertyTypes: MaricopaPropertyType[];
	detailMaxAgeMs: number;
	timeoutMs: number;
	maxAttempts: number;
	backoffBaseMs: number;
	backoffMaxMs: number;
	breaker: HostBreakerConfig;
	concurrency: number;
	detailBatch: number;
}

export function toMaricopaConfig(v: Record<string, unknown>): MaricopaConfig {
	return {
		baseUrl: (v.MARICOPA_BASE_URL as string).replace(/\/+$/, ""),
		token: (v.MARICOPA_TOKEN as string | undefined) ?? null,
		gisUrl: v.MARICOPA_GIS_URL as string,
		ratePerWindow: v.MARICOPA_RATE_PER_MIN as number,
		gisRatePerWindow: v.MARICOPA_GIS_RATE_PER_MIN as number,
		rateWindowMs: (v.MARICOPA_RATE_WINDOW_S as number) * 1000,
		rateSlackMs: v.MARICOPA_RATE_SLACK_MS as number,
		gisPageSize: v.MARICOPA_GIS_PAGE_SIZE as number,
		gisFields: {
			...DEFAULT_GIS_FIELDS,
			...((v.MARICOPA_GIS_FIELDS as Partial<GisFieldNames> | undefined) ?? {}),
		},
		propertyTypes: (v.MARICOPA_PROPERTY_TYPES as string[]).filter(
			(t): t is MaricopaPropertyType => t !== "none",
		),
		detailMaxAgeMs: (v.MARICOPA_DETAIL_MAX_AGE_H as number) * 3_600_000,
		timeoutMs: v.MARICOPA_TIMEOUT_MS as number,
		maxAttempts: v.MARICOPA_MAX_ATTEMPTS as number,
		backoffBaseMs: v.MARICOPA_BACKOFF_BASE_MS as number,
		backoffMaxMs: v.MARICOPA_BACKOFF_MAX_MS as number,
		breaker: toHostBreaker(v, "MARICOPA"),
		concurrency: v.MARICOPA_CONCURRENCY as number,
		detailBatch: v.MARICOPA_DETAIL_BATCH as number,
	};
}
