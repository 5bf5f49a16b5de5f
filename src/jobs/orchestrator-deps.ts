/**
 * What the orchestrator engine is given (its settings, and the broker seen through a few functions,
 * so the engine stays testable) and what its parts share.
 */
import type { SharedState } from "../shared-state/index.ts";
import type { RetryPolicy } from "./task-machine.ts";
import type { Job, Task } from "./types.ts";

export interface OrchestratorSettings extends RetryPolicy {
	taskLeaseMs: number;
	taskTimeoutMs: number;
	/** How long a call may go unclaimed by its worker (default: see `dispatchGraceMs`). */
	dispatchGraceMs?: number;
	leaderTtlMs: number;
	tickMs: number;
	retentionMs: number;
	/** Tasks of a source running at once per node offering it (the cluster cap grows with nodes). */
	concurrency(source: string): number;
	/** The ZIPs of a `county` collection. */
	countyZips: readonly string[];
	requestsPerSecond(source: string): number | null;
}

export interface OrchestratorDeps {
	state: SharedState;
	nodeId: string;
	settings: OrchestratorSettings;
	/** Nodes currently offering an action (available ones only). */
	endpoints(action: string): string[];
	/** Call `action` on node `nodeId`, no framework retries (the orchestrator retries). */
	call(action: string, params: Record<string, unknown>, nodeId: string, timeoutMs: number): Promise<unknown>;
	nodeAlive(nodeId: string): boolean;
	/** The region of a node (REGION in its metadata), null when it has none (issue 15). */
	regionOf?(nodeId: string): string | null;
	/** Whether a node's region suits a source's tasks (e.g. mls needs a proxy pool there). Default: yes. */
	suits?(source: string, nodeId: string): boolean;
	/** Sources with a collectZip action anywhere in the cluster; whether an llm enricher runs. */
	availableSources(): string[];
	enrichAvailable(): boolean;
	broadcast(event: string, payload: Record<string, unknown>): void;
	logger: {
		info(...args: unknown[]): void;
		warn(...args: unknown[]): void;
		error(...args: unknown[]): void;
		debug(...args: unknown[]): void;
	};
	now?: () => number;
	random?: () => number;
}

/** A job's tasks as the leader holds them between ticks (it is their only writer). */
export interface LoadedJob {
	job: Job;
	tasks: Task[];
	/** Summary last written to the job record (JSON), to write it only when it changed. */
	written: string;
}

/** The action a task calls on its node. */
export const ACTION_OF = (t: Task) => (t.kind === "collect" ? `${t.source}.collectZip` : "llm.enrichPending");
