/**
 * The dashboard served at `/` by the api gateway: one page, its stylesheet and script under
 * `/assets/`, and uPlot (from node_modules, read at start) for the charts. The page polls the REST API
 * with the bearer token the user types (kept in localStorage) and shows jobs, queues, throughput,
 * sites, proxies, browsers, the LLM, schedules, nodes and data quality. It holds no data itself, so
 * it needs no auth. Every value is written with textContent, never as HTML (much of it comes from
 * scraped sites), and the CSP allows scripts and styles from the page's own origin only.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { DASHBOARD_JS } from "./dashboard-script.ts";
import { DASHBOARD_CSS } from "./dashboard-style.ts";

export const DASHBOARD_CSP =
	"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Saguaro</title>
<link rel="stylesheet" href="/assets/uplot.css">
<link rel="stylesheet" href="/assets/dashboard.css">
</head>
<body>
<header>
  <h1>Saguaro</h1>
  <span id="status" class="muted">not connected</span>
  <span id="updated" class="muted"></span>
  <input id="token" type="password" placeholder="API token (if required)" autocomplete="off">
</header>
<main>
  <section id="p-jobs" class="wide">
    <h2>Jobs</h2>
    <form id="collect">
      <input name="zips" placeholder="ZIPs: 85031 85033">
      <label><input type="checkbox" name="county"> whole county</label>
      <input name="sources" placeholder="sources (default: all)">
      <label><input type="checkbox" name="enrich"> enrich</label>
      <button>Collect</button>
    </form>
    <table id="jobs"></table>
    <div id="deadletters"></div>
  </section>
  <section id="p-throughput" class="wide">
    <h2>Throughput, last hour</h2>
    <div class="charts">
      <figure><figcaption>records / s by source</figcaption><div id="chart-records" class="chart"></div></figure>
      <figure><figcaption>requests / s by source</figcaption><div id="chart-requests" class="chart"></div></figure>
    </div>
    <p id="throughput-totals" class="muted"></p>
  </section>
  <section id="p-queues"><h2>Queues: tasks by state</h2><table id="queues"></table></section>
  <section id="p-sites"><h2>Sites</h2><table id="sites"></table></section>
  <section id="p-proxies" class="wide"><h2>Proxies</h2><p id="proxy-totals"></p><table id="proxies" class="sortable"></table></section>
  <section id="p-browsers"><h2>Browsers</h2><table id="browsers"></table></section>
  <section id="p-llm"><h2>LLM today</h2><table id="llm"></table></section>
  <section id="p-schedules"><h2>Schedules</h2><table id="schedules"></table></section>
  <section id="p-nodes"><h2>Nodes</h2><table id="nodes"></table></section>
  <section id="p-quality" class="wide"><h2>Data quality</h2><div id="properties"></div><div class="charts"><table id="confidence"></table><table id="completeness"></table></div></section>
  <section id="p-photos" class="wide"><h2>Photos of a property</h2><form id="photos-form"><input name="key" placeholder="property key (APN)"><button>Show</button></form><p id="photos-info" class="small"></p><div id="thumbs"></div></section>
</main>
<script src="/assets/uplot.js"></script>
<script src="/assets/dashboard.js"></script>
</body>
</html>
`;

const UPLOT_DIST = dirname(createRequire(import.meta.url).resolve("uplot"));

const ASSETS: Record<string, { type: string; load: () => string }> = {
	"dashboard.js": { type: "text/javascript; charset=utf-8", load: () => DASHBOARD_JS },
	"dashboard.css": { type: "text/css; charset=utf-8", load: () => DASHBOARD_CSS },
	"uplot.js": {
		type: "text/javascript; charset=utf-8",
		load: () => readFileSync(join(UPLOT_DIST, "uPlot.iife.min.js"), "utf8"),
	},
	"uplot.css": {
		type: "text/css; charset=utf-8",
		load: () => readFileSync(join(UPLOT_DIST, "uPlot.min.css"), "utf8"),
	},
};
const loaded = new Map<string, string>();

/** A static file of the dashboard by name (read once), or null. */
export function dashboardAsset(name: string): { type: string; body: string } | null {
	const asset = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
	if (!asset) return null;
	let body = loaded.get(name);
	if (body === undefined) {
		body = asset.load();
		loaded.set(name, body);
	}
	return { type: asset.type, body };
}
