/**
 * Which nodes reach the shared state (issue 15): every clustered node writes `reach:<nodeId>` into
 * it every heartbeat interval, expiring after the heartbeat timeout. The orchestrator dispatches only
 * to nodes whose mark is fresh: a region that still talks NATS but has lost its link to Redis (the
 * budgets' holder) could not claim a request slot, so its nodes get no tasks until the link is back.
 */
import type { SharedState } from "../shared-state/index.ts";

export const reachKey = (nodeId: string) => `reach:${nodeId}`;

/** Mark this node as reaching the state now and every `intervalMs`; returns a stop function. */
export function startReachBeacon(
	state: SharedState,
	nodeId: string,
	intervalMs: number,
	ttlMs: number,
): () => void {
	let stopped = false;
	let busy = false;
	const mark = async () => {
		if (stopped || busy) return;
		busy = true;
		try {
			await state.set(reachKey(nodeId), Date.now(), ttlMs);
		} catch {
			// Unreachable: the mark expires, which is what it says.
		} finally {
			busy = false;
		}
	};
	void mark();
	const timer = setInterval(() => void mark(), intervalMs);
	timer.unref();
	return () => {
		stopped = true;
		clearInterval(timer);
	};
}

/** The nodes among `nodeIds` whose mark is fresh. */
export async function nodesReaching(state: SharedState, nodeIds: string[]): Promise<Set<string>> {
	if (nodeIds.length === 0) return new Set();
	const marks = await state.getMany<number>(nodeIds.map(reachKey));
	return new Set(nodeIds.filter((_, i) => marks[i] !== undefined));
}
