/**
 * A ledger lost under a running cluster (Redis restarted without persistence) written back from the
 * memory of the node that led it.
 */
import type { Attempts } from "./attempts.ts";
import type { JobLedger } from "./ledger.ts";
import type { LoadedJob } from "./orchestrator-deps.ts";
import type { Task } from "./types.ts";

/**
 * When none of the jobs this node holds is in the ledger any more, write them back, so no job
 * vanishes. The attempts it runs keep running: their leases are re-taken (same tokens) before the
 * ledger reappears, so no leader mistakes them for orphans and runs them twice. Other leased tasks
 * are queued again (their attempts are told to stop); done ones stay done. Null: nothing was lost.
 */
export async function restoreLostLedger(
	loaded: ReadonlyMap<string, LoadedJob>,
	ledger: JobLedger,
	attempts: Attempts,
	now: number,
): Promise<{ jobs: string[]; kept: number } | null> {
	if (loaded.size === 0) return null;
	const ids = [...loaded.keys()];
	const found = await ledger.jobs(ids).catch(() => null);
	if (!found || found.some((j) => j !== undefined)) return null;
	const running = await attempts.retake();
	for (const { job, tasks } of loaded.values()) {
		const restored: Task[] = [];
		for (const t of tasks) {
			if (t.state !== "leased" || (t.leaseToken && running.has(t.leaseToken))) {
				restored.push(t);
				continue;
			}
			if (t.leaseToken) await attempts.abandonAttempt(t.leaseToken, t.id);
			restored.push({ ...t, state: "pending", leaseToken: null, notBefore: now });
		}
		await ledger.create(job, restored);
	}
	return { jobs: ids, kept: running.size };
}
