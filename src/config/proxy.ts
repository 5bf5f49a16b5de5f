import type { ValidationRule } from "fastest-validator";
import { intRule, listRule, type SettingGroup, urlRule } from "./define.ts";

/** PROXY_GATEWAY_PORT: `auto` (a free port), `off` (or 0), or a port number. */
const gatewayPortRule = {
	type: "string",
	custom(value: unknown, errors: unknown[]) {
		const v = String(value).trim().toLowerCase();
		if (v === "auto" || v === "off") return v;
		const n = Number(v);
		if (/^\d+$/.test(v) && n >= 0 && n <= 65535) return n === 0 ? "off" : n;
		(errors as { type: string; message: string }[]).push({
			type: "gatewayPort",
			message: "must be auto, off or a port number (1-65535)",
		});
		return value;
	},
} as ValidationRule;

/** Rotation strategies of the proxy pool (src/proxy/rotation.ts implements them). */
export const ROTATION_STRATEGIES = ["round-robin", "random", "least-used", "weighted"] as const;
export type RotationStrategy = (typeof ROTATION_STRATEGIES)[number];

/** proxy-pool: upstream proxy sources, health checks, rotation, bans, the gateway, and 2captcha. */
export const proxySettings = {
	PROXIES: {
		rule: listRule(null),
		description: "Comma-separated upstream proxy URLs (http://user:pass@host:port).",
		secret: true,
	},
	PROXY_FILE: {
		rule: { type: "string", min: 1 },
		description: "File of upstream proxies, one URL a line (# comments); reloaded live when it changes.",
	},
	PROXY_LIST_URL: {
		rule: urlRule(["http", "https"]),
		description: "Provider list API, WebShare-shaped (e.g. https://proxy.webshare.io/api/v2/proxy/list/).",
	},
	PROXY_LIST_KEY: {
		rule: { type: "string", min: 1 },
		description: "API key of the provider list API (sent as 'Authorization: Token <key>').",
		secret: true,
	},
	PROXY_LIST_REFRESH_S: {
		rule: intRule(0, 86_400),
		default: "600",
		description: "How often the provider list is re-read; 0 = only at start.",
	},
	PROXY_COUNTRIES: {
		rule: { type: "string", pattern: /^[A-Za-z]{2}(\s*,\s*[A-Za-z]{2})*$/ },
		description:
			"Country codes (ISO 3166 alpha-2, e.g. US,CA) this node's pool keeps, for sources that tag their proxies (the provider list's country_code); untagged proxies are kept. Unset = every country. With REGION, run-time additions and sticky sessions are kept per region too.",
	},
	PROXY_ROTATION: {
		rule: { type: "enum", values: [...ROTATION_STRATEGIES] },
		default: "weighted",
		description: "Rotation strategy: round-robin, random, least-used, weighted (by health and latency).",
	},
	PROXY_CHECK_URL: {
		rule: urlRule(["http", "https"]),
		default: "https://www.gstatic.com/generate_204",
		description: "URL requested through each proxy by the active health check (2xx/3xx = healthy).",
	},
	PROXY_CHECK_INTERVAL_S: {
		rule: intRule(0, 86_400),
		default: "120",
		description: "Seconds between active health checks of every proxy; 0 = passive health only.",
	},
	PROXY_CHECK_TIMEOUT_MS: {
		rule: intRule(100, 120_000),
		default: "10000",
		description: "Time limit of one health check.",
	},
	PROXY_CHECK_CONCURRENCY: {
		rule: intRule(1, 1000),
		default: "20",
		description: "Health checks run at once.",
	},
	PROXY_DEAD_AFTER: {
		rule: intRule(1, 100),
		default: "3",
		description: "Consecutive failures that mark a proxy dead (skipped until a check or retry succeeds).",
	},
	PROXY_DEAD_RETRY_S: {
		rule: intRule(1, 86_400),
		default: "300",
		description: "A dead proxy gets one trial request again after this long.",
	},
	PROXY_BAN_COOLDOWN_S: {
		rule: intRule(1, 604_800),
		default: "900",
		description: "How long a proxy is skipped for a site that answered it 403/429 or a captcha.",
	},
	PROXY_SESSION_TTL_S: {
		rule: intRule(1, 86_400),
		default: "600",
		description: "Sticky session lifetime: a session key keeps its proxy this long after its last use.",
	},
	PROXY_LEASE_TTL_S: {
		rule: intRule(1, 86_400),
		default: "300",
		description: "An acquired proxy not released by then frees its concurrency slot (holder presumed dead).",
	},
	PROXY_MAX_CONCURRENCY: {
		rule: intRule(0, 10_000),
		default: "10",
		description: "Leases at once per proxy across the cluster; 0 = unlimited.",
	},
	PROXY_GATEWAY_PORT: {
		rule: gatewayPortRule,
		default: "auto",
		description:
			"Port of the rotating local gateway that MLS and browser traffic goes through (no credentials; session key in the username): auto = a free port (enough when the proxy-pool and its users share a machine), a number = that port (set one when nodes on other machines use this gateway), off (or 0) = no gateway (MLS_USE_PROXIES then fails, saying so).",
	},
	PROXY_GATEWAY_HOST: {
		rule: { type: "string", min: 1 },
		default: "127.0.0.1",
		description: "Address the gateway listens on (keep it on loopback or a private network: it has no auth).",
	},
	PROXY_GATEWAY_ATTEMPTS: {
		rule: intRule(1, 20),
		default: "3",
		description: "Upstream proxies the gateway tries per request before answering with the failure.",
	},
	PROXY_SECRETS_KEY: {
		rule: { type: "string", min: 32 },
		description:
			"Key (32+ random characters, the same on every node) that encrypts proxies added at run time (proxy-pool.add) before they go into the shared state (AES-256-GCM). Unset: with REDIS_URL, proxies with a password cannot be added at run time; embedded, a per-process key is used.",
		secret: true,
	},
	CAPTCHA_BASE_URL: {
		rule: urlRule(["http", "https"]),
		description:
			"2captcha API base URL. Default: https://2captcha.com (legacy) or https://api.2captcha.com (v2).",
	},
	CAPTCHA_KEY: {
		rule: { type: "string", min: 1 },
		description: "2captcha API key. Unset = solveCaptcha refuses.",
		secret: true,
	},
	CAPTCHA_PROTOCOL: {
		rule: { type: "enum", values: ["legacy", "v2"] },
		default: "v2",
		description: "2captcha protocol: legacy (in.php/res.php) or v2 (createTask/getTaskResult).",
	},
	CAPTCHA_BUDGET_USD_PER_DAY: {
		rule: { type: "number", convert: true, min: 0, max: 100_000 },
		default: "5",
		description: "Captcha spending cap per UTC day for the whole cluster, USD; 0 = never solve.",
	},
	CAPTCHA_PRICE_USD: {
		rule: { type: "number", convert: true, min: 0, max: 10 },
		default: "0.003",
		description:
			"Expected price of one solve (reserved against the budget; the v2 API reports the real cost).",
	},
	CAPTCHA_TIMEOUT_S: {
		rule: intRule(1, 3600),
		default: "180",
		description: "Time limit of one captcha solve.",
	},
	CAPTCHA_POLL_INTERVAL_MS: {
		rule: intRule(50, 60_000),
		default: "5000",
		description: "Time between result polls (2captcha asks for about 5 s).",
	},
} satisfies SettingGroup;

export interface ProxyConfig {
	proxies: string[];
	file: string | null;
	listUrl: string | null;
	listKey: string | null;
	listRefreshS: number;
	/** Encrypts run-time additions in the shared state; null = see PROXY_SECRETS_KEY. */
	secretsKey: string | null;
	rotation: RotationStrategy;
	checkUrl: string;
	checkIntervalS: number;
	checkTimeoutMs: number;
	checkConcurrency: number;
	deadAfter: number;
	deadRetryS: number;
	banCooldownS: number;
	sessionTtlS: number;
	leaseTtlS: number;
	/** REGION of this node: run-time additions and sticky sessions are the region's own. */
	region: string | null;
	/** Country codes (upper case) the pool keeps; empty = all. */
	countries: string[];
	maxConcurrency: number;
	/** A port, "auto" (a free one) or "off". */
	gatewayPort: number | "auto" | "off";
	gatewayHost: string;
	gatewayAttempts: number;
	captcha: {
		baseUrl: string | null;
		key: string | null;
		protocol: "legacy" | "v2";
		budgetUsdPerDay: number;
		priceUsd: number;
		timeoutS: number;
		pollIntervalMs: number;
	};
}

export function toProxyConfig(v: Record<string, unknown>): ProxyConfig {
	return {
		proxies: (v.PROXIES as string[] | undefined) ?? [],
		file: (v.PROXY_FILE as string | undefined) ?? null,
		listUrl: (v.PROXY_LIST_URL as string | undefined) ?? null,
		listKey: (v.PROXY_LIST_KEY as string | undefined) ?? null,
		listRefreshS: v.PROXY_LIST_REFRESH_S as number,
		secretsKey: (v.PROXY_SECRETS_KEY as string | undefined) ?? null,
		rotation: v.PROXY_ROTATION as RotationStrategy,
		checkUrl: v.PROXY_CHECK_URL as string,
		checkIntervalS: v.PROXY_CHECK_INTERVAL_S as number,
		checkTimeoutMs: v.PROXY_CHECK_TIMEOUT_MS as number,
		checkConcurrency: v.PROXY_CHECK_CONCURRENCY as number,
		deadAfter: v.PROXY_DEAD_AFTER as number,
		deadRetryS: v.PROXY_DEAD_RETRY_S as number,
		banCooldownS: v.PROXY_BAN_COOLDOWN_S as number,
		sessionTtlS: v.PROXY_SESSION_TTL_S as number,
		leaseTtlS: v.PROXY_LEASE_TTL_S as number,
		region: (v.REGION as string | undefined) ?? null,
		countries: ((v.PROXY_COUNTRIES as string | undefined) ?? "")
			.split(",")
			.map((c) => c.trim().toUpperCase())
			.filter(Boolean),
		maxConcurrency: v.PROXY_MAX_CONCURRENCY as number,
		gatewayPort: v.PROXY_GATEWAY_PORT as number | "auto" | "off",
		gatewayHost: v.PROXY_GATEWAY_HOST as string,
		gatewayAttempts: v.PROXY_GATEWAY_ATTEMPTS as number,
		captcha: {
			baseUrl: (v.CAPTCHA_BASE_URL as string | undefined) ?? null,
			key: (v.CAPTCHA_KEY as string | undefined) ?? null,
			protocol: v.CAPTCHA_PROTOCOL as "legacy" | "v2",
			budgetUsdPerDay: v.CAPTCHA_BUDGET_USD_PER_DAY as number,
			priceUsd: v.CAPTCHA_PRICE_USD as number,
			timeoutS: v.CAPTCHA_TIMEOUT_S as number,
			pollIntervalMs: v.CAPTCHA_POLL_INTERVAL_MS as number,
		},
	};
}
