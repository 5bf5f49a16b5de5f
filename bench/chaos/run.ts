/**
 * The chaos suite (issue 19): real processes, real faults, each scenario checked against the
 * sandbox's ground truth (see test/chaos/chaos.ts for what is measured and when a row passes).
 *
 *   npm run chaos                         every scenario, 3 ZIPs x 1,000 parcels (~45 min)
 *   npm run chaos -- --quick              the quick set (worker, leader, store node SIGKILL, NATS
 *                                         restart) at 2 ZIPs x 150 parcels (as CI runs it)
 *   npm run chaos -- --only 7,nats-restart   some scenarios, by number or id
 *   npm run chaos -- --parcels 300 --zips 2 --page-size 100   another size
 *   npm run chaos -- --list               the scenarios
 *   CHAOS_LOG_LEVEL=info npm run chaos    the nodes log at this level (default warn)
 *
 * Prints one row per scenario (job status, stored / truth, duplicates, Assessor ok requests /
 * needed, requests over needed, failed requests, time, PASS/FAIL), why each failing row failed, and
 * where the nodes' logs are; exits 1 when a row fails. Everything started is stopped at the end,
 * also on failure or Ctrl-C. toxiproxy-server is built into .tools/bin when a scenario needs it
 * and it is missing (scripts/build-toxiproxy.sh).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
	type ChaosSize,
	FULL_SIZE,
	formatTable,
	QUICK_SIZE,
	runScenarios,
	SCENARIOS,
	stopEverything,
} from "../../test/chaos/chaos.ts";
import { killEverythingSync } from "../../test/harness/restartable.ts";

const { values } = parseArgs({
	options: {
		quick: { type: "boolean", default: false },
		only: { type: "string" },
		parcels: { type: "string" },
		zips: { type: "string" },
		"page-size": { type: "string" },
		logs: { type: "string" },
		list: { type: "boolean", default: false },
	},
	allowPositionals: false,
});

if (values.list) {
	for (const s of SCENARIOS)
		console.log(`${s.no}  ${s.id.padEnd(24)} ${s.quick ? "quick " : "      "}${s.title}`);
	process.exit(0);
}

const base: ChaosSize = values.quick ? QUICK_SIZE : FULL_SIZE;
const zipCount = values.zips ? Number(values.zips) : base.zips.length;
const ZIP_POOL = ["85031", "85033", "85301", "85379", "85008", "85019"];
if (!(zipCount >= 1 && zipCount <= ZIP_POOL.length)) throw new Error(`--zips: 1..${ZIP_POOL.length}`);
const size: ChaosSize = {
	...base,
	zips: ZIP_POOL.slice(0, zipCount),
	parcelsPerZip: values.parcels ? Number(values.parcels) : base.parcelsPerZip,
	pageSize: values["page-size"] ? Number(values["page-size"]) : base.pageSize,
};

let scenarios = values.quick ? SCENARIOS.filter((s) => s.quick) : SCENARIOS;
if (values.only) {
	const wanted = values.only.split(",").map((x) => x.trim());
	scenarios = SCENARIOS.filter((s) => wanted.includes(String(s.no)) || wanted.includes(s.id));
	if (scenarios.length === 0) throw new Error(`--only ${values.only}: no such scenario (see --list)`);
}

const logRoot = values.logs ?? mkdtempSync(join(tmpdir(), "saguaro-chaos-logs-"));
const command = `npm run chaos${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
const t0 = Date.now();
const log = (line: string) => console.log(`${((Date.now() - t0) / 1000).toFixed(1).padStart(7)} s  ${line}`);

let interrupted = false;
// Whatever way the process ends, nothing it started outlives it.
process.on("exit", killEverythingSync);
for (const sig of ["SIGINT", "SIGTERM"] as const) {
	process.once(sig, () => {
		interrupted = true;
		console.error(`\n${sig}: stopping everything the chaos suite started...`);
		void stopEverything().finally(() => process.exit(130));
	});
}

console.log(`command: ${command}`);
console.log(
	`size: ${size.zips.length} ZIPs x ${size.parcelsPerZip} parcels (${size.zips.join(", ")}), GIS page ${size.pageSize}, ` +
		`latency ${size.latency.minMs}-${size.latency.maxMs} ms; scenarios: ${scenarios.map((s) => s.no).join(", ")}; logs: ${logRoot}`,
);
const results = await runScenarios(scenarios, { size, log, logRoot });
if (!interrupted) {
	console.log(`\n${command}\n`);
	console.log(formatTable(results));
	console.log(`\ntotal ${((Date.now() - t0) / 1000).toFixed(0)} s`);
	process.exit(results.every((r) => r.pass) ? 0 : 1);
}
