/**
 * The queues: tasks by state and source over the jobs the orchestrator lists (`orchestrator.list`),
 * for the jobs still running and over all listed. Pure: progress rows in, counts out.
 */

export const TASK_STATES = ["pending", "leased", "done", "dead", "cancelled"] as const;
export type TaskStateName = (typeof TASK_STATES)[number];
export type StateCountsLike = Record<TaskStateName, number>;

export interface QueueProgressLike {
	jobId: string;
	status: string;
	bySource: Record<string, { tasks: Partial<StateCountsLike> }>;
}

export interface Queues {
	/** Jobs listed (the newest first, up to the limit asked) and those still running. */
	jobs: { listed: number; running: number };
	/** Running jobs only: what is queued or in flight now. */
	active: { bySource: Record<string, StateCountsLike>; total: StateCountsLike };
	/** Every listed job. */
	all: { bySource: Record<string, StateCountsLike>; total: StateCountsLike };
}

const zero = (): StateCountsLike => ({ pending: 0, leased: 0, done: 0, dead: 0, cancelled: 0 });

export function queuesOf(rows: QueueProgressLike[]): Queues {
	const active = { bySource: {} as Record<string, StateCountsLike>, total: zero() };
	const all = { bySource: {} as Record<string, StateCountsLike>, total: zero() };
	let running = 0;
	for (const row of rows) {
		const live = row.status === "running" || row.status === "cancelling";
		if (live) running++;
		for (const [source, s] of Object.entries(row.bySource ?? {})) {
			for (const into of live ? [active, all] : [all]) {
				into.bySource[source] ??= zero();
				for (const state of TASK_STATES) {
					const n = Number(s?.tasks?.[state] ?? 0);
					into.bySource[source][state] += n;
					into.total[state] += n;
				}
			}
		}
	}
	return { jobs: { listed: rows.length, running }, active, all };
}
