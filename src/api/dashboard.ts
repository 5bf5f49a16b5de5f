/**
 * The dashboard page served at `/` by the api gateway: one self-contained HTML page that polls the
 * REST API (with the bearer token the user types, kept in localStorage) and shows nodes, jobs with
 * progress, schedules, stored properties, proxies and each site's politeness state. The page holds no
 * data itself, so it needs no auth; every value is written with textContent, never as HTML, because
 * much of it (addresses, errors) comes from scraped sites.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Saguaro</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f6f4ef; color: #222; }
  header { background: #2f5233; color: #fff; padding: 10px 20px; display: flex; gap: 16px; align-items: center; }
  header h1 { font-size: 18px; margin: 0; flex: 1; }
  header input { width: 220px; }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 16px; padding: 16px; }
  section { background: #fff; border-radius: 6px; padding: 12px 16px; box-shadow: 0 1px 2px #0002; }
  h2 { font-size: 15px; margin: 0 0 8px; }
  table { border-collapse: collapse; width: 100%; }
  td, th { text-align: left; padding: 3px 6px; border-bottom: 1px solid #eee; vertical-align: top; }
  .bar { background: #e3e3e3; border-radius: 3px; height: 8px; min-width: 80px; }
  .bar > div { background: #4a8c50; height: 8px; border-radius: 3px; }
  .err { color: #a33; }
  .muted { color: #777; }
  form { display: flex; gap: 6px; flex-wrap: wrap; margin-bottom: 8px; }
</style>
</head>
<body>
<header>
  <h1>Saguaro</h1>
  <span id="status" class="muted">not connected</span>
  <input id="token" type="password" placeholder="API token (if required)" autocomplete="off">
</header>
<main>
  <section><h2>Nodes</h2><table id="nodes"></table></section>
  <section>
    <h2>Jobs</h2>
    <form id="collect">
      <input name="zips" placeholder="ZIPs: 85031 85033" required>
      <input name="sources" placeholder="sources (default: all)">
      <label><input type="checkbox" name="enrich"> enrich</label>
      <button>Collect</button>
    </form>
    <table id="jobs"></table>
  </section>
  <section><h2>Schedules</h2><table id="schedules"></table></section>
  <section><h2>Properties</h2><table id="properties"></table></section>
  <section><h2>Proxies</h2><table id="proxies"></table></section>
  <section><h2>Sites</h2><table id="hosts"></table></section>
</main>
<script>
const tokenInput = document.getElementById("token");
tokenInput.value = localStorage.getItem("saguaro-token") || "";
tokenInput.addEventListener("change", () => { localStorage.setItem("saguaro-token", tokenInput.value); refresh(); });

async function api(method, path, body) {
  const headers = { "content-type": "application/json" };
  if (tokenInput.value) headers.authorization = "Bearer " + tokenInput.value;
  const res = await fetch("/api/" + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new Error((data && data.message) || res.status + " " + res.statusText);
  return data;
}

function cell(value) {
  const td = document.createElement("td");
  if (value instanceof Node) td.appendChild(value); else td.textContent = value == null ? "" : String(value);
  return td;
}
function fill(id, head, rows) {
  const table = document.getElementById(id);
  table.replaceChildren();
  const tr = document.createElement("tr");
  for (const h of head) { const th = document.createElement("th"); th.textContent = h; tr.appendChild(th); }
  table.appendChild(tr);
  for (const row of rows) { const r = document.createElement("tr"); for (const v of row) r.appendChild(cell(v)); table.appendChild(r); }
}
function failed(id, err) {
  const table = document.getElementById(id);
  table.replaceChildren();
  const tr = document.createElement("tr");
  const td = cell(err.message); td.className = "err"; tr.appendChild(td); table.appendChild(tr);
}
function bar(done, total) {
  const outer = document.createElement("div"); outer.className = "bar";
  const inner = document.createElement("div"); inner.style.width = (total ? Math.round(100 * done / total) : 0) + "%";
  outer.appendChild(inner); outer.title = done + " / " + total; return outer;
}
function button(label, onClick) {
  const b = document.createElement("button"); b.textContent = label;
  b.addEventListener("click", async () => { try { await onClick(); } catch (e) { alert(e.message); } refresh(); });
  return b;
}

const panels = {
  async nodes() {
    const nodes = await api("GET", "nodes");
    fill("nodes", ["node", "available", "services"], nodes.map((n) => [n.id, n.available ? "yes" : "no",
      (n.services || []).map((s) => s.name || s).filter((s) => !String(s).startsWith("$")).join(", ")]));
  },
  async jobs() {
    const jobs = await api("GET", "jobs?limit=15");
    fill("jobs", ["job", "status", "progress", "ZIPs", "ETA", ""], jobs.map((p) => [p.jobId, p.status,
      bar(Math.round(p.fraction * p.tasks.total), p.tasks.total), Object.keys(p.byZip || {}).join(" "),
      p.etaS == null ? "" : Math.round(p.etaS) + " s",
      p.status === "running" ? button("cancel", () => api("POST", "jobs/" + encodeURIComponent(p.jobId) + "/cancel")) : ""]));
  },
  async schedules() {
    const list = await api("GET", "schedules");
    fill("schedules", ["name", "cron", "last tick", "state", ""], list.map((s) => [s.name, s.cron, s.lastTick,
      s.paused ? "paused" : s.enabled === false ? "disabled" : "active",
      button("run now", () => api("POST", "schedules/" + encodeURIComponent(s.name) + "/trigger"))]));
  },
  async properties() {
    const s = await api("GET", "properties/stats");
    fill("properties", ["", ""], Object.entries(s).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : v]));
  },
  async proxies() {
    const s = await api("GET", "proxies/stats");
    fill("proxies", ["", ""], Object.entries(s).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : v]));
  },
  async hosts() {
    const rows = [];
    for (const source of ["maricopa", "mls"]) {
      try { for (const h of await api("GET", "hosts/" + source)) rows.push([source, h.host || h.name, JSON.stringify(h)]); }
      catch (e) { rows.push([source, "", e.message]); }
    }
    fill("hosts", ["source", "host", "state"], rows);
  },
};

async function refresh() {
  const status = document.getElementById("status");
  try { const h = await api("GET", "health"); status.textContent = "node " + h.node + " · " + h.nodes.length + " nodes"; }
  catch (e) { status.textContent = e.message; }
  await Promise.all(Object.entries(panels).map(([id, load]) => load().catch((e) => failed(id, e))));
}

document.getElementById("collect").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const split = (s) => String(s || "").split(/[\\s,]+/).filter(Boolean);
  const body = { zips: split(f.get("zips")), enrich: f.get("enrich") === "on" };
  if (split(f.get("sources")).length) body.sources = split(f.get("sources"));
  try { await api("POST", "jobs", body); ev.target.reset(); } catch (e) { alert(e.message); }
  refresh();
});
refresh();
setInterval(refresh, 3000);
</script>
</body>
</html>
`;
