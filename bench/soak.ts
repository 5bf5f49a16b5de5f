/**
 * Soak: renders MLS listing pages through the browser pool without a pause for a long time and
 * watches memory. The sandbox MLS site runs in a child process (its memory is not the node's); the
 * pool runs here with the node's BROWSER_* settings (defaults: 2 browsers x 4 contexts, recycling
 * after 100 pages a context, 30 minutes, 1 GiB). Every sample (default each minute) reads the PSS,
 * USS and RSS of this process and of its browsers' process trees from /proc.
 *
 * At the end it prints the samples, the memory slope per hour after the warm-up (Theil-Sen over
 * the samples, as MB/h and as % of the mean) for PSS and for USS (private memory: other Chromiums on
 * the machine do not move it, while PSS falls as they share the library pages and rises when they
 * quit), the pool's recycles, reclaimed slots and failures, and the slots still busy once every
 * render has returned (must be 0).
 *
 * `npm run soak` runs Node as a browser node does (BROWSER_NODE_FLAGS) plus --expose-gc: each sample
 * first runs a full garbage collection, so the node's figures are what it keeps alive, not garbage
 * not yet collected. Its live JS heap, committed heap and external memory are printed beside them:
 * the way to tell a leak from a heap that has not settled yet.
 *
 *   npm run soak -- [--minutes=60] [--sample-s=60] [--warmup-min=<10% of the run, at least 1>]
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { BrowserPool } from "../src/browser/pool.ts";
import { processMemory, processPrivateMemory, processTree } from "../src/browser/process-memory.ts";
import { loadConfig } from "../src/config/index.ts";
import { loadFieldConfig } from "../src/mls/fields.ts";
import { parseSearchPage } from "../src/mls/parser.ts";

const ZIP = "85031";
const flag = (name: string, dflt: number) =>
	Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt);

async function sandboxChild(): Promise<void> {
	// Imported here: the pool's process (this file's parent side) is measured, and a browser node
	// does not carry the sandbox.
	const { startSandbox } = await import("../sandbox/index.ts");
	const sandbox = await startSandbox({
		seed: 11,
		world: { zips: [ZIP], parcelsPerZip: 1000, listingShare: 0.15, relistShare: 0 },
		mls: { pageSize: 20, jsRenderedShare: 0.5, defences: { rateLimit: null, direct: "allow" } },
	});
	console.log(`READY ${sandbox.urls.mls}`);
	await new Promise((r) => process.stdin.once("close", r).resume());
	await sandbox.stop();
}

function rss(pid: number): number {
	try {
		const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
		return kb ? Number(kb[1]) * 1024 : 0;
	} catch {
		return 0;
	}
}

interface Sample {
	min: number;
	pages: number;
	nodeHeapMb: number;
	/** V8 heap committed, and memory outside it that JS objects hold (Buffers): where a heap that is not growing can still grow the process. */
	nodeHeapTotalMb: number;
	nodeExternalMb: number;
	nodePssMb: number;
	browsersPssMb: number;
	totalPssMb: number;
	/** Private memory (USS) of the node and its browsers: what this run alone holds. */
	totalUssMb: number;
	totalRssMb: number;
	browserProcs: number;
}

/**
 * Theil-Sen slope of y over x: the median of the slopes between every two samples. One sample taken
 * while both browsers were being replaced (their memory briefly near zero) moves a least-squares fit
 * by tens of percent an hour; the median of pairwise slopes does not move for a few such samples.
 */
function slope(xs: number[], ys: number[]): number {
	const slopes: number[] = [];
	for (let i = 0; i < xs.length; i++)
		for (let j = i + 1; j < xs.length; j++)
			if (xs[j] !== xs[i]) slopes.push((ys[j]! - ys[i]!) / (xs[j]! - xs[i]!));
	if (slopes.length === 0) return 0;
	slopes.sort((a, b) => a - b);
	const mid = slopes.length >> 1;
	return slopes.length % 2 === 1 ? slopes[mid]! : (slopes[mid - 1]! + slopes[mid]!) / 2;
}

async function main(): Promise<void> {
	const minutes = flag("minutes", 60);
	const sampleS = flag("sample-s", 60);
	const warmupMin = flag("warmup-min", Math.max(1, minutes / 10));
	const child = spawn(process.execPath, [import.meta.filename, "--sandbox"], {
		stdio: ["pipe", "pipe", "inherit"],
	});
	const base = await new Promise<string>((ok, fail) => {
		createInterface({ input: child.stdout! }).on("line", (l) => {
			if (l.startsWith("READY ")) ok(l.slice(6));
		});
		child.once("exit", (code) => fail(new Error(`sandbox exited ${code}`)));
	});
	const fields = loadFieldConfig(resolve(import.meta.dirname, "../config/mls-fields.json"));
	const urls: string[] = [];
	for (let next: string | null = `${base}/simple-search/?q=${ZIP}&page=1`; next; ) {
		const html = await (await fetch(next)).text();
		const parsed = parseSearchPage(html, next, fields);
		urls.push(...parsed.cards.map((c) => c.url));
		next = parsed.nextUrl;
	}
	const b = loadConfig().browser;
	const pool = new BrowserPool({
		executablePath: b.chromiumPath,
		browsers: b.browsers,
		contextsPerBrowser: b.contextsPerBrowser,
		recyclePages: b.recyclePages,
		recycleMs: b.recycleMinutes * 60_000,
		maxBrowserBytes: b.maxRssMb * 1024 * 1024,
		pageTimeoutMs: b.pageTimeoutS * 1000,
		blockResources: b.blockResources,
		maxHtmlBytes: b.maxHtmlKb * 1024,
		queueTimeoutMs: b.queueTimeoutS * 1000,
		proxies: null,
		solver: null,
	});
	pool.start();
	const slots = b.browsers * b.contextsPerBrowser;
	console.log(
		`soak: ${minutes} min, ${b.browsers} browsers x ${b.contextsPerBrowser} contexts, ${urls.length} listing pages in rotation (half filled by script), sample every ${sampleS} s, warm-up ${warmupMin} min`,
	);
	const started = Date.now();
	const endAt = started + minutes * 60_000;
	let next = 0;
	let errors = 0;
	// No session names: the slots of a browser share its one context, replaced after
	// BROWSER_RECYCLE_PAGES (and the browser after that many x BROWSER_CONTEXTS).
	const worker = async () => {
		while (Date.now() < endAt) {
			const i = next++;
			try {
				// As the MLS scraper asks (no selector: the page's load event).
				await pool.render({ url: urls[i % urls.length]! });
			} catch {
				errors++;
			}
		}
	};
	const samples: Sample[] = [];
	const sample = () => {
		// Without --expose-gc (node bench/soak.ts run by hand) the figures include uncollected garbage.
		(globalThis as { gc?: () => void }).gc?.();
		const usage = process.memoryUsage();
		const tree = processTree(process.pid).filter((p) => p !== process.pid && p !== child.pid);
		const sandboxTree = new Set(child.pid ? processTree(child.pid) : []);
		const browsers = tree.filter((p) => !sandboxTree.has(p));
		const nodePss = processMemory(process.pid);
		const browsersPss = browsers.reduce((s, p) => s + processMemory(p), 0);
		const s: Sample = {
			min: Number(((Date.now() - started) / 60_000).toFixed(2)),
			pages: pool.stats().pages,
			nodeHeapMb: Math.round(usage.heapUsed / 1048576),
			nodeHeapTotalMb: Math.round(usage.heapTotal / 1048576),
			nodeExternalMb: Math.round(usage.external / 1048576),
			nodePssMb: Math.round(nodePss / 1048576),
			browsersPssMb: Math.round(browsersPss / 1048576),
			totalPssMb: Math.round((nodePss + browsersPss) / 1048576),
			totalUssMb: Math.round(
				[process.pid, ...browsers].reduce((sum, p) => sum + processPrivateMemory(p), 0) / 1048576,
			),
			totalRssMb: Math.round((rss(process.pid) + browsers.reduce((t, p) => t + rss(p), 0)) / 1048576),
			browserProcs: browsers.length,
		};
		samples.push(s);
		console.log(
			`${s.min.toFixed(1).padStart(5)} min  pages ${String(s.pages).padStart(6)}  PSS node ${s.nodePssMb} MB (JS heap ${s.nodeHeapMb}/${s.nodeHeapTotalMb} MB, external ${s.nodeExternalMb} MB) + browsers ${s.browsersPssMb} MB = ${s.totalPssMb} MB  (USS ${s.totalUssMb} MB, RSS ${s.totalRssMb} MB, ${s.browserProcs} browser processes)`,
		);
	};
	const timer = setInterval(sample, sampleS * 1000);
	await Promise.all(Array.from({ length: slots }, () => worker()));
	clearInterval(timer);
	// The last figure, once every render has returned (pages closing): shown, not fitted.
	const periodic = samples.length;
	sample();
	const stats = pool.stats();
	const busyLeft = stats.busy;
	await pool.close();
	child.stdin!.end();
	await new Promise((r) => child.once("exit", r));

	const after = samples.slice(0, periodic).filter((s) => s.min >= warmupMin);
	const hours = after.map((s) => s.min / 60);
	const total = after.map((s) => s.totalPssMb);
	const mean = total.reduce((a, c) => a + c, 0) / Math.max(1, total.length);
	const perHour = after.length >= 2 ? slope(hours, total) : Number.NaN;
	const uss = after.map((s) => s.totalUssMb);
	const ussMean = uss.reduce((a, c) => a + c, 0) / Math.max(1, uss.length);
	const ussPerHour = after.length >= 2 ? slope(hours, uss) : Number.NaN;
	const heap = after.map((s) => s.nodeHeapMb);
	const heapPerHour = after.length >= 2 ? slope(hours, heap) : Number.NaN;
	const seconds = (Date.now() - started) / 1000;
	console.log("\nsoak result");
	console.table([
		{
			minutes: Number((seconds / 60).toFixed(1)),
			pages: stats.pages,
			"pages/s": Number((stats.pages / seconds).toFixed(2)),
			errors,
			"samples after warm-up": after.length,
			"mean PSS MB": Math.round(mean),
			"peak PSS MB": Math.max(...samples.map((s) => s.totalPssMb)),
			"slope MB/h": Number(perHour.toFixed(1)),
			"slope %/h": Number(((perHour / mean) * 100).toFixed(1)),
			"USS slope %/h": Number(((ussPerHour / ussMean) * 100).toFixed(1)),
			"node JS heap slope MB/h": Number(heapPerHour.toFixed(1)),
			"context recycles": stats.recycles.contexts,
			"browser recycles": stats.recycles.browsers,
			reclaimed: stats.reclaimed,
			"busy slots left": busyLeft,
		},
	]);
	console.log(`failures by kind: ${JSON.stringify(stats.failures)}`);
	if (after.length < 2) console.log("(fewer than two samples after the warm-up: run longer for a slope)");
}

if (process.argv.includes("--sandbox")) await sandboxChild();
else await main();
