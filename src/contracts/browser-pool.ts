/**
 * browser-pool's actions (services/browser-pool.service.ts) as its callers see them: one render's
 * params and result (the only RenderResult), and the pool's stats.
 */
import { type Action, callerOf } from "./call.ts";
import type { ParamsSchema } from "./params.ts";

export interface RenderParams {
	url: string;
	/** Proxy session (sticky proxy, fingerprint, cookies); default: one per slot. */
	session?: string;
	/** Site the proxy is leased for (per-domain bans); default: the URL's host. */
	domain?: string;
	cookies?: { name: string; value: string; url: string }[];
	/** CSS selector to wait for before reading the page (bounded by the page timeout). */
	waitFor?: string;
	/** Fields to extract: name -> CSS selector (text of the first match, null when absent). */
	extract?: Record<string, string>;
	/** Skip the HTML in the answer (only status, URL and extracted fields). */
	noHtml?: boolean;
	/** Solve a captcha wall met on the page (default true); false leaves it, for callers out of budget. */
	solveCaptchas?: boolean;
}

export const renderParams = {
	url: { type: "url" },
	session: { type: "string", optional: true, min: 1, max: 200 },
	domain: { type: "string", optional: true, max: 253 },
	cookies: {
		type: "array",
		optional: true,
		max: 100,
		items: {
			type: "object",
			props: {
				name: { type: "string", min: 1, max: 200 },
				value: { type: "string", max: 4096 },
				url: { type: "url" },
			},
		},
	},
	waitFor: { type: "string", optional: true, max: 500 },
	extract: {
		type: "record",
		optional: true,
		key: { type: "string", max: 100 },
		value: { type: "string", max: 500 },
	},
	noHtml: { type: "boolean", optional: true },
	solveCaptchas: { type: "boolean", optional: true },
} as const satisfies ParamsSchema<RenderParams>;

export interface RenderResult {
	status: number;
	url: string;
	html: string | null;
	/** The HTML was cut at the size cap. */
	truncated: boolean;
	fields: Record<string, string | null> | null;
	/** A wall met: solved, a solve tried and failed, or left alone (no solver, or not asked to). */
	captcha: "none" | "solved" | "unsolved" | "skipped";
	ms: number;
}

export interface PoolStats {
	slots: number;
	busy: number;
	queued: number;
	pages: number;
	failures: Record<string, number>;
	recycles: { contexts: number; browsers: number };
	reclaimed: number;
	captchas: { solved: number; unsolved: number; skipped: number };
	browsers: {
		index: number;
		pages: number;
		ageS: number;
		memoryMb: number;
		draining: boolean;
		pid: number | null;
	}[];
	memoryMb: number;
	sessions: number;
}

export type BrowserPoolActions = {
	"browser-pool.render": Action<RenderParams, RenderResult>;
	"browser-pool.stats": Action<Record<string, never>, PoolStats>;
};

export const callBrowserPool = callerOf<BrowserPoolActions>();
