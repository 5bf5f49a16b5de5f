/**
 * `npm run demo`: a real collection on the embedded default, offline. Starts the sandbox in-process
 * (Assessor API + GIS, MLS site, proxies, captcha, LLM simulators), points Saguaro at it, starts one
 * node with every service, asks the orchestrator to collect a couple of ZIPs from every source that
 * runs (maricopa, and mls when present), follows the job to its end and prints a summary compared
 * with the sandbox's ground truth. Budgets are raised so it finishes in a couple of minutes.
 * Any Saguaro variable in the environment overrides the demo's choice (e.g. SERVICES, DEMO_ZIPS).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startSandbox } from "../sandbox/index.ts";
import { loadConfig } from "../src/config/index.ts";
import type { JobStatusView } from "../src/jobs/orchestrator.ts";
import { formatDuration, progressBar } from "../src/jobs/progress.ts";
import { TERMINAL_JOB_STATUSES } from "../src/jobs/types.ts";
import { CHROMIUM_HINT, chromiumProblem, formatFindings, preflight } from "../src/node/preflight.ts";
import { startNode } from "../src/node/start-node.ts";
import { freePort } from "../src/utils/net.ts";
import { sleep } from "../src/utils/time.ts";

const zips = (process.env.DEMO_ZIPS ?? "85031,85033").split(",").map((z) => z.trim());
const parcelsPerZip = Number(process.env.DEMO_PARCELS_PER_ZIP ?? 150);

const sandbox = await startSandbox({ world: { zips, parcelsPerZip } });
const dataDir = mkdtempSync(join(tmpdir(), "saguaro-demo-"));
const demoEnv: Record<string, string> = {
	...sandbox.env,
	NODE_ID: "demo",
	DATA_DIR: dataDir,
	API_PORT: String(await freePort()),
	METRICS_PORT: "0",
	HEALTH_PORT: "0",
	REPL: "off",
	LOG_LEVEL: "warn",
	LOG_FORMAT: "pretty",
	// A fast budget: the simulators are on loopback, politeness is not at stake.
	MARICOPA_RATE_PER_MIN: "1200",
	MARICOPA_GIS_RATE_PER_MIN: "600",
	MLS_RATE_PER_MIN: "600",
	LLM_RATE_PER_MIN: "3000",
	ORCHESTRATOR_TICK_MS: "200",
	ORCHESTRATOR_BACKOFF_BASE_MS: "500",
	ORCHESTRATOR_TASK_TIMEOUT_S: "120",
	ORCHESTRATOR_MAX_ATTEMPTS: "2",
	// The MLS is reached through proxy-pool's rotating gateway, off unless given a port.
	PROXY_GATEWAY_PORT: String(await freePort()),
};
const saguaroEnv = Object.fromEntries(
	Object.entries(process.env).filter(([, v]) => v !== undefined),
) as Record<string, string>;
const config = loadConfig({ ...demoEnv, ...saguaroEnv, PATH: process.env.PATH ?? "" });
if (config.core.services.includes("browser-pool")) ensureChromium(config.browser.chromiumPath);

/**
 * A fresh Debian/Ubuntu machine has no Chromium: install it with apt when this user may (root, or
 * sudo without a password), as the README's first command promises; otherwise say exactly how.
 * Only for the default CHROMIUM_PATH: a path the user chose is theirs to provide.
 */
function ensureChromium(path: string): void {
	if (!chromiumProblem(path) || process.env.CHROMIUM_PATH) return;
	const root = process.getuid?.() === 0;
	const sudo = !root && spawnSync("sudo", ["-n", "true"], { stdio: "ignore" }).status === 0;
	if (!existsSync("/usr/bin/apt-get") || !(root || sudo)) {
		console.log(`Chromium is missing: ${CHROMIUM_HINT}. The demo runs without it (see below).`);
		return;
	}
	console.log("Chromium is missing: installing it with apt-get (chromium)...");
	const run = (args: string[]) =>
		spawnSync(root ? args[0]! : "sudo", root ? args.slice(1) : ["-n", ...args], {
			stdio: ["ignore", "ignore", "inherit"],
			env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
		}).status === 0;
	const ok =
		run(["apt-get", "update", "-qq"]) &&
		run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]);
	if (ok && !chromiumProblem(path)) console.log(`Chromium installed at ${path}.`);
	else console.log(`Chromium could not be installed here: ${CHROMIUM_HINT}.`);
}

console.log(
	`Sandbox up: ${zips.length} ZIPs, ${sandbox.world.parcels.length} parcels, ${sandbox.world.listings.length} MLS listings.`,
);
console.log(`Starting an embedded node with: ${config.core.services.join(", ")}`);
// What this machine lacks for the services (Chromium, proxies, tokens), before a job hides it.
const findings = preflight(config);
for (const line of formatFindings(findings)) console.log(`  ! ${line}`);
const node = await startNode(config);
const started = Date.now();
let exitCode = 0;
try {
	const available = (await node.broker.call("orchestrator.sources")) as string[];
	const sources = ["maricopa", "mls"].filter((s) => available.includes(s));
	if (sources.length === 0)
		throw new Error(`no source service is running (available: ${available.join(", ") || "none"})`);
	// Enrichment (the sandbox's LLM endpoint) follows the collection when an llm service runs.
	const enrich = config.core.services.includes("llm");
	const job = (await node.broker.call("orchestrator.collect", {
		zips,
		sources,
		enrich,
		origin: "demo",
	})) as JobStatusView;
	console.log(
		`Job ${job.job.id}: ${sources.join(" + ")}${enrich ? " + enrichment" : ""} x ${zips.join(", ")} (${job.progress.tasks.total} tasks)`,
	);

	let view = job;
	let shown = "";
	while (!TERMINAL_JOB_STATUSES.includes(view.job.status)) {
		await sleep(1000);
		view = (await node.broker.call("orchestrator.status", { id: job.job.id })) as JobStatusView;
		const bar = progressBar(view.progress);
		// A terminal redraws one line; a log gets a line per change only.
		if (process.stdout.isTTY) process.stdout.write(`\r${bar}\u001b[K`);
		else if (bar !== shown) console.log(bar);
		shown = bar;
	}
	if (process.stdout.isTTY) process.stdout.write("\n");

	type Row = {
		key: string;
		sources?: { source: string }[];
		enrichment?: { processing: { source: string } } | null;
	};
	const props: Row[] = [];
	for (const zip of zips) {
		for (let page = 1; ; page++) {
			const res = (await node.broker.call("properties.find", {
				zip,
				page,
				pageSize: config.store.pageSizeMax,
			})) as { rows: Row[] };
			props.push(...res.rows);
			if (res.rows.length < config.store.pageSizeMax) break;
		}
	}
	// Merged: an MLS listing joined to its Assessor parcel in one canonical property.
	const merged = props.filter((p) => {
		const names = (p.sources ?? []).map((s) => s.source);
		return names.some((n) => n.startsWith("mls")) && names.some((n) => !n.startsWith("mls"));
	}).length;
	const truthParcels = sandbox.world.parcels.filter((p) => zips.includes(p.zip)).length;
	const truthListings = sandbox.world.listings.filter((l) => zips.includes(l.zip)).length;
	const p = view.progress;
	console.log("\nSummary");
	console.log(
		`  job status            ${view.job.status} in ${formatDuration(Math.round((Date.now() - started) / 1000))}`,
	);
	for (const [source, s] of Object.entries(p.bySource)) {
		const verb = source === "llm" ? "looked at" : "collected";
		console.log(
			`  ${source.padEnd(22)}${s.counts.items} ${verb} (${s.counts.new} new, ${s.counts.updated} updated, ${s.counts.unchanged} unchanged), ${s.counts.requests} requests, ${s.counts.failures} failures`,
		);
	}
	console.log(
		`  ground truth          ${truthParcels} parcels, ${truthListings} listings in ${zips.join(", ")}`,
	);
	console.log(
		`  properties stored     ${props.length} (${merged} with an MLS listing merged into the Assessor parcel)`,
	);
	if (enrich) {
		const by = new Map<string, number>();
		for (const row of props) {
			const from = row.enrichment?.processing.source;
			if (from) by.set(from, (by.get(from) ?? 0) + 1);
		}
		const enriched = [...by.values()].reduce((a, b) => a + b, 0);
		const parts = [...by].map(([from, n]) => `${n} by ${from}`).join(", ");
		console.log(`  properties enriched   ${enriched}${parts ? ` (${parts})` : ""}`);
	}
	console.log(`  requests              ${p.counts.requests + (p.enriched?.requests ?? 0)}`);
	console.log(
		`  failures              ${p.counts.failures} record(s), ${view.job.deadLetters.length} dead-lettered task(s)`,
	);
	for (const d of view.job.deadLetters) console.log(`    ${d.source} ${d.zip}: ${d.reasons.at(-1) ?? ""}`);
	// Why records failed, grouped by reason (the first ones the job kept).
	const reasons = new Map<string, number>();
	for (const f of view.job.failedRecords ?? []) {
		const key = `${f.source}: ${f.reason}`;
		reasons.set(key, (reasons.get(key) ?? 0) + 1);
	}
	for (const [reason, n] of reasons) console.log(`    ${n} x ${reason}`);
	// The sandbox holds every record the demo asks for: a failed one means something is missing here.
	if (view.job.status !== "completed" || p.counts.failures > 0) exitCode = 1;
	if (findings.length > 0) {
		console.log("\nThis machine lacks something the services need (see above):");
		for (const line of formatFindings(findings)) console.log(`  ${line}`);
		exitCode = 1;
	}
} catch (err) {
	console.error(`Demo failed: ${err instanceof Error ? err.message : String(err)}`);
	exitCode = 1;
} finally {
	await node.stop();
	await sandbox.stop();
	rmSync(dataDir, { recursive: true, force: true });
}
process.exit(exitCode);
