/**
 * Where and how many tasks the leader starts: each source's cap of tasks in flight, and the node a
 * task goes to. Plain functions of what the leader knows (nodes, regions, tasks in flight).
 */
import { ACTION_OF, type LoadedJob, type OrchestratorDeps } from "./orchestrator-deps.ts";
import type { Task } from "./types.ts";

/** Requests a task is guessed to need before any of its source finished: a GIS page and its details. */
const TASK_REQUESTS_GUESS = 1000;

/**
 * Tasks of a source in flight at once: ORCHESTRATOR_CONCURRENCY_PER_SOURCE per node offering it,
 * but no more than the source's request budget can serve. Tasks share the budget: past that
 * many, each one only runs slower (and long enough, past its timeout), so the rest wait queued,
 * where a node that joins or a budget that is raised picks them up.
 */
export function sourceCap(t: Task, loaded: readonly LoadedJob[], deps: OrchestratorDeps): number {
	const { settings } = deps;
	const nodes = Math.max(1, deps.endpoints(ACTION_OF(t)).length);
	const byNodes = settings.concurrency(t.source) * nodes;
	const rps = settings.requestsPerSecond(t.source);
	if (!rps) return byNodes;
	const done = loaded.flatMap((e) =>
		e.tasks.filter((x) => x.source === t.source && x.state === "done" && x.counts),
	);
	const perTask =
		done.length > 0
			? Math.max(1, done.reduce((sum, x) => sum + (x.counts?.requests ?? 0), 0) / done.length)
			: TASK_REQUESTS_GUESS;
	// Each task should get enough of the budget to finish within half its timeout.
	const byBudget = Math.floor((rps * settings.taskTimeoutMs) / 1000 / (2 * perTask));
	return Math.max(1, Math.min(byNodes, byBudget));
}

/**
 * The least busy node offering the action (ties: round robin). Chosen by the leader rather than by
 * the broker because the registry prefers local endpoints, which would pin every task to the
 * leader's own node whenever it also runs the source. With regions, only nodes whose region suits
 * the source are candidates, and the least busy region (tasks in flight per node) goes first, so a
 * county job is spread over the regions.
 */
export class NodePicker {
	readonly #deps: OrchestratorDeps;
	/** Round-robin cursor per action, to break ties between equally loaded nodes. */
	readonly #cursor = new Map<string, number>();

	constructor(deps: OrchestratorDeps) {
		this.#deps = deps;
	}

	/** `load(node)`: the tasks this leader has in flight on it. */
	pick(action: string, source: string, load: (node: string) => number): string | null {
		const suits = this.#deps.suits ?? (() => true);
		const nodes = this.#deps.endpoints(action).filter((n) => suits(source, n));
		if (nodes.length === 0) return null;
		const region = (n: string) => this.#deps.regionOf?.(n) ?? "";
		const regionLoad = new Map<string, number>();
		for (const r of new Set(nodes.map(region))) {
			const members = nodes.filter((n) => region(n) === r);
			regionLoad.set(r, members.reduce((sum, n) => sum + load(n), 0) / members.length);
		}
		const score = (n: string) => regionLoad.get(region(n))! * 1e6 + load(n);
		const cursor = (this.#cursor.get(action) ?? 0) + 1;
		this.#cursor.set(action, cursor);
		const rotated = nodes.map((_, i) => nodes[(i + cursor) % nodes.length]);
		return rotated.reduce((best, n) => (score(n) < score(best) ? n : best), rotated[0]);
	}
}
