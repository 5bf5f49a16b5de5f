import { boolRule, intRule, type SettingGroup } from "./define.ts";

/** Settings of the per-node Playwright pool (browser-pool service). */
export const browserSettings = {
	CHROMIUM_PATH: {
		rule: { type: "string", min: 1 },
		default: "/usr/bin/chromium",
		description: "Chromium executable Playwright drives (playwright-core ships no browser).",
	},
	BROWSER_COUNT: {
		rule: intRule(1, 64),
		default: "2",
		description: "Browsers per node.",
	},
	BROWSER_CONTEXTS: {
		rule: intRule(1, 64),
		default: "4",
		description:
			"Page slots per browser; BROWSER_COUNT x BROWSER_CONTEXTS is the node's render concurrency (its bulkhead). Slots rendering for the same session share that session's context (one proxy lease, one cookie jar).",
	},
	BROWSER_RECYCLE_PAGES: {
		rule: intRule(1, 1_000_000),
		default: "100",
		description: "A context is replaced after this many pages; a browser after this many x BROWSER_CONTEXTS.",
	},
	BROWSER_RECYCLE_MINUTES: {
		rule: intRule(1, 10_080),
		default: "30",
		description: "A browser is replaced after running this long (drained first, never mid-page).",
	},
	BROWSER_MAX_RSS_MB: {
		rule: intRule(64, 1_000_000),
		default: "1024",
		description:
			"Memory ceiling per browser (its process tree, PSS); above it the browser is drained and replaced.",
	},
	BROWSER_PAGE_TIMEOUT_S: {
		rule: intRule(1, 600),
		default: "30",
		description: "Navigation timeout of one render; the watchdog reclaims a page slot stuck past twice this.",
	},
	BROWSER_BLOCK_RESOURCES: {
		rule: boolRule,
		default: "true",
		description: "Abort image, font and media requests (pages render without them).",
	},
	BROWSER_MAX_HTML_KB: {
		rule: intRule(1, 10_240),
		default: "512",
		description: "Cap on the HTML a render returns over the bus (NATS payloads are capped at 1 MB).",
	},
	BROWSER_QUEUE_TIMEOUT_S: {
		rule: intRule(1, 3600),
		default: "60",
		description: "How long a render waits for a free page slot before it is refused.",
	},
} satisfies SettingGroup;

export interface BrowserConfig {
	chromiumPath: string;
	browsers: number;
	contextsPerBrowser: number;
	recyclePages: number;
	recycleMinutes: number;
	maxRssMb: number;
	pageTimeoutS: number;
	blockResources: boolean;
	maxHtmlKb: number;
	queueTimeoutS: number;
}

export function toBrowserConfig(v: Record<string, unknown>): BrowserConfig {
	return {
		chromiumPath: v.CHROMIUM_PATH as string,
		browsers: v.BROWSER_COUNT as number,
		contextsPerBrowser: v.BROWSER_CONTEXTS as number,
		recyclePages: v.BROWSER_RECYCLE_PAGES as number,
		recycleMinutes: v.BROWSER_RECYCLE_MINUTES as number,
		maxRssMb: v.BROWSER_MAX_RSS_MB as number,
		pageTimeoutS: v.BROWSER_PAGE_TIMEOUT_S as number,
		blockResources: v.BROWSER_BLOCK_RESOURCES as boolean,
		maxHtmlKb: v.BROWSER_MAX_HTML_KB as number,
		queueTimeoutS: v.BROWSER_QUEUE_TIMEOUT_S as number,
	};
}
