/**
 * Progress of a job, computed from its tasks: records done against records expected (paged sources
 * report each ZIP's size on its first page), requests, tasks by state, by source and by ZIP, and an
 * ETA. Pure: the leader computes it and keeps it on the job record, so `status` and `list` on any
 * node read one record, whatever the number of tasks. Running attempts count with what they have
 * reported so far (`partials`, by task id: records stored, records expected), so progress and ETA
 * move record by record, not only when a task ends.
 */

type Partials = ReadonlyMap<string, PartialProgress> | undefined;

/** A task's counts: its result's, or what its running attempt has reported so far. */
function countsOf(t: Task, partials: Partials): TaskCounts | null {
	if (t.counts) return t.counts;
	return t.state === "leased" ? (partials?.get(t.id)?.counts ?? null) : null;
}

/**
 * Records a task is known to cover: its page 1's ZIP size, its running attempt's expectation, or,
 * for a finished task of a source that does not page (no ZIP size), the records it saw.
 */
function sizeOf(t: Task, partials: Partials): number | null {
	if (t.expect) return t.expect.items;
	if (t.state === "done" && t.counts) return t.counts.items;
	const e = t.state === "leased" ? partials?.get(t.id)?.expectItems : null;
	return typeof e === "number" ? e : null;
}

import type { PartialProgress } from "./source-contract.ts";
import type { Job, JobProgress, SourceProgress, StateCounts, Task, TaskCounts } from "./types.ts";
import { EMPTY_COUNTS } from "./types.ts";

export type { JobProgress, SourceProgress, StateCounts };

/** A source's budget: requests per second cluster-wide, and how many tasks run at once. */
export interface SourceThroughput {
	requestsPerSecond: number | null;
	concurrency: number;
}

const emptyStates = (): StateCounts => ({ pending: 0, leased: 0, done: 0, dead: 0, cancelled: 0 });

export function addCounts(into: TaskCounts, c: TaskCounts): void {
	into.items += c.items;
	into.new += c.new;
	into.updated += c.updated;
	into.unchanged += c.unchanged;
	into.requests += c.requests;
	into.failures += c.failures;
	into.storeRoundTrips += c.storeRoundTrips ?? 0;
	into.gaps += c.gaps ?? 0;
}

/**
 * Records a source expects: the sizes its first pages reported, and for ZIPs not sized yet the
 * average of the sized ones. Null while no ZIP is sized, or for a source that does not page.
 */
function expectedItemsOf(own: Task[], partials?: Partials): number | null {
	const firsts = own.filter((t) => t.kind === "collect" && t.page === 1);
	const sized = firsts.filter((t) => sizeOf(t, partials) !== null);
	if (sized.length === 0) return null;
	const known = sized.reduce((s, t) => s + (sizeOf(t, partials) ?? 0), 0);
	return Math.round(known + (known / sized.length) * (firsts.length - sized.length));
}

export function jobProgress(
	job: Job,
	tasks: Task[],
	now: number,
	throughput: (source: string) => SourceThroughput,
	partials?: ReadonlyMap<string, PartialProgress>,
): JobProgress {
	const states = emptyStates();
	const counts = { ...EMPTY_COUNTS };
	let enriched: TaskCounts | null = null;
	const bySource: Record<string, SourceProgress> = {};
	const byZip: Record<string, StateCounts> = {};
	const ownTasks = new Map<string, Task[]>();
	let firstStart: number | null = null;
	for (const t of tasks) {
		states[t.state]++;
		bySource[t.source] ??= { tasks: emptyStates(), counts: { ...EMPTY_COUNTS }, expectedItems: null };
		bySource[t.source].tasks[t.state]++;
		byZip[t.zip] ??= emptyStates();
		byZip[t.zip][t.state]++;
		if (!ownTasks.has(t.source)) ownTasks.set(t.source, []);
		ownTasks.get(t.source)!.push(t);
		if (t.startedAt !== null) firstStart = Math.min(firstStart ?? t.startedAt, t.startedAt);
		if (t.kind === "enrich") enriched ??= { ...EMPTY_COUNTS };
		const c = countsOf(t, partials);
		if (c) {
			addCounts(t.kind === "enrich" ? (enriched as TaskCounts) : counts, c);
			addCounts(bySource[t.source].counts, c);
		}
	}
	let expected: number | null = 0;
	let collectSources = 0;
	for (const [source, own] of ownTasks) {
		if (own.every((t) => t.kind !== "collect")) continue;
		collectSources++;
		const e = expectedItemsOf(own, partials);
		bySource[source].expectedItems = e;
		expected = e === null || expected === null ? null : expected + e;
	}
	if (collectSources === 0) expected = null;
	const total = tasks.length;
	const settled = states.done + states.dead + states.cancelled;
	const running = job.status === "running" || job.status === "cancelling";
	const byTasks = total === 0 ? 1 : settled / total;
	const byItems = expected && expected > 0 ? Math.min(1, counts.items / expected) : null;
	// Records say more than tasks, but only until the last task: a job is done when its tasks are.
	const fraction = running ? Math.min(byItems ?? byTasks, settled < total ? 0.999 : 1) : byTasks;
	const activeS = firstStart === null ? 0 : Math.max(0, ((job.finishedAt ?? now) - firstStart) / 1000);
	return {
		jobId: job.id,
		status: job.status,
		tasks: { ...states, total },
		items: { done: counts.items, expected },
		fraction,
		counts,
		enriched,
		bySource,
		byZip,
		itemsPerS: activeS > 0 ? Math.round((counts.items / activeS) * 100) / 100 : 0,
		etaS: running ? estimateSeconds(tasks, now, throughput, partials) : 0,
		elapsedS: Math.round(((job.finishedAt ?? now) - job.createdAt) / 1000),
	};
}

/**
 * ETA, per source, the slowest one wins (sources run side by side):
 * - a paged source (records expected known): the remaining records at the requests a record has
 *   needed so far, over the source's request budget; and at the records per second seen so far;
 * - otherwise: the remaining tasks times what a finished task cost (its requests over the budget,
 *   or its observed duration spread over the source's concurrency).
 * The larger of the budget bound and the observed pace, since either may be what limits the job.
 */
export function estimateSeconds(
	tasks: Task[],
	now: number,
	throughput: (source: string) => SourceThroughput,
	partials?: ReadonlyMap<string, PartialProgress>,
): number | null {
	let worst = 0;
	for (const source of new Set(tasks.map((t) => t.source))) {
		const own = tasks.filter((t) => t.source === source);
		const remainingTasks = own.filter((t) => t.state === "pending" || t.state === "leased").length;
		if (remainingTasks === 0) continue;
		const { requestsPerSecond, concurrency } = throughput(source);
		const done = own.filter((t) => t.state === "done" && t.counts);
		const expected = expectedItemsOf(own, partials);
		if (expected !== null) {
			const doneItems = own.reduce((s, t) => s + (countsOf(t, partials)?.items ?? 0), 0);
			const requests = own.reduce((s, t) => s + (countsOf(t, partials)?.requests ?? 0), 0);
			if (doneItems === 0) return null;
			const remaining = Math.max(0, expected - doneItems);
			const firstStart = Math.min(...own.map((t) => t.startedAt ?? now));
			const activeS = (now - firstStart) / 1000;
			const byObserved = activeS > 0 ? remaining / (doneItems / activeS) : 0;
			const byBudget = requestsPerSecond ? (remaining * (requests / doneItems)) / requestsPerSecond : 0;
			worst = Math.max(worst, byObserved, byBudget);
			continue;
		}
		const timed = done.filter((t) => t.startedAt !== null && t.finishedAt !== null);
		if (timed.length === 0) return null;
		const avgRequests = timed.reduce((s, t) => s + (t.counts?.requests ?? 0), 0) / timed.length;
		const avgDurationS =
			timed.reduce((s, t) => s + ((t.finishedAt ?? now) - (t.startedAt ?? now)), 0) / timed.length / 1000;
		const byObserved = (remainingTasks * avgDurationS) / Math.max(1, Math.min(concurrency, remainingTasks));
		const byBudget =
			requestsPerSecond && avgRequests > 0 ? (remainingTasks * avgRequests) / requestsPerSecond : 0;
		worst = Math.max(worst, byObserved, byBudget);
	}
	return Math.ceil(worst);
}

/** "[#########-----------] 45% 4,500/10,000 records  9/20 tasks ..." for the REPL. */
export function progressBar(p: JobProgress, width = 30): string {
	const filled = Math.round(p.fraction * width);
	const eta = p.etaS === null ? "eta ?" : p.etaS > 0 ? `eta ${formatDuration(p.etaS)}` : "";
	const records =
		p.items.expected !== null
			? `${p.items.done.toLocaleString("en-US")}/${p.items.expected.toLocaleString("en-US")} records`
			: `${p.items.done.toLocaleString("en-US")} records`;
	return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${Math.round(p.fraction * 100)}% ${records}  ${
		p.tasks.done + p.tasks.dead + p.tasks.cancelled
	}/${p.tasks.total} tasks (${p.counts.new} new, ${p.counts.updated} updated)${
		p.enriched ? `, ${p.enriched.new + p.enriched.updated} enriched` : ""
	}${p.itemsPerS > 0 ? `  ${p.itemsPerS}/s` : ""}  ${p.status} ${eta}`.trimEnd();
}

export function formatDuration(seconds: number): string {
	if (seconds < 60) return `${seconds}s`;
	const m = Math.floor(seconds / 60);
	if (m < 60) return `${m}m${String(seconds % 60).padStart(2, "0")}s`;
	return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}
