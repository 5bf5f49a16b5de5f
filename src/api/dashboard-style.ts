/** The dashboard's stylesheet, served as `/assets/dashboard.css` (src/api/dashboard.ts). */
export const DASHBOARD_CSS = `
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
