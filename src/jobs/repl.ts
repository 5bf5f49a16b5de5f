/**
 * REPL commands of the orchestrator and scheduler: `collect <zips...> [--sources a,b] [--enrich]`,
 * `jobs`, `job <id>` (live progress bar until the job ends), `cancel <id>`, `schedules`. They call
 * the same actions as the API.
 */
import { callOrchestrator } from "../contracts/orchestrator.ts";
import { callScheduler } from "../contracts/scheduler.ts";
import type { ReplCommand } from "../types/repl.ts";
import { releaseForeground, takeForeground } from "../utils/foreground.ts";
import { formatDuration, progressBar } from "./progress.ts";
import { TERMINAL_JOB_STATUSES } from "./types.ts";

/** `collect 85031 85033 --sources maricopa,mls --enrich` -> its parts (the REPL passes one operand per name). */
export function parseCollectCommand(raw: string): {
	zips: string[];
	sources?: string[];
	enrich: boolean;
	county?: true;
	photos?: true;
} {
	const tokens = raw.trim().split(/\s+/).slice(1);
	const zips: string[] = [];
	let sources: string[] | undefined;
	let enrich = false;
	let county = false;
	let photos = false;
	for (let i = 0; i < tokens.length; i++) {
		const t = tokens[i];
		if (t === "--sources" || t === "-s") {
			sources = (tokens[++i] ?? "").split(",").filter(Boolean);
		} else if (t.startsWith("--sources=")) {
			sources = t.slice("--sources=".length).split(",").filter(Boolean);
		} else if (t === "--enrich") {
			enrich = true;
		} else if (t === "--county") {
			county = true;
		} else if (t === "--photos") {
			photos = true;
		} else {
			zips.push(...t.split(",").filter(Boolean));
		}
	}
	return {
		zips,
		sources,
		enrich,
		...(county ? { county: true as const } : {}),
		...(photos ? { photos: true as const } : {}),
	};
}

/** A pause that ends early when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
	return new Promise((resolve) => {
		const timer = setTimeout(done, ms);
		function done() {
			clearTimeout(timer);
			signal.removeEventListener("abort", done);
			resolve();
		}
		signal.addEventListener("abort", done, { once: true });
	});
}

/** A failure is printed as one line by src/repl/commands.ts, which wraps every command. */
export function jobReplCommands(): ReplCommand[] {
	return [
		{
			command: "collect [zips...]",
			description:
				"Start a collection job: collect 85031 85033 --sources maricopa,mls [--enrich]; collect --county for every ZIP of the county",
			options: [
				{
					option: "-s, --sources <list>",
					description: "comma-separated sources (default: every running source)",
				},
				{ option: "--enrich", description: "enrich the collected properties afterwards" },
				{ option: "--county", description: "every ZIP of the county (COUNTY_ZIPS) instead of ZIPs" },
				{
					option: "--photos",
					description: "also fetch the listings' photos (the photos source, after each ZIP)",
				},
			],
			allowUnknownOptions: true,
			action: async (broker, args) => {
				const { zips, sources, enrich, county, photos } = parseCollectCommand(args.rawCommand ?? "");
				const view = await callOrchestrator(broker, "orchestrator.collect", {
					...(county ? { county } : { zips }),
					...(sources ? { sources } : {}),
					enrich,
					...(photos ? { photos } : {}),
					origin: "repl",
				});
				console.log(
					`Job ${view.job.id}: ${view.progress.tasks.total} task(s). Follow it with: job ${view.job.id}`,
				);
			},
		},
		{
			command: "jobs",
			description: "Recent jobs and their progress",
			action: async (broker) => {
				const jobs = await callOrchestrator(broker, "orchestrator.list", { limit: 20 });
				if (jobs.length === 0) return console.log("No jobs.");
				console.table(
					jobs.map((p) => ({
						job: p.jobId,
						status: p.status,
						tasks: `${p.tasks.done}/${p.tasks.total}${p.tasks.dead ? ` (${p.tasks.dead} dead)` : ""}`,
						records: p.items.expected !== null ? `${p.items.done}/${p.items.expected}` : p.items.done,
						eta: p.etaS === null ? "?" : p.etaS > 0 ? formatDuration(p.etaS) : "",
						new: p.counts.new,
						updated: p.counts.updated,
						elapsed: formatDuration(p.elapsedS),
					})),
				);
			},
		},
		{
			command: "job <id>",
			description: "One job: a live progress bar until it ends, then its counts and dead letters",
			action: async (broker, args) => {
				const id = String(args.id ?? "");
				let view = await callOrchestrator(broker, "orchestrator.status", { id });
				// The bar is redrawn until the job ends, another command is typed or Ctrl-C is pressed.
				const signal = takeForeground();
				try {
					while (!TERMINAL_JOB_STATUSES.includes(view.job.status)) {
						process.stdout.write(`\r${progressBar(view.progress)}\u001b[K`);
						await pause(500, signal);
						if (signal.aborted) {
							process.stdout.write(
								`\r\u001b[K(stopped following job ${id}; it goes on: job ${id} to follow it again, cancel ${id} to stop it)\n`,
							);
							return;
						}
						view = await callOrchestrator(broker, "orchestrator.status", { id });
					}
				} finally {
					releaseForeground(signal);
				}
				process.stdout.write(`\r${progressBar(view.progress)}\u001b[K\n`);
				console.table(
					Object.entries(view.progress.bySource).map(([source, s]) => ({
						source,
						done: s.tasks.done,
						dead: s.tasks.dead,
						items: s.counts.items,
						new: s.counts.new,
						updated: s.counts.updated,
						unchanged: s.counts.unchanged,
						requests: s.counts.requests,
						failures: s.counts.failures,
						gaps: s.counts.gaps,
					})),
				);
				if (view.job.deadLetterCount > view.job.deadLetters.length)
					console.log(`${view.job.deadLetterCount} dead letters; the first ${view.job.deadLetters.length}:`);
				for (const f of view.job.failedRecords ?? [])
					console.log(`not collected: ${f.source} ${f.zip} ${f.id}: ${f.reason}`);
				for (const d of view.job.deadLetters)
					console.log(`dead letter ${d.source} ${d.zip}:\n  ${d.reasons.join("\n  ")}`);
			},
		},
		{
			command: "cancel <id>",
			description: "Cancel a job: running tasks stop, pending ones are dropped",
			action: async (broker, args) => {
				const view = await callOrchestrator(broker, "orchestrator.cancel", { id: String(args.id ?? "") });
				console.log(`Job ${view.job.id}: cancel requested (${view.job.status}).`);
			},
		},
		{
			command: "schedules",
			description: "Configured schedules: next run, last tick, paused, next ZIP batch",
			action: async (broker) => {
				const views = await callScheduler(broker, "scheduler.list", {});
				console.table(
					views.map((s) => ({
						name: s.name,
						cron: s.cron,
						action: s.action,
						state: !s.enabled ? "disabled" : s.paused ? "paused" : "active",
						next: s.nextRun ?? "-",
						last: s.lastTick ?? "-",
						lastResult: s.lastFiring ? (s.lastFiring.error ?? s.lastFiring.reason ?? "fired") : "-",
						nextZips: s.nextZips.join(","),
					})),
				);
			},
		},
	];
}
