/**
 * Saguaro's MLS crawl against Crawlee on the same sandbox MLS site, side by side in one run: the same
 * pages (one ZIP's search pages, then every listing page they link), the same concurrency, the same
 * parser (src/mls/parser.ts, so only fetching and page handling differ), defences off (direct
 * traffic allowed, no rate limit) so nobody is blocked.
 *   - HTTP path:    Saguaro MlsScraper (undici, host policy)   vs Crawlee CheerioCrawler
 *   - browser path: Saguaro BrowserPool render (1 browser x C contexts) vs Crawlee PlaywrightCrawler
 *                   (same Chromium, same launch arguments, images/fonts/media blocked in both, each
 *                   by its own in-browser blocking: the pool's Fetch patterns, Crawlee's blockRequests)
 * Each contender runs in a fresh child process; the parent samples that process's tree (the Node
 * process and every browser process under it) in /proc and keeps the peak RSS and PSS.
 * Prints pages per second and peak memory per contender, and Saguaro/Crawlee ratios per path.
 *
 * Rounds (default 3) alternate the contenders' order; the tables give medians over the rounds.
 *
 *   node bench/mls-crawl.bench.ts [parcels=600] [concurrency=4] [--rounds=3] [--paths=http,browser] [--breakdown]
 * (--breakdown: each run also prints its peak PSS by process kind: node, browser, renderers, gpu...;
 *  --contenders=saguaro-browser,...: only those, for experiments;
 *  SAGUARO_NODE_FLAGS="--a --b": Saguaro's browser contender with these Node flags instead of the
 *  browser node's BROWSER_NODE_FLAGS; "" = none)
 * (parcels of the ZIP; about 15% are listed, so 600 parcels = ~90 listing pages + ~5 search pages)
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { BROWSER_NODE_FLAGS, BrowserPool, CHROMIUM_ARGS, LEAN_ARGS } from "../src/browser/pool.ts";
import { processMemory, processTree } from "../src/browser/process-memory.ts";
import { HostPolicy } from "../src/core/host-policy.ts";
import { loadFieldConfig } from "../src/mls/fields.ts";
import { parseListingPage, parseSearchPage } from "../src/mls/parser.ts";
import { MlsScraper } from "../src/mls/scraper.ts";
import { MemorySharedState } from "../src/shared-state/index.ts";

const ZIP = "85031";
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const FIELDS = loadFieldConfig(resolve(import.meta.dirname, "../config/mls-fields.json"));
/** Images, fonts and media by extension: all the sandbox's blocked resources are images (.jpg). */
const BLOCKED_URL_PATTERNS = [
	".jpg",
	".jpeg",
	".png",
	".gif",
	".webp",
	".svg",
	".woff",
	".woff2",
	".ttf",
	".mp4",
	".webm",
];

const CONTENDERS = ["saguaro-http", "crawlee-cheerio", "saguaro-browser", "crawlee-playwright"] as const;
type Contender = (typeof CONTENDERS)[number];

/** What a child reports: pages fetched, listings parsed, wall time of the crawl itself. */
interface RunReport {
	pages: number;
	listings: number;
	failures: number;
	ms: number;
}

interface Measured extends RunReport {
	contender: Contender;
	peakRssMb: number;
	peakPssMb: number;
	/** PSS MB by process kind (node, browser, renderer xN, gpu, utility, zygote...) at the PSS peak. */
	peakBreakdown: Record<string, number>;
}

// ---------------------------------------------------------------------------------------------
// Child side: one contender crawls the ZIP and prints its report.

async function runSaguaroHttp(base: string, concurrency: number): Promise<RunReport> {
	const policy = new HostPolicy(new MemorySharedState(), {
		host: "mls-bench",
		rate: { points: 1_000_000, durationMs: 60_000 },
		retry: { maxAttempts: 3, baseMs: 100, maxMs: 1000 },
		breaker: { minRequests: 100_000 },
	});
	const scraper = new MlsScraper({
		baseUrl: base,
		fields: FIELDS,
		policy,
		proxies: null,
		solver: null,
		renderer: null,
		requestTimeoutMs: 30_000,
		maxPages: 1000,
		concurrency,
		captchaBudget: 0,
	});
	const started = performance.now();
	const r = await scraper.collectZip(ZIP, { save: async () => "new" });
	const ms = performance.now() - started;
	await scraper.close();
	return { pages: r.searchPages + r.listings + r.failures, listings: r.listings, failures: r.failures, ms };
}

async function runSaguaroBrowser(base: string, concurrency: number): Promise<RunReport> {
	const pool = new BrowserPool({
		executablePath: CHROMIUM,
		browsers: 1,
		contextsPerBrowser: concurrency,
		recyclePages: 100,
		recycleMs: 3_600_000,
		// The node's default ceiling (BROWSER_MAX_RSS_MB): above half of it pages are not kept.
		maxBrowserBytes: Number(process.env.BROWSER_MAX_RSS_MB ?? 1024) * 1024 * 1024,
		pageTimeoutMs: 30_000,
		blockResources: true,
		maxHtmlBytes: 4 * 1024 * 1024,
		queueTimeoutMs: 120_000,
		proxies: null,
		solver: null,
		...(process.env.SAGUARO_PAGE_REUSE ? { pageReuse: Number(process.env.SAGUARO_PAGE_REUSE) } : {}),
		// Experiments: SAGUARO_CHROMIUM_ARGS="--a --b" replaces the pool's LEAN_ARGS ("" = none).
		...(process.env.SAGUARO_CHROMIUM_ARGS !== undefined
			? { chromiumArgs: process.env.SAGUARO_CHROMIUM_ARGS.split(" ").filter(Boolean) }
			: {}),
	});
	pool.start();
	const started = performance.now();
	let pages = 0;
	let listings = 0;
	let failures = 0;
	const queue: string[] = [];
	const listingWorkers: Promise<void>[] = [];
	// No session names: the slots share the browser's one context (as Crawlee's pages share its).
	const worker = async () => {
		for (let url = queue.shift(); url; url = queue.shift()) {
			pages++;
			try {
				const r = await pool.render({ url });
				if (parseListingPage(r.html ?? "", r.url, FIELDS).ok) listings++;
				else failures++;
			} catch {
				failures++;
			}
		}
	};
	// Search pages in order (each names the next); listing workers start as soon as cards arrive.
	let next: string | null = `${base}/simple-search/?q=${ZIP}&page=1`;
	while (next) {
		pages++;
		const r = await pool.render({ url: next });
		const parsed = parseSearchPage(r.html ?? "", r.url, FIELDS);
		queue.push(...parsed.cards.map((c) => c.url));
		next = parsed.nextUrl;
		while (listingWorkers.length < concurrency - 1 && queue.length > 0) listingWorkers.push(worker());
	}
	listingWorkers.push(worker());
	await Promise.all(listingWorkers);
	// Workers that ran dry before the last search page: drain what is left.
	await Promise.all(Array.from({ length: concurrency }, () => worker()));
	const ms = performance.now() - started;
	await pool.close();
	return { pages, listings, failures, ms };
}

interface CrawleeCounts {
	pages: number;
	listings: number;
	failures: number;
}

/** Shared page handling of both Crawlee crawlers: search pages enqueue, listing pages parse. */
function crawleeHandler(
	counts: CrawleeCounts,
	addRequests: (r: { url: string; label: string }[]) => Promise<unknown>,
) {
	return async (label: string | undefined, html: string, url: string) => {
		counts.pages++;
		if (label === "SEARCH") {
			const parsed = parseSearchPage(html, url, FIELDS);
			const requests = parsed.cards.map((c) => ({ url: c.url, label: "LISTING" }));
			if (parsed.nextUrl) requests.push({ url: parsed.nextUrl, label: "SEARCH" });
			await addRequests(requests);
		} else if (parseListingPage(html, url, FIELDS).ok) counts.listings++;
		else counts.failures++;
	};
}

async function runCrawleeCheerio(base: string, concurrency: number): Promise<RunReport> {
	const { CheerioCrawler } = await import("@crawlee/cheerio");
	const counts: CrawleeCounts = { pages: 0, listings: 0, failures: 0 };
	const crawler: InstanceType<typeof CheerioCrawler> = new CheerioCrawler({
		minConcurrency: concurrency,
		maxConcurrency: concurrency,
		maxRequestRetries: 2,
		requestHandler: async ({ request, body }) =>
			handle(
				request.label,
				typeof body === "string" ? body : body.toString("utf8"),
				request.loadedUrl ?? request.url,
			),
		failedRequestHandler: async () => {
			counts.failures++;
		},
	});
	const handle = crawleeHandler(counts, (r) => crawler.addRequests(r));
	const started = performance.now();
	await crawler.run([{ url: `${base}/simple-search/?q=${ZIP}&page=1`, label: "SEARCH" }]);
	return { ...counts, ms: performance.now() - started };
}

async function runCrawleePlaywright(base: string, concurrency: number): Promise<RunReport> {
	const { PlaywrightCrawler } = await import("@crawlee/playwright");
	const counts: CrawleeCounts = { pages: 0, listings: 0, failures: 0 };
	const crawler: InstanceType<typeof PlaywrightCrawler> = new PlaywrightCrawler({
		minConcurrency: concurrency,
		maxConcurrency: concurrency,
		maxRequestRetries: 2,
		headless: true,
		launchContext: {
			launcher: chromium,
			// The pool's launch arguments, its LEAN_ARGS included: the browsers differ in nothing.
			launchOptions: { executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...LEAN_ARGS] },
		},
		preNavigationHooks: [
			// Crawlee's own blocking (Chromium drops the URLs itself, no route round trips and the
			// cache kept, as the pool's blocking does), for the blocked types' extensions (its
			// default list would block stylesheets too).
			async ({ blockRequests }) => blockRequests({ urlPatterns: BLOCKED_URL_PATTERNS }),
		],
		requestHandler: async ({ request, page }) => handle(request.label, await page.content(), page.url()),
		failedRequestHandler: async () => {
			counts.failures++;
		},
	});
	const handle = crawleeHandler(counts, (r) => crawler.addRequests(r));
	const started = performance.now();
	await crawler.run([{ url: `${base}/simple-search/?q=${ZIP}&page=1`, label: "SEARCH" }]);
	return { ...counts, ms: performance.now() - started };
}

async function child(contender: Contender, base: string, concurrency: number): Promise<void> {
	const run = {
		"saguaro-http": runSaguaroHttp,
		"saguaro-browser": runSaguaroBrowser,
		"crawlee-cheerio": runCrawleeCheerio,
		"crawlee-playwright": runCrawleePlaywright,
	}[contender];
	const report = await run(base, concurrency);
	process.stdout.write(`\nRESULT ${JSON.stringify(report)}\n`);
}

// ---------------------------------------------------------------------------------------------
// Parent side: sandbox, one child per contender, memory sampling, the table.

function rssOf(pid: number): number {
	try {
		const status = readFileSync(`/proc/${pid}/status`, "utf8");
		const kb = /^VmRSS:\s+(\d+) kB/m.exec(status);
		return kb ? Number(kb[1]) * 1024 : 0;
	} catch {
		return 0;
	}
}

/** What kind of process `pid` is: the contender's node, or a Chromium process by its --type. */
function kindOf(pid: number, root: number): string {
	if (pid === root) return "node";
	let cmd = "";
	try {
		cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
	} catch {
		return "gone";
	}
	if (!cmd.includes("chromium")) return "other";
	const type = /--type=([a-z-]+)/.exec(cmd)?.[1];
	if (!type) return "browser";
	if (type === "utility") return /utility-sub-type=([\w.]+)/.exec(cmd)?.[1]?.split(".")[0] ?? "utility";
	return type;
}

/** PSS MB per kind of process, with a count where there are several (renderer x4). */
function breakdown(root: number, byPid: readonly (readonly [number, number])[]): Record<string, number> {
	const mb = new Map<string, number>();
	const n = new Map<string, number>();
	for (const [pid, bytes] of byPid) {
		const kind = kindOf(pid, root);
		mb.set(kind, (mb.get(kind) ?? 0) + bytes / 1048576);
		n.set(kind, (n.get(kind) ?? 0) + 1);
	}
	return Object.fromEntries(
		[...mb].map(([k, v]) => [(n.get(k) ?? 1) > 1 ? `${k} x${n.get(k)}` : k, Math.round(v)]),
	);
}

async function measure(contender: Contender, base: string, concurrency: number): Promise<Measured> {
	const storage = mkdtempSync(join(tmpdir(), "saguaro-bench-crawlee-"));
	const proc = spawn(
		process.execPath,
		[
			// Saguaro's browser contender runs as a browser node does (the browser image's Node flags).
			...(contender === "saguaro-browser"
				? process.env.SAGUARO_NODE_FLAGS !== undefined
					? process.env.SAGUARO_NODE_FLAGS.split(" ").filter(Boolean)
					: BROWSER_NODE_FLAGS
				: []),
			import.meta.filename,
			`--child=${contender}`,
			base,
			String(concurrency),
		],
		{
			// Crawlee keeps its request queue and key-value stores here; purged on start, removed after.
			env: {
				...process.env,
				CRAWLEE_STORAGE_DIR: storage,
				CRAWLEE_PURGE_ON_START: "1",
				CRAWLEE_LOG_LEVEL: "ERROR",
			},
			stdio: ["ignore", "pipe", "inherit"],
		},
	);
	let out = "";
	proc.stdout.on("data", (d: Buffer) => {
		out += d.toString();
	});
	let peakRss = 0;
	let peakPss = 0;
	let peakBreakdown: Record<string, number> = {};
	const sample = () => {
		if (!proc.pid) return;
		const tree = processTree(proc.pid);
		peakRss = Math.max(
			peakRss,
			tree.reduce((s, p) => s + rssOf(p), 0),
		);
		const byPid = tree.map((p) => [p, processMemory(p)] as const);
		const pss = byPid.reduce((s, [, m]) => s + m, 0);
		if (pss > peakPss) {
			peakPss = pss;
			peakBreakdown = breakdown(proc.pid, byPid);
		}
	};
	const timer = setInterval(sample, 100);
	const code = await new Promise<number | null>((r) => proc.on("exit", r));
	clearInterval(timer);
	rmSync(storage, { recursive: true, force: true });
	const line = out.split("\n").find((l) => l.startsWith("RESULT "));
	if (code !== 0 || !line) throw new Error(`${contender} exited ${code}: ${out.slice(-2000)}`);
	const report = JSON.parse(line.slice(7)) as RunReport;
	return {
		contender,
		...report,
		peakRssMb: peakRss / 1048576,
		peakPssMb: peakPss / 1048576,
		peakBreakdown,
	};
}

async function parent(
	parcels: number,
	concurrency: number,
	rounds: number,
	contenders: readonly Contender[],
	verbose: boolean,
): Promise<void> {
	// Imported here, not at the top: the contenders' child processes run this file too, and the
	// sandbox (image encoding, the generator) is nothing either of them carries in production.
	const { startSandbox } = await import("../sandbox/index.ts");
	const sandbox = await startSandbox({
		seed: 7,
		world: { zips: [ZIP], parcelsPerZip: parcels, listingShare: 0.15, relistShare: 0 },
		// Every page carries its facts in the HTML, so the HTTP contenders never need a browser.
		mls: { pageSize: 20, jsRenderedShare: 0, defences: { rateLimit: null, direct: "allow" } },
	});
	try {
		const expected = sandbox.mls.listingIds(ZIP).length;
		console.log(
			`MLS sandbox ${sandbox.urls.mls}: ZIP ${ZIP}, ${expected} listings, concurrency ${concurrency}`,
		);
		// Rounds alternate the order of the contenders (round r starts with contender r), so none
		// always runs first or last on a machine whose load drifts; the table gives medians.
		const runs = new Map<Contender, Measured[]>(contenders.map((c) => [c, []]));
		for (let round = 0; round < rounds; round++) {
			const order = contenders.map((_, i) => contenders[(i + round) % contenders.length]!);
			for (const contender of order) {
				const m = await measure(contender, sandbox.urls.mls, concurrency);
				if (m.listings !== expected) console.warn(`${contender}: ${m.listings}/${expected} listings parsed`);
				runs.get(contender)!.push(m);
				console.log(
					`round ${round + 1} ${contender.padEnd(18)} ${(m.pages / (m.ms / 1000)).toFixed(1).padStart(6)} pages/s  peak PSS ${Math.round(m.peakPssMb)} MB  peak RSS ${Math.round(m.peakRssMb)} MB`,
				);
				if (verbose) console.log(`  PSS MB at the peak: ${JSON.stringify(m.peakBreakdown)}`);
			}
		}
		const median = (xs: number[]) => {
			const v = [...xs].sort((a, b) => a - b);
			const mid = Math.floor(v.length / 2);
			return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
		};
		const results: Measured[] = contenders.map((c) => {
			const rs = runs.get(c)!;
			const msMedian = median(rs.map((r) => r.ms / r.pages)) * rs[0]!.pages;
			return {
				...rs[0]!,
				failures: rs.reduce((s, r) => s + r.failures, 0),
				ms: msMedian,
				peakRssMb: median(rs.map((r) => r.peakRssMb)),
				peakPssMb: median(rs.map((r) => r.peakPssMb)),
			};
		});
		console.log(`\nmedians over ${rounds} round(s)`);
		const pps = (m: Measured) => m.pages / (m.ms / 1000);
		console.table(
			results.map((m) => ({
				contender: m.contender,
				pages: m.pages,
				listings: m.listings,
				failures: m.failures,
				seconds: Number((m.ms / 1000).toFixed(2)),
				"pages/s": Number(pps(m).toFixed(1)),
				"peak RSS MB": Math.round(m.peakRssMb),
				"peak PSS MB": Math.round(m.peakPssMb),
			})),
		);
		const by = (c: Contender) => results.find((r) => r.contender === c);
		const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
		console.log("Saguaro / Crawlee (pages/s: higher is better for Saguaro; memory: lower is better)");
		const pairs = [
			["HTTP (MlsScraper vs CheerioCrawler)", by("saguaro-http"), by("crawlee-cheerio")] as const,
			[
				"browser (BrowserPool vs PlaywrightCrawler)",
				by("saguaro-browser"),
				by("crawlee-playwright"),
			] as const,
		].filter(([, s, c]) => s && c);
		console.table(
			pairs.map(([path, s, c]) => ({
				path,
				"pages/s": ratio(pps(s!), pps(c!)),
				"peak RSS": ratio(s!.peakRssMb, c!.peakRssMb),
				"peak PSS": ratio(s!.peakPssMb, c!.peakPssMb),
			})),
		);
	} finally {
		await sandbox.stop();
	}
}

const childArg = process.argv.find((a) => a.startsWith("--child="));
if (childArg) {
	const contender = childArg.slice("--child=".length) as Contender;
	if (!CONTENDERS.includes(contender)) throw new Error(`unknown contender ${contender}`);
	const [base, concurrency] = process.argv.slice(process.argv.indexOf(childArg) + 1);
	await child(contender, base as string, Number(concurrency));
	process.exit(0);
} else {
	const positional = process.argv.slice(2).filter((a) => !a.startsWith("--"));
	const parcels = Number(positional[0] ?? 600);
	const concurrency = Number(positional[1] ?? 4);
	const rounds = Number(process.argv.find((a) => a.startsWith("--rounds="))?.slice(9) ?? 3);
	const only = process.argv.find((a) => a.startsWith("--paths="))?.slice(8);
	const named = process.argv
		.find((a) => a.startsWith("--contenders="))
		?.slice(13)
		.split(",");
	const contenders = CONTENDERS.filter(
		(c) =>
			(!named || named.includes(c)) &&
			(!only ||
				only
					.split(",")
					.some((p) =>
						p === "http"
							? !c.endsWith("browser") && !c.endsWith("playwright")
							: c.endsWith("browser") || c.endsWith("playwright"),
					)),
	);
	if (!(parcels > 0 && parcels <= 5000 && concurrency >= 1 && concurrency <= 32))
		throw new Error("usage: node bench/mls-crawl.bench.ts [parcels 1..5000] [concurrency 1..32]");
	await parent(parcels, concurrency, rounds, contenders, process.argv.includes("--breakdown"));
}
