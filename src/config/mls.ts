import { resolve } from "node:path";
import { boolRule, intRule, type SettingGroup, urlRule } from "./define.ts";
import { type HostBreakerConfig, hostBreakerSettings, toHostBreaker } from "./host-policy.ts";

/** Settings of the Phoenix MLS scraper (mls service). */
export const mlsSettings = {
	MLS_BASE_URL: {
		rule: urlRule(["http", "https"]),
		default: "https://www.phoenixmlssearch.com",
		description: "Base URL of the Phoenix MLS search site.",
	},
	MLS_RATE_PER_MIN: {
		rule: intRule(1, 100_000),
		default: "30",
		description: "Requests per minute to the MLS host, for the whole cluster (shared budget).",
	},
	MLS_FIELDS_FILE: {
		rule: { type: "string", min: 1 },
		description:
			"JSON file of the selectors and label patterns the MLS parser reads fields by (relative to the working directory). Default: the bundled config/mls-fields.json.",
	},
	MLS_USE_PROXIES: {
		rule: boolRule,
		default: "true",
		description: "Route MLS traffic through proxy-pool sessions (the site blocks datacenter IPs).",
	},
	MLS_USE_BROWSER: {
		rule: boolRule,
		default: "true",
		description: "Fall back to browser-pool.render for pages that need script (facts filled client-side).",
	},
	MLS_MAX_ATTEMPTS: {
		rule: intRule(1, 50),
		default: "6",
		description: "Attempts per page across proxies/sessions before the page is recorded as failed.",
	},
	MLS_MAX_PAGES: {
		rule: intRule(1, 10_000),
		default: "200",
		description: "Upper bound on search-result pages followed for one ZIP.",
	},
	MLS_CONCURRENCY: {
		rule: intRule(1, 256),
		default: "4",
		description: "Listing pages fetched at once by one collectZip.",
	},
	MLS_LISTING_MAX_AGE_H: {
		rule: intRule(0, 720),
		default: "6",
		description:
			"A listing fetched less than this long ago is not fetched again by collectZip (a retried or repeated run carries on); 0 = always fetch.",
	},
	MLS_CAPTCHA_BUDGET: {
		rule: intRule(0, 100_000),
		default: "20",
		description:
			"Captcha solves one collectZip may spend, over HTTP and in the browser; past it a captcha wall rotates the proxy instead.",
	},
	MLS_REQUEST_TIMEOUT_S: {
		rule: intRule(1, 600),
		default: "20",
		description: "Timeout of one HTTP request to the MLS site.",
	},
	// Blocks are frequent on this site (proxies rotate past them): the breaker opens only at 80 %.
	...hostBreakerSettings(
		"MLS",
		"MLS host",
		{ minRequests: 20, failureRate: 0.8, openS: 60 },
		{ MIN_REQUESTS: { name: "MLS_BREAKER_FAILURES" }, OPEN_S: { name: "MLS_BREAKER_COOLDOWN_S" } },
	),
} satisfies SettingGroup;

export interface MlsConfig {
	baseUrl: string;
	ratePerMin: number;
	fieldsFile: string;
	useProxies: boolean;
	useBrowser: boolean;
	maxAttempts: number;
	maxPages: number;
	concurrency: number;
	listingMaxAgeMs: number;
	captchaBudget: number;
	requestTimeoutS: number;
	breaker: HostBreakerConfig;
}

export function toMlsConfig(v: Record<string, unknown>): MlsConfig {
	return {
		baseUrl: (v.MLS_BASE_URL as string).replace(/\/+$/, ""),
		ratePerMin: v.MLS_RATE_PER_MIN as number,
		// The bundled file is found from the project, not the working directory, so a node starts anywhere.
		fieldsFile: v.MLS_FIELDS_FILE
			? resolve(v.MLS_FIELDS_FILE as string)
			: resolve(import.meta.dirname, "../../config/mls-fields.json"),
		useProxies: v.MLS_USE_PROXIES as boolean,
		useBrowser: v.MLS_USE_BROWSER as boolean,
		maxAttempts: v.MLS_MAX_ATTEMPTS as number,
		maxPages: v.MLS_MAX_PAGES as number,
		concurrency: v.MLS_CONCURRENCY as number,
		listingMaxAgeMs: (v.MLS_LISTING_MAX_AGE_H as number) * 3_600_000,
		captchaBudget: v.MLS_CAPTCHA_BUDGET as number,
		requestTimeoutS: v.MLS_REQUEST_TIMEOUT_S as number,
		breaker: toHostBreaker(v, "MLS"),
	};
}
