/**
 * The dashboard's script, served as `/assets/dashboard.js` (src/api/dashboard.ts): settings, the API
 * client, formatting, DOM and chart helpers here; the panels and the refresh loop in
 * dashboard-panels.ts, appended to them (one page script: the panels call these helpers by name).
 */
import { DASHBOARD_PANELS_JS } from "./dashboard-panels.ts";

/** Default refresh of the live panels; the slow ones (nodes, schedules, data quality) every 6th. */
export const DASHBOARD_REFRESH_MS = 5000;

const HELPERS_JS = `"use strict";
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
`;

export const DASHBOARD_JS = HELPERS_JS + DASHBOARD_PANELS_JS;
