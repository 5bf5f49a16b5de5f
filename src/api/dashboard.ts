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

export const DASHBOARD_CSP =
	"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Default refresh of the live panels; the slow ones (nodes, schedules, data quality) every 6th. */
export const DASHBOARD_REFRESH_MS = 5000;

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

const DASHBOARD_CSS = `
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f6f4ef; color: #222; overflow-wrap: break-word; }
header { background: #2f5233; color: #fff; padding: 10px 16px; display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; }
header h1 { font-size: 18px; margin: 0; flex: 1 1 auto; }
header .muted { color: #cfe0cf; }
header input { width: 220px; max-width: 100%; }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 560px), 1fr)); gap: 14px; padding: 14px; }
section { background: #fff; border-radius: 6px; padding: 10px 14px; box-shadow: 0 1px 2px #0002; min-width: 0; }
section.wide { grid-column: 1 / -1; }
h2 { font-size: 15px; margin: 0 0 8px; }
table { border-collapse: collapse; width: 100%; }
td, th { text-align: left; padding: 3px 6px; border-bottom: 1px solid #eee; vertical-align: top; }
th { font-weight: 600; color: #444; white-space: nowrap; }
table.sortable th { cursor: pointer; }
table.sortable th[data-dir="1"]::after { content: " \\25B2"; }
table.sortable th[data-dir="-1"]::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { background: #e3e3e3; border-radius: 3px; height: 8px; min-width: 60px; margin: 4px 0 2px; }
.bar > div { background: #4a8c50; height: 8px; border-radius: 3px; max-width: 100%; }
.bar.warn > div { background: #c98a1b; }
.bar.bad > div { background: #b23b3b; }
.small { font-size: 12px; color: #555; }
.err { color: #a33; }
.ok { color: #2f7d32; }
.muted { color: #777; }
.pill { display: inline-block; padding: 0 6px; border-radius: 8px; background: #eee; font-size: 12px; margin: 1px 4px 1px 0; }
.pill.healthy, .pill.closed, .pill.completed, .pill.active { background: #dcefdc; }
.pill.degraded, .pill.half-open, .pill.running, .pill.paused, .pill.completed_with_errors { background: #f6e7c6; }
.pill.dead, .pill.open, .pill.failed, .pill.fatal { background: #f3d0d0; }
form { display: flex; gap: 6px; flex-wrap: wrap; margin-bottom: 8px; align-items: center; }
form input:not([type]) { flex: 1 1 140px; min-width: 0; }
button { margin: 1px 2px; white-space: nowrap; }
.pill { white-space: nowrap; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 420px), 1fr)); gap: 12px; }
figure { margin: 0; min-width: 0; }
figcaption { font-size: 12px; color: #555; }
.chart { width: 100%; min-height: 200px; overflow: hidden; }
#deadletters ul { margin: 4px 0; padding-left: 18px; }
#thumbs { display: flex; flex-wrap: wrap; gap: 6px; }
#thumbs figure { width: 160px; }
#thumbs img { width: 160px; height: 120px; object-fit: cover; background: #eee; display: block; }
@media (max-width: 640px) {
  main { padding: 8px; gap: 10px; }
  table, tbody, tr, td { display: block; width: 100%; }
  tr:first-child:has(th) { display: none; }
  table.sortable tr:first-child:has(th) { display: flex; flex-wrap: wrap; gap: 2px 8px; }
  table.sortable th { border: 0; padding: 2px 0; font-size: 12px; }
  tr { border-bottom: 1px solid #ddd; padding: 4px 0; }
  td { border: 0; padding: 1px 0; display: flex; gap: 8px; overflow-wrap: anywhere; }
  td[data-label]::before { content: attr(data-label); color: #777; flex: 0 0 38%; }
  td.num { text-align: left; }
  td > * { min-width: 0; flex: 1 1 auto; }
}
`;

const DASHBOARD_JS = `"use strict";
var REFRESH_MS = ${DASHBOARD_REFRESH_MS};
var SLOW_EVERY = 6;
var COLORS = { maricopa: "#2f7d32", mls: "#1f6fb2", llm: "#b26b1f" };
var tokenInput = document.getElementById("token");
tokenInput.value = localStorage.getItem("saguaro-token") || "";
tokenInput.addEventListener("change", function () { localStorage.setItem("saguaro-token", tokenInput.value); refresh(true); });

function api(method, path, body) {
  var headers = { "content-type": "application/json" };
  if (tokenInput.value) headers.authorization = "Bearer " + tokenInput.value;
  return fetch("/api/" + path, { method: method, headers: headers, body: body ? JSON.stringify(body) : undefined })
    .then(function (res) {
      return res.json().catch(function () { return null; }).then(function (data) {
        if (!res.ok) throw new Error((data && data.message) || res.status + " " + res.statusText);
        return data;
      });
    });
}

// ---- formatting: readable values, nothing raw ----
function num(n, digits) {
  if (n == null || isNaN(n)) return "—";
  return Number(n).toLocaleString(undefined, { maximumFractionDigits: digits == null ? 0 : digits });
}
function pct(x, digits) { return x == null || isNaN(x) ? "—" : (100 * x).toFixed(digits == null ? 0 : digits) + "%"; }
function usd(x) { return x == null ? "—" : "$" + Number(x).toFixed(Number(x) < 10 ? 4 : 2); }
function duration(s) {
  if (s == null || isNaN(s)) return "—";
  s = Math.max(0, Math.round(s));
  if (s < 60) return s + " s";
  var m = Math.floor(s / 60), h = Math.floor(m / 60), d = Math.floor(h / 24);
  if (d > 0) return d + " d " + (h % 24) + " h";
  if (h > 0) return h + " h " + String(m % 60).padStart(2, "0") + " min";
  return m + " min " + String(s % 60).padStart(2, "0") + " s";
}
function when(t) {
  if (t == null || t === "") return "—";
  var d = new Date(typeof t === "number" ? t : String(t));
  if (isNaN(d.getTime())) return "—";
  var today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}
function ago(t) {
  if (t == null) return "—";
  var s = (Date.now() - new Date(t).getTime()) / 1000;
  return s < 0 ? "in " + duration(-s) : duration(s) + " ago";
}

// ---- DOM helpers: text only ----
function el(tag, text, cls) {
  var e = document.createElement(tag);
  if (text != null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function frag() {
  var f = document.createElement("span");
  for (var i = 0; i < arguments.length; i++) {
    var a = arguments[i];
    if (a == null || a === "") continue;
    f.appendChild(a instanceof Node ? a : document.createTextNode(String(a)));
  }
  return f;
}
function pill(text, state) { return el("span", text, "pill " + String(state || text).replace(/[^a-z_-]/gi, "")); }
function bar(done, total, label, level) {
  var wrap = el("div");
  var outer = el("div", null, "bar" + (level ? " " + level : ""));
  var inner = el("div");
  var f = total ? Math.min(1, Math.max(0, done / total)) : 0;
  inner.style.width = (100 * f).toFixed(1) + "%";
  outer.appendChild(inner);
  wrap.appendChild(outer);
  if (label) wrap.appendChild(el("div", label, "small"));
  return wrap;
}
function button(label, onClick) {
  var b = el("button", label);
  b.type = "button";
  b.addEventListener("click", function () {
    b.disabled = true;
    Promise.resolve().then(onClick).catch(function (e) { alert(e.message); }).then(function () { b.disabled = false; refresh(false); });
  });
  return b;
}
function fill(id, head, rows, numeric) {
  var table = document.getElementById(id);
  table.replaceChildren();
  var tr = document.createElement("tr");
  head.forEach(function (h, i) {
    var th = el("th", h);
    th.dataset.col = String(i);
    if (table.dataset.sortCol === String(i)) th.dataset.dir = table.dataset.sortDir;
    tr.appendChild(th);
  });
  table.appendChild(tr);
  rows.forEach(function (row) {
    var r = document.createElement("tr");
    row.forEach(function (v, i) {
      var td = document.createElement("td");
      if (head[i]) td.dataset.label = head[i];
      if (numeric && numeric.indexOf(i) >= 0) td.className = "num";
      if (v instanceof Node) td.appendChild(v); else td.textContent = v == null ? "" : String(v);
      r.appendChild(td);
    });
    table.appendChild(r);
  });
}
function failed(id, err) {
  var table = document.getElementById(id);
  table.replaceChildren();
  var tr = document.createElement("tr");
  var td = el("td", err.message, "err");
  tr.appendChild(td);
  table.appendChild(tr);
}
function enc(s) { return encodeURIComponent(s); }

// ---- charts (uPlot) ----
var charts = {};
function drawChart(id, t, series) {
  var box = document.getElementById(id);
  var names = Object.keys(series);
  var data = [t].concat(names.map(function (n) { return series[n]; }));
  var points = 0;
  names.forEach(function (n) { series[n].forEach(function (v) { if (v > 0) points++; }); });
  box.dataset.points = String(points);
  box.dataset.series = names.join(",");
  var width = Math.max(200, (box.clientWidth || 300) - 4);
  var key = names.join(",");
  var c = charts[id];
  if (c && c.key === key) {
    if (c.plot.width !== width) c.plot.setSize({ width: width, height: 200 });
    c.plot.setData(data);
    showSpan(c.plot, t);
    return;
  }
  if (c) c.plot.destroy();
  var opts = {
    width: width, height: 200,
    legend: { show: true },
    scales: {
      // At least the last ten minutes, so a short run is a shape, not a dot.
      x: { time: true, auto: false },
      y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } },
    },
    axes: [{ space: 90 }, { size: 50 }],
    series: [{}].concat(names.map(function (n) {
      return { label: n, stroke: COLORS[n] || "#666", fill: (COLORS[n] || "#666") + "22", width: 2, points: { show: true, size: 4 }, value: function (u, v) { return v == null ? "—" : num(v, 2) + "/s"; } };
    })),
  };
  charts[id] = { key: key, plot: new uPlot(opts, data, box) };
  showSpan(charts[id].plot, t);
}
// At least the last ten minutes up to now, so a short run is a shape, not a dot.
function showSpan(plot, t) {
  var now = Date.now() / 1000;
  plot.setScale("x", { min: Math.min(t.length ? t[0] : now, now - 600), max: now });
}
window.addEventListener("resize", function () {
  Object.keys(charts).forEach(function (id) {
    var box = document.getElementById(id);
    charts[id].plot.setSize({ width: Math.max(200, (box.clientWidth || 300) - 4), height: 200 });
  });
});

// ---- panels ----
var proxySort = { col: 0, dir: 1 };
// Services some node runs (from the nodes panel): panels of absent services say so instead of calling them.
var present = null;
function serviceRuns(name) { return !present || present.has(name); }
function absent(id, name) { fill(id, [""], [["the " + name + " service is not running in this cluster"]]); return Promise.resolve(); }
var lastProxies = [];
var panels = {
  jobs: { fast: true, load: function () {
    return api("GET", "jobs?limit=15").then(function (jobs) {
      fill("jobs", ["job", "status", "progress", "rate", "ETA", "tasks", ""], jobs.map(function (p) {
        var items = p.items || { done: 0, expected: null };
        var label = items.expected != null
          ? num(items.done) + " / " + num(items.expected) + " records (" + pct(p.fraction) + ")"
          : num(items.done) + " records, " + num(p.tasks.done + p.tasks.dead + p.tasks.cancelled) + " / " + num(p.tasks.total) + " tasks (" + pct(p.fraction) + ")";
        var live = p.status === "running" || p.status === "cancelling";
        var t = p.tasks;
        var tasks = frag(num(t.pending) + " pending · " + num(t.leased) + " running · " + num(t.done) + " done",
          t.dead ? el("span", " · " + num(t.dead) + " dead", "err") : "", t.cancelled ? " · " + num(t.cancelled) + " cancelled" : "");
        var actions = frag(live ? button("cancel", function () { return api("POST", "jobs/" + enc(p.jobId) + "/cancel"); }) : "",
          !live && (t.dead > 0 || p.status === "failed" || p.status === "cancelled") ? button("retry", function () { return api("POST", "jobs/" + enc(p.jobId) + "/retry"); }) : "");
        return [frag(el("div", p.jobId), el("div", Object.keys(p.byZip || {}).length + " ZIPs · " + Object.keys(p.bySource || {}).join(", ") + " · " + duration(p.elapsedS), "small")),
          pill(p.status), bar(p.fraction, 1, label), live ? num(p.itemsPerS, 1) + " rec/s" : "—",
          live ? duration(p.etaS) : "—", tasks, actions];
      }));
      var withDead = jobs.filter(function (p) { return p.tasks.dead > 0 || (p.counts && p.counts.failures > 0); }).slice(0, 5);
      return Promise.all(withDead.map(function (p) { return api("GET", "jobs/" + enc(p.jobId)); })).then(function (views) {
        var box = document.getElementById("deadletters");
        box.replaceChildren();
        views.forEach(function (v) {
          var j = v.job;
          if (!j.deadLetterCount && !(j.failedRecords || []).length) return;
          box.appendChild(el("h3", j.id + ": " + num(j.deadLetterCount) + " dead letters, " + num(v.progress.counts.failures) + " records failed", "small"));
          var ul = el("ul");
          (j.deadLetters || []).slice(0, 10).forEach(function (d) {
            ul.appendChild(el("li", d.source + " " + d.zip + " after " + d.attempts + " attempts: " + (d.reasons || []).slice(-1).join(""), "err"));
          });
          (j.failedRecords || []).slice(0, 10).forEach(function (r) {
            ul.appendChild(el("li", r.source + " " + r.id + ": " + r.reason));
          });
          box.appendChild(ul);
        });
      });
    });
  } },
  queues: { fast: true, load: function () {
    return api("GET", "system/queues").then(function (q) {
      var rows = Object.keys(q.all.bySource).map(function (s) {
        var c = q.all.bySource[s];
        return [s, num(c.pending), num(c.leased), num(c.done), num(c.dead)];
      });
      var c = q.all.total;
      rows.push(["all " + num(q.jobs.listed) + " jobs (" + num(q.jobs.running) + " running)", num(c.pending), num(c.leased), num(c.done), num(c.dead)]);
      fill("queues", ["source", "pending", "running", "done", "dead"], rows, [1, 2, 3, 4]);
    });
  } },
  throughput: { fast: true, load: function () {
    return shared.throughput.then(function (tp) {
      var rec = {}, req = {};
      Object.keys(tp.sources).forEach(function (s) { rec[s] = tp.sources[s].recordsPerS; req[s] = tp.sources[s].requestsPerS; });
      drawChart("chart-records", tp.t, rec);
      drawChart("chart-requests", tp.t, req);
      var totals = Object.keys(tp.totals).map(function (s) { return s + ": " + num(tp.totals[s].records) + " records, " + num(tp.totals[s].requests) + " requests"; });
      document.getElementById("throughput-totals").textContent = totals.length ? "In the window: " + totals.join(" · ") : "No job progress seen yet by this api node.";
      window.__throughput = tp;
    });
  } },
  sites: { fast: true, load: function () {
    var tp = shared.throughput.catch(function () { return { hosts: {} }; });
    var sources = ["maricopa", "mls", "llm"].filter(serviceRuns);
    return Promise.all([tp].concat(sources.map(function (s) {
      return api("GET", "hosts/" + s).then(function (list) { return { source: s, list: list }; }, function (e) { return { source: s, error: e }; });
    }))).then(function (all) {
      var hosts = all[0].hosts || {};
      var rows = [];
      all.slice(1).forEach(function (r) {
        if (r.error) { if (!/not found|not available/i.test(r.error.message)) rows.push([r.source, el("span", r.error.message, "err"), "", "", ""]); return; }
        r.list.forEach(function (h) {
          var limit = h.budget && h.budget.durationMs ? h.budget.points * 60000 / h.budget.durationMs : 0;
          var seen = hosts[h.host];
          var rpm = seen ? seen.lastMinute : (h.window.ok + h.window.failed);
          var level = limit && rpm / limit > 0.9 ? "warn" : "";
          var breaker = frag(pill(h.breaker), h.breakerReason ? el("div", h.breakerReason, "small") : "");
          var paused = h.pausedUntil && new Date(h.pausedUntil).getTime() > Date.now() ? frag(pill("paused"), " until " + when(h.pausedUntil)) : "no";
          var fatal = h.fatal ? frag(pill("stopped", "fatal"), el("div", typeof h.fatal === "string" ? h.fatal : (h.fatal.reason || h.fatal.message || "stopped"), "small err"),
            button("resume", function () { return api("POST", "hosts/" + r.source + "/resume"); })) : "none";
          rows.push([h.host, bar(rpm, limit, num(rpm) + " / " + num(limit) + " requests per min (" + num(h.window.failed) + " failed this window)", level), breaker, paused, fatal]);
        });
      });
      fill("sites", ["site", "requests / min vs budget", "breaker", "Retry-After pause", "fatal stop"], rows);
    });
  } },
  proxies: { fast: true, load: function () {
    if (!serviceRuns("proxy-pool")) return absent("proxies", "proxy-pool");
    return Promise.all([api("GET", "proxies/stats"), api("GET", "proxies")]).then(function (r) {
      var s = r[0];
      var t = document.getElementById("proxy-totals");
      t.replaceChildren();
      t.appendChild(el("span", num(s.total) + " proxies: "));
      Object.keys(s.byState || {}).forEach(function (k) { t.appendChild(pill(num(s.byState[k]) + " " + k, k)); });
      t.appendChild(el("span", " · " + num(s.inFlight) + " in flight · " + num(s.banned) + " bans · last health check " + ago(s.lastCheckAt) +
        (s.captcha ? " · captcha " + usd(s.captcha.spentTodayUsd) + " of " + usd(s.captcha.budgetUsdPerDay) + " today" : ""), "small"));
      lastProxies = r[1];
      drawProxies();
    });
  } },
  browsers: { fast: true, load: function () {
    return api("GET", "system/browsers").then(function (list) {
      fill("browsers", ["node", "slots", "pages", "recycles", "memory per browser"], list.map(function (b) {
        if (b.error) return [b.node, el("span", b.error, "err"), "", "", ""];
        var maxMem = (b.browsers || []).reduce(function (m, x) { return Math.max(m, x.memoryMb || 0); }, 0);
        var level = b.maxRssMb && maxMem / b.maxRssMb > 0.8 ? "bad" : "";
        return [b.node, bar(b.busy, b.slots, num(b.busy) + " busy, " + num(b.slots - b.busy) + " free" + (b.queued ? ", " + num(b.queued) + " waiting" : "")),
          num(b.pages), num(b.recycles.contexts) + " contexts · " + num(b.recycles.browsers) + " browsers",
          bar(maxMem, b.maxRssMb, num((b.browsers || []).length) + " browsers, largest " + num(maxMem) + " MB of " + num(b.maxRssMb) + " MB", level)];
      }), [2]);
    });
  } },
  llm: { fast: true, load: function () {
    if (!serviceRuns("llm")) return absent("llm", "llm");
    return api("GET", "llm/usage").then(function (u) {
      var b = u.budget || {};
      var tokens = (u.promptTokens || 0) + (u.completionTokens || 0);
      fill("llm", ["", ""], [
        ["requests", num(u.requests) + " (" + num(u.failures) + " failed)"],
        ["tokens", b.tokensPerDay ? bar(tokens, b.tokensPerDay, num(tokens) + " of " + num(b.tokensPerDay)) : num(tokens) + " (" + num(u.promptTokens) + " prompt, " + num(u.completionTokens) + " completion)"],
        ["spend", bar(u.costUsd, b.usdPerDay, usd(u.costUsd) + " of " + usd(b.usdPerDay) + " (" + usd(b.usdLeft) + " left)")],
        ["cache hits", num(u.cacheHits)],
        ["fallbacks", num(u.fallbacks) + " (" + (u.fallback || "—") + ")"],
        ["budget refusals", num(u.budgetRefusals)],
        ["model", u.model || "—"],
        ["state", u.stopped ? frag(pill("stopped", "fatal"), " " + (u.stopped.reason || u.stopped.message || ""), button("resume", function () { return api("POST", "hosts/llm/resume"); })) : pill("active")],
      ]);
    });
  } },
  schedules: { fast: false, load: function () {
    return api("GET", "schedules").then(function (list) {
      fill("schedules", ["name", "cron", "next tick", "last tick", "state", ""], list.map(function (s) {
        var state = s.paused ? "paused" : s.enabled === false ? "disabled" : "active";
        var last = s.lastFiring ? frag(when(s.lastTick), el("div", s.lastFiring.kind + (s.lastFiring.reason ? " (" + s.lastFiring.reason + ")" : ""), "small")) : when(s.lastTick);
        return [s.name, s.cron, when(s.nextRun), last, pill(state),
          frag(button("run now", function () { return api("POST", "schedules/" + enc(s.name) + "/trigger"); }),
            button(s.paused ? "resume" : "pause", function () { return api("POST", "schedules/" + enc(s.name) + "/" + (s.paused ? "resume" : "pause")); }))];
      }));
    });
  } },
  nodes: { fast: false, load: function () {
    return api("GET", "system/nodes").then(function (nodes) {
      present = new Set([].concat.apply([], nodes.map(function (n) { return n.available ? n.services : []; })));
      fill("nodes", ["node", "services", "region", "version", "uptime"], nodes.map(function (n) {
        return [frag(el("div", n.id), n.available ? "" : pill("offline", "dead")), n.services.join(", ") || "—", n.region || "—",
          "Moleculer " + (n.moleculer || "?") + " · Node " + (n.runtime || "?"), duration(n.uptimeS)];
      }));
    });
  } },
  quality: { fast: false, load: function () {
    return Promise.all([api("GET", "analytics/data-quality"), api("GET", "properties/stats")]).then(function (r) {
      var q = r[0], s = r[1];
      var box = document.getElementById("properties");
      box.replaceChildren(el("p", num(s.properties) + " properties stored (" + num(s.withApn) + " with a parcel number, " + num(s.addressOnly) + " by address only), " +
        num(s.raw) + " raw records · " + pct(q.bothSources.share, 1) + " described by both sources (" + num(q.bothSources.count) + ") · " +
        pct(q.enriched.share, 1) + " enriched" + (q.sampled ? " · figures from the first " + num(q.properties) + " properties" : "") + " · computed " + when(q.computedAt)));
      var buckets = q.matchConfidence.buckets;
      var total = Object.keys(buckets).reduce(function (a, k) { return a + buckets[k]; }, 0);
      fill("confidence", ["match confidence", "properties"], Object.keys(buckets).map(function (k) {
        return [k, bar(buckets[k], total, num(buckets[k]) + " (" + pct(total ? buckets[k] / total : 0) + ")")];
      }).concat([["mean", q.matchConfidence.mean == null ? "—" : num(q.matchConfidence.mean, 2)]]));
      var rows = [];
      Object.keys(q.bySource).forEach(function (src) {
        var f = q.bySource[src].fields;
        rows.push([src + " (" + num(q.bySource[src].properties) + ")", Object.keys(f).map(function (k) { return k + " " + pct(f[k]); }).join(" · ")]);
      });
      fill("completeness", ["source", "fields filled"], rows);
    });
  } },
};

function maskHost(h) {
  var parts = String(h || "").split(".");
  if (parts.length === 4) { parts[3] = "x"; return parts.join("."); }
  return String(h || "").replace(/^[^.]+/, "***");
}
function drawProxies() {
  var rows = lastProxies.map(function (p) {
    var h = p.health || {};
    var lastCheck = Math.max(h.lastOkAt || 0, h.lastFailAt || 0) || null;
    return { key: [p.id, p.state, h.latencyMs == null ? Infinity : h.latencyMs, h.successRate == null ? -1 : h.successRate, p.inFlight || 0, (p.bans || []).length, lastCheck || 0, p.uses || 0],
      cells: [frag(el("div", p.id), el("div", p.protocol + "://" + maskHost(p.host) + ":" + p.port, "small")), pill(p.state),
        h.latencyMs == null ? "—" : num(h.latencyMs) + " ms", pct(h.successRate, 1), num(p.inFlight),
        (p.bans || []).map(function (b) { return b.domain + " (" + duration(b.remainingS) + " left" + (b.reason ? ", " + b.reason : "") + ")"; }).join(", ") || "none",
        lastCheck ? frag(when(lastCheck), h.lastError ? el("div", h.lastError, "small err") : "") : "—", num(p.uses)] };
  });
  rows.sort(function (a, b) {
    var x = a.key[proxySort.col], y = b.key[proxySort.col];
    return (x < y ? -1 : x > y ? 1 : 0) * proxySort.dir;
  });
  var table = document.getElementById("proxies");
  table.dataset.sortCol = String(proxySort.col);
  table.dataset.sortDir = String(proxySort.dir);
  fill("proxies", ["proxy", "state", "latency", "success", "in flight", "bans by site", "last check", "uses"], rows.map(function (r) { return r.cells; }), [2, 3, 4, 7]);
}
document.getElementById("proxies").addEventListener("click", function (ev) {
  var th = ev.target.closest("th");
  if (!th) return;
  var col = Number(th.dataset.col);
  proxySort = { col: col, dir: proxySort.col === col ? -proxySort.dir : 1 };
  drawProxies();
});

var tick = 0;
var running = false;
// Answers two panels read, fetched once per refresh.
var shared = { throughput: Promise.resolve({ t: [], sources: {}, hosts: {}, totals: {} }) };
function refresh(all) {
  if (running) return Promise.resolve();
  running = true;
  var slow = all || tick % SLOW_EVERY === 0;
  tick++;
  shared.throughput = api("GET", "analytics/throughput");
  shared.throughput.catch(function () {});
  var status = document.getElementById("status");
  var head = api("GET", "health").then(function (h) { status.textContent = "node " + h.node + " · " + h.nodes.length + " nodes"; },
    function (e) { status.textContent = e.message; });
  // The nodes first (when due): they say which services run.
  var first = slow ? panels.nodes.load().catch(function (e) { failed("nodes", e); }) : Promise.resolve();
  var work = Object.keys(panels).filter(function (id) { return id !== "nodes" && (slow || panels[id].fast); }).map(function (id) {
    var target = { jobs: "jobs", queues: "queues", sites: "sites", proxies: "proxies", browsers: "browsers", llm: "llm", schedules: "schedules", nodes: "nodes", quality: "completeness", throughput: null }[id];
    return first.then(function () { return panels[id].load(); }).catch(function (e) { if (target) failed(target, e); else document.getElementById("throughput-totals").textContent = e.message; });
  });
  return Promise.all([head, first].concat(work)).then(function () {
    running = false;
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.refreshes = String(tick);
  });
}

document.getElementById("collect").addEventListener("submit", function (ev) {
  ev.preventDefault();
  var f = new FormData(ev.target);
  var split = function (s) { return String(s || "").split(/[\\s,]+/).filter(Boolean); };
  var body = { enrich: f.get("enrich") === "on" };
  if (f.get("county") === "on") body.county = true; else body.zips = split(f.get("zips"));
  if (split(f.get("sources")).length) body.sources = split(f.get("sources"));
  api("POST", "jobs", body).then(function () { ev.target.reset(); }, function (e) { alert(e.message); }).then(function () { refresh(false); });
});
// Thumbnails: fetched with the token (an <img> cannot send it), shown from blob: URLs.
var thumbUrls = [];
document.getElementById("photos-form").addEventListener("submit", function (ev) {
  ev.preventDefault();
  var key = String(new FormData(ev.target).get("key") || "").trim();
  var box = document.getElementById("thumbs");
  var info = document.getElementById("photos-info");
  thumbUrls.forEach(function (u) { URL.revokeObjectURL(u); });
  thumbUrls = [];
  box.replaceChildren();
  if (!key) return;
  api("GET", "properties/" + encodeURIComponent(key) + "/photos").then(function (r) {
    var ok = r.photos.filter(function (p) { return p.href; });
    info.textContent = r.photos.length + " photos, " + ok.length + " stored, " + (r.photos.length - ok.length) + " failed";
    ok.slice(0, 60).forEach(function (p) {
      var fig = el("figure");
      var img = el("img");
      img.alt = "photo " + (p.position + 1);
      fig.appendChild(img);
      fig.appendChild(el("figcaption", "#" + (p.position + 1) + (p.duplicate ? " · " + p.duplicate + " duplicate" : "") + " · " + (p.width || "?") + "x" + (p.height || "?")));
      box.appendChild(fig);
      var headers = tokenInput.value ? { authorization: "Bearer " + tokenInput.value } : {};
      fetch(p.href, { headers: headers }).then(function (res) { return res.ok ? res.blob() : null; }).then(function (b) {
        if (!b) return;
        var u = URL.createObjectURL(b);
        thumbUrls.push(u);
        img.src = u;
      });
    });
  }, function (e) { info.textContent = e.message; });
});
document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(false); });
refresh(true);
setInterval(function () { if (!document.hidden) refresh(false); }, REFRESH_MS);
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
