/**
 * Prometheus figures of the jobs (issue 13): jobs by status, tasks by source and state (gauges read
 * from the ledger's job summaries), records collected by source (a counter fed by the growth of the
 * summaries between two samples). Every orchestrator samples, only the leader exports, so a cluster
 * exports each figure once and a new leader counts from where its own last sample left off.
 */
import type { JobProgress, JobStatus, TaskState } from "./types.ts";

export const JOB_METRICS = {
	jobs: "saguaro_jobs",
	tasks: "saguaro_tasks",
	items: "saguaro_items_done_total",
} as const;

const JOB_STATUSES: readonly JobStatus[] = [
	"running",
	"cancelling",
	"completed",
	"completed_with_errors",
	"failed",
	"cancelled",
];
const TASK_STATES: readonly TaskState[] = ["pending", "leased", "done", "dead", "cancelled"];

/** The part of Moleculer's MetricRegistry used here (broker.metrics). */
export interface MetricSink {
	register(def: {
		type: "gauge" | "counter";
		name: string;
		labelNames?: string[];
		description: string;
	}): unknown;
	getMetric(name: string): unknown;
	set(name: string, value: number, labels?: Record<string, string>): void;
	increment(name: string, labels?: Record<string, string>, value?: number): void;
}

export function registerJobMetrics(metrics: MetricSink): void {
	if (metrics.getMetric(JOB_METRICS.jobs)) return;
	metrics.register({
		type: "gauge",
		name: JOB_METRICS.jobs,
		labelNames: ["status"],
		description: "Jobs in the ledger by status (kept ORCHESTRATOR_JOB_RETENTION_H after they end)",
	});
	metrics.register({
		type: "gauge",
		name: JOB_METRICS.tasks,
		labelNames: ["source", "state"],
		description:
			"Tasks of the jobs in the ledger by source and state (pending, leased, done, dead, cancelled)",
	});
	metrics.register({
		type: "counter",
		name: JOB_METRICS.items,
		labelNames: ["source"],
		description:
			"Records collected by source (parcels, listings, properties enriched), counted by the leader",
	});
}

/** Feeds the job metrics from successive samples of the ledger's job summaries. */
export class JobMetrics {
	readonly #metrics: MetricSink;
	/** Records done per job and source at the last sample; null before the first (the baseline). */
	#itemsSeen: Map<string, number> | null = null;
	#taskLabels = new Set<string>();

	constructor(metrics: MetricSink) {
		this.#metrics = metrics;
		registerJobMetrics(metrics);
	}

	/** One sample of the ledger; `leader`: this node exports it. */
	sample(jobs: JobProgress[], leader: boolean): void {
		const m = this.#metrics;
		const byStatus = new Map<string, number>(JOB_STATUSES.map((s) => [s, 0]));
		const tasks = new Map<string, number>();
		const items = new Map<string, number>();
		for (const job of jobs) {
			byStatus.set(job.status, (byStatus.get(job.status) ?? 0) + 1);
			for (const [source, p] of Object.entries(job.bySource)) {
				for (const state of TASK_STATES) {
					const key = `${source}\u0000${state}`;
					tasks.set(key, (tasks.get(key) ?? 0) + (p.tasks[state] ?? 0));
				}
				items.set(`${job.jobId}\u0000${source}`, p.counts.items);
			}
		}
		const seen = this.#itemsSeen;
		this.#itemsSeen = items;
		if (!leader) return;
		for (const [status, n] of byStatus) m.set(JOB_METRICS.jobs, n, { status });
		// A source no longer in the ledger is set to 0, not left at its last value.
		for (const key of this.#taskLabels) if (!tasks.has(key)) tasks.set(key, 0);
		for (const [key, n] of tasks) {
			const [source, state] = key.split("\u0000") as [string, string];
			m.set(JOB_METRICS.tasks, n, { source, state });
			this.#taskLabels.add(key);
		}
		// The node's first sample (at its start) is its baseline: what was collected before is counted
		// by the leader of that time.
		if (!seen) return;
		for (const [key, n] of items) {
			const grown = n - (seen.get(key) ?? 0);
			if (grown > 0) m.increment(JOB_METRICS.items, { source: key.split("\u0000")[1]! }, grown);
		}
	}
}
