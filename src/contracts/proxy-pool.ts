/**
 * proxy-pool's actions (services/proxy-pool.service.ts) as its callers see them, and the one type of
 * each concept they share: a lease (`ProxyLease`), what a request through it met (`LeaseOutcome`),
 * a captcha challenge and its solver (`CaptchaSolver`, used by mls and browser-pool alike).
 */
import { ROTATION_STRATEGIES, type RotationStrategy } from "../config/proxy.ts";
import { type Action, callerOf } from "./call.ts";
import type { ParamsSchema } from "./params.ts";

const ID = { type: "string", min: 1, max: 100 } as const;
const DOMAIN = { type: "string", min: 1, max: 253 } as const;

export interface AcquireParams {
	/** Target site (hostname); proxies banned by it are skipped. */
	domain?: string;
	/** Sticky session key: the same proxy while it works and the session is fresh. */
	session?: string;
	/** Proxy ids not to use (e.g. the ones that just failed this request). */
	exclude?: string[];
	strategy?: RotationStrategy;
}

export const acquireParams = {
	domain: { type: "string", optional: true, max: 253 },
	session: { type: "string", optional: true, min: 1, max: 200 },
	exclude: { type: "array", optional: true, items: "string", max: 1000 },
	strategy: { type: "enum", optional: true, values: [...ROTATION_STRATEGIES] },
} as const satisfies ParamsSchema<AcquireParams>;

/** A proxy as answered over the bus: never its password. */
export interface PublicProxyView {
	id: string;
	protocol: string;
	host: string;
	port: number;
	username: string;
	label: string;
	source: string;
	countryCode?: string;
}

export interface AcquireResult {
	leaseId: string;
	proxy: PublicProxyView;
	/** True when the session already had this proxy. */
	sticky: boolean;
	/** The lease on the rotating gateway (credential-free); null when the gateway is off. */
	proxyUrl: string | null;
}

/** A lease as a caller on any node uses it: its id and its URL on the gateway. */
export interface ProxyLease {
	leaseId: string;
	/** URL to connect through (never logged or returned). */
	proxyUrl: string;
}

/** What a caller saw through a leased proxy (proxy-pool.release). */
export interface LeaseOutcome {
	/** The proxy carried the request (whatever the site answered). False = proxy/network failure. */
	ok: boolean;
	/** HTTP status the site answered, if any. */
	status?: number;
	latencyMs?: number;
	/** The site showed a captcha or block page (a ban even with a 200). */
	blocked?: boolean;
	error?: string;
	/** The proxy was never used (the caller failed before sending anything): free it, learn nothing. */
	unused?: boolean;
}

/** `proxy-pool.release`: the lease and what the request through it met. */
export type ReleaseParams = LeaseOutcome & { leaseId: string };

export const releaseParams = {
	leaseId: { type: "string", min: 1, max: 200 },
	ok: "boolean",
	status: { type: "number", integer: true, min: 100, max: 999, optional: true },
	latencyMs: { type: "number", min: 0, optional: true },
	blocked: { type: "boolean", optional: true },
	error: { type: "string", max: 500, optional: true },
	unused: { type: "boolean", optional: true },
} as const satisfies ParamsSchema<ReleaseParams>;

export type CaptchaKind = "recaptcha" | "hcaptcha" | "image";

export interface CaptchaChallenge {
	type: CaptchaKind;
	/** Site key (reCAPTCHA googlekey / hCaptcha sitekey). */
	sitekey?: string;
	pageurl?: string;
	/** Base64 image for `image`. */
	body?: string;
}

export const solveCaptchaParams = {
	type: { type: "enum", values: ["recaptcha", "hcaptcha", "image"] },
	sitekey: { type: "string", optional: true, min: 1, max: 200 },
	pageurl: { type: "url", optional: true },
	body: { type: "string", optional: true, min: 4, max: 700_000 },
} as const satisfies ParamsSchema<CaptchaChallenge>;

export interface ReportCaptchaParams {
	/** The solve's id (`CaptchaSolution.id`). */
	id: string;
	correct: boolean;
}

export const reportCaptchaParams = {
	id: ID,
	correct: "boolean",
} as const satisfies ParamsSchema<ReportCaptchaParams>;

export interface CaptchaSolution {
	/** The solver's task id (for reports). */
	id: string;
	token: string;
	/** USD charged (estimated for the legacy protocol, which does not say). */
	costUsd: number;
}

/** `proxy-pool.solveCaptcha`'s answer. */
export interface SolveCaptchaResult extends CaptchaSolution {
	/** True when this caller got another caller's solve instead of paying for its own. */
	shared: boolean;
}

/** Solves a captcha wall met on a page (mls over HTTP, browser-pool in Chromium): the token. */
export interface CaptchaSolver {
	solve(challenge: { type: "hcaptcha" | "recaptcha"; sitekey: string; pageurl: string }): Promise<string>;
}

/** One proxy as `proxy-pool.list` answers it. */
export interface ProxyListRow extends PublicProxyView {
	state: string;
	health: { latencyMs: number | null; successRate: number } | null;
	inFlight: number;
	uses: number;
	bans: { domain: string; remainingS: number; reason: string }[];
}

export interface ListParams {
	/** Only this domain's bans. */
	domain?: string;
}

export const listParams = {
	domain: { type: "string", optional: true, max: 253 },
} as const satisfies ParamsSchema<ListParams>;

export interface CheckParams {
	/** Proxies to check now; default all. */
	ids?: string[];
}

export const checkParams = {
	ids: { type: "array", optional: true, items: "string", max: 10_000 },
} as const satisfies ParamsSchema<CheckParams>;

export interface AddParams {
	/** The proxy's URL, credentials included (sealed when stored). */
	url: string;
}

export const addParams = {
	url: { type: "string", min: 3, max: 2000 },
} as const satisfies ParamsSchema<AddParams>;

export interface RemoveParams {
	id: string;
}

export const removeParams = { id: ID } as const satisfies ParamsSchema<RemoveParams>;

export interface BanParams {
	id: string;
	domain: string;
	/** Default: PROXY_BAN_COOLDOWN_S. */
	cooldownS?: number;
}

export const banParams = {
	id: ID,
	domain: DOMAIN,
	cooldownS: { type: "number", integer: true, min: 1, max: 604_800, optional: true },
} as const satisfies ParamsSchema<BanParams>;

export interface UnbanParams {
	id: string;
	domain: string;
}

export const unbanParams = { id: ID, domain: DOMAIN } as const satisfies ParamsSchema<UnbanParams>;

export type ProxyPoolActions = {
	"proxy-pool.acquire": Action<AcquireParams, AcquireResult>;
	"proxy-pool.release": Action<ReleaseParams, { known: boolean; banned: boolean }>;
	"proxy-pool.solveCaptcha": Action<CaptchaChallenge, SolveCaptchaResult>;
	"proxy-pool.list": Action<ListParams, ProxyListRow[]>;
	"proxy-pool.stats": Action<Record<string, never>, Record<string, unknown>>;
};

export const callProxyPool = callerOf<ProxyPoolActions>();
