/**
 * The dashboard's panels (jobs, queues, throughput, sites, proxies, browsers, LLM, schedules, nodes,
 * data quality, photos) and its refresh loop: the second half of `/assets/dashboard.js`, after the
 * helpers of dashboard-script.ts. Every value is written with textContent, never as HTML.
 */
export const DASHBOARD_PANELS_JS = `
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
