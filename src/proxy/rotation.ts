/**
 * Rotation strategies: given the usable proxies, the order in which to try them. Pure; the pool
 * supplies the cluster-wide cursor, in-flight and use counts.
 */

import type { RotationStrategy } from "../config/proxy.ts";

export { ROTATION_STRATEGIES, type RotationStrategy } from "../config/proxy.ts";

export interface Candidate {
	id: string;
	/** Health weight (> 0) for the weighted strategy. */
	weight: number;
	/** Leases currently held on this proxy. */
	inFlight: number;
	/** Leases ever handed out for this proxy. */
	uses: number;
}

/**
 * The order to try candidates in. `cursor` drives round-robin (a counter shared by the cluster, so
 * successive acquisitions anywhere walk the list); `random` is injectable for tests.
 */
export function orderCandidates(
	candidates: readonly Candidate[],
	strategy: RotationStrategy,
	cursor: number,
	random: () => number = Math.random,
): Candidate[] {
	const list = [...candidates].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
	if (list.length <= 1) return list;
	switch (strategy) {
		case "round-robin": {
			const start = ((cursor % list.length) + list.length) % list.length;
			return [...list.slice(start), ...list.slice(0, start)];
		}
		case "random":
			return shuffle(list, random);
		case "least-used":
			// Ties broken at random so equal proxies share the load instead of the first id taking it all.
			return shuffle(list, random).sort((a, b) => a.inFlight - b.inFlight || a.uses - b.uses);
		case "weighted":
			// Weighted sampling without replacement (Efraimidis–Spirakis): key = u^(1/w), largest first.
			return list
				.map((c) => ({ c, key: random() ** (1 / Math.max(c.weight, 1e-6)) }))
				.sort((a, b) => b.key - a.key)
				.map((x) => x.c);
	}
}

function shuffle<T>(items: T[], random: () => number): T[] {
	const out = [...items];
	for (let i = out.length - 1; i > 0; i--) {
		const j = Math.floor(random() * (i + 1));
		[out[i], out[j]] = [out[j]!, out[i]!];
	}
	return out;
}
