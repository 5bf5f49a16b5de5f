/**
 * Progress of a job, computed from its tasks: counts by state, by source and by ZIP, properties
 * new/updated/unchanged, and an ETA. Pure, so any node can answer `status` from the ledger.
 */
import type { Job, Task, TaskCounts, TaskState } from "./types.ts";
import { EMPTY_COUNTS } from "./types.ts";

export type StateCounts = Record<TaskState, number>;

export interface SourceProgress {
	tasks: StateCounts;
	counts: TaskCounts;
}

export interface JobProgress {
	jobId: string;
	status: Job["status"];
	tasks: StateCounts & { total: number };
	/** Share of tasks settled, 0..1. */
	fraction: number;
	/** What the collect tasks did to records (enrichment is counted apart, in `enriched`). */
	counts: TaskCounts;
	/** What the enrichment tasks did (properties looked at, enriched anew, ...); null without any. */
	enriched: TaskCounts | null;
	bySource: Record<string, SourceProgress>;
	byZip: Record<string, StateCounts>;
	/** Seconds left, null while unknown (nothing finished yet and no rate budget). */
	etaS: number | null;
	elapsedS: number;
}

/** A source's budget: requests per second cluster-wide, and how many tasks run at once. */
export interface SourceThroughput {
	requestsPerSecond: number | null;
	concurrency: number;
}

const emptyStates = (): StateCounts => ({ pending: 0, leased: 0, done: 0, dead: 0, cancelled: 0 });

function addCounts(into: TaskCounts, c: TaskCounts) {
	into.items += c.items;
	into.new += c.new;
	into.updated += c.updated;
	into.unchanged += c.unchanged;
	into.requests += c.requests;
	into.failures += c.failures;
}

export function jobProgress(
	job: Job,
	tasks: Task[],
	now: number,
	throughput: (source: string) => SourceThroughput,
): JobProgress {
	const states = emptyStates();
	const counts = { ...EMPTY_COUNTS };
	let enriched: TaskCounts | null = null;
	const bySource: Record<string, SourceProgress> = {};
	const byZip: Record<string, StateCounts> = {};
	for (const t of tasks) {
		states[t.state]++;
		bySource[t.source] ??= { tasks: emptyStates(), counts: { ...EMPTY_COUNTS } };
		bySource[t.source].tasks[t.state]++;
		byZip[t.zip] ??= emptyStates();
		byZip[t.zip][t.state]++;
		if (t.kind === "enrich") enriched ??= { ...EMPTY_COUNTS };
		if (t.counts) {
			addCounts(t.kind === "enrich" ? (enriched as TaskCounts) : counts, t.counts);
			addCounts(bySource[t.source].counts, t.counts);
		}
	}
	const total = tasks.length;
	const settled = states.done + states.dead + states.cancelled;
	const running = job.status === "running" || job.status === "cancelling";
	return {
		jobId: job.id,
		status: job.status,
		tasks: { ...states, total },
		fraction: total === 0 ? 1 : settled / total,
		counts,
		enriched,
		bySource,
		byZip,
		etaS: running ? estimateSeconds(tasks, now, throughput) : 0,
		elapsedS: Math.round(((job.finishedAt ?? now) - job.createdAt) / 1000),
	};
}

/**
 * ETA: for each source, the remaining tasks times what a task costs. With a rate budget the cost is
 * the requests a finished task needed divided by the budget (the budget is what bounds a polite
 * scraper); without one, the observed task duration spread over the source's concurrency. Sources
 * run side by side, so the job ends with the slowest one.
 */
export function estimateSeconds(
	tasks: Task[],
	now: number,
	throughput: (source: string) => SourceThroughput,
): number | null {
	const sources = [...new Set(tasks.map((t) => t.source))];
	let worst = 0;
	for (const source of sources) {
		const own = tasks.filter((t) => t.source === source);
		const remaining = own.filter((t) => t.state === "pending" || t.state === "leased").length;
		if (remaining === 0) continue;
		const done = own.filter(
			(t) => t.state === "done" && t.counts && t.startedAt !== null && t.finishedAt !== null,
		);
		if (done.length === 0) return null;
		const { requestsPerSecond, concurrency } = throughput(source);
		const avgRequests = done.reduce((s, t) => s + (t.counts?.requests ?? 0), 0) / done.length;
		const avgDurationS =
			done.reduce((s, t) => s + ((t.finishedAt ?? now) - (t.startedAt ?? now)), 0) / done.length / 1000;
		const byObserved = (remaining * avgDurationS) / Math.max(1, Math.min(concurrency, remaining));
		const byBudget = requestsPerSecond && avgRequests > 0 ? (remaining * avgRequests) / requestsPerSecond : 0;
		worst = Math.max(worst, byObserved, byBudget);
	}
	return Math.ceil(worst);
}

/** "[#########-----------] 45% 9/20 tasks" for the REPL. */
export function progressBar(p: JobProgress, width = 30): string {
	const filled = Math.round(p.fraction * width);
	const eta = p.etaS === null ? "eta ?" : p.etaS > 0 ? `eta ${formatDuration(p.etaS)}` : "";
	return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${Math.round(p.fraction * 100)}% ${
		p.tasks.done + p.tasks.dead + p.tasks.cancelled
	}/${p.tasks.total} tasks  ${p.counts.items} items (${p.counts.new} new, ${p.counts.updated} updated)${
		p.enriched ? `, ${p.enriched.new + p.enriched.updated} enriched` : ""
	}  ${p.status} ${eta}`.trimEnd();
}

export function formatDuration(seconds: number): string {
	if (seconds < 60) return `${seconds}s`;
	const m = Math.floor(seconds / 60);
	if (m < 60) return `${m}m${String(seconds % 60).padStart(2, "0")}s`;
	return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}
