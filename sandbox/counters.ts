/**
 * Per-client request counters for the sandbox simulators.
 *
 * Tests use them to check politeness without timing assertions: "no client ever made more than N
 * requests in any W ms", "the parcel endpoint was called once per APN". Every request is kept with
 * its time, client, path kind and final status; questions are answered from that log. The same data
 * is served as JSON on `GET /__sandbox/stats` by every simulator.
 */

import type { IncomingMessage } from "node:http";

export interface RequestRecord {
	/** Arrival time, ms since epoch. */
	t: number;
	client: string;
	/** Simulator-defined route class, e.g. "search", "parcel", "query", "chat". */
	kind: string;
	/** Final HTTP status, filled when the answer is written (0 while pending or if the socket died). */
	status: number;
}

export interface RecordFilter {
	client?: string;
	kind?: string;
	/** Only records with this status. */
	status?: number;
}

export interface CounterStats {
	total: number;
	byClient: Record<string, number>;
	byKind: Record<string, number>;
	byStatus: Record<string, number>;
	/** Per client: the most requests seen inside any sliding window of `windowMs`. */
	maxInWindow: Record<string, number>;
	windowMs: number;
}

/**
 * Who is calling, as the real sites would see it: the API token when there is one (the Assessor
 * budgets per token), else the exit IP the sandbox proxies stamp, else the socket's address.
 * A "Bearer " prefix is dropped so OpenAI-style keys and raw tokens read the same.
 */
export function clientIdOf(req: IncomingMessage): string {
	const auth = req.headers.authorization;
	if (typeof auth === "string" && auth.trim() !== "") return auth.replace(/^Bearer\s+/i, "").trim();
	const exit = req.headers["x-sandbox-exit-ip"];
	if (typeof exit === "string" && exit.trim() !== "") return exit.trim();
	return req.socket.remoteAddress ?? "unknown";
}

/** Most timestamps found inside any window [t, t + windowMs) of a sorted list. */
export function maxInSlidingWindow(sortedTimes: readonly number[], windowMs: number): number {
	let best = 0;
	let lo = 0;
	for (let hi = 0; hi < sortedTimes.length; hi++) {
		while (sortedTimes[hi]! - sortedTimes[lo]! >= windowMs) lo++;
		best = Math.max(best, hi - lo + 1);
	}
	return best;
}

export class RequestCounters {
	readonly #records: RequestRecord[] = [];
	/** Most records kept; past it the oldest tenth is dropped (a long demo run must not grow forever). */
	readonly maxRecords: number;

	constructor(maxRecords = 1_000_000) {
		this.maxRecords = maxRecords;
	}

	/** Logs one request; the returned record's `status` is set later by the server. */
	record(client: string, kind: string, t: number = Date.now()): RequestRecord {
		const rec: RequestRecord = { t, client, kind, status: 0 };
		this.#records.push(rec);
		if (this.#records.length > this.maxRecords) this.#records.splice(0, Math.ceil(this.maxRecords / 10));
		return rec;
	}

	/** A copy of the matching records, in arrival order. */
	records(filter: RecordFilter = {}): RequestRecord[] {
		return this.#records.filter(
			(r) =>
				(filter.client === undefined || r.client === filter.client) &&
				(filter.kind === undefined || r.kind === filter.kind) &&
				(filter.status === undefined || r.status === filter.status),
		);
	}

	total(filter: RecordFilter = {}): number {
		return this.records(filter).length;
	}

	clients(): string[] {
		return [...new Set(this.#records.map((r) => r.client))];
	}

	/** Most matching requests inside any sliding window of `windowMs` (across all clients unless filtered). */
	maxInWindow(windowMs: number, filter: RecordFilter = {}): number {
		const times = this.records(filter)
			.map((r) => r.t)
			.sort((a, b) => a - b);
		return maxInSlidingWindow(times, windowMs);
	}

	/** Matching requests that arrived in the last `windowMs` before `now`. */
	countSince(windowMs: number, filter: RecordFilter = {}, now: number = Date.now()): number {
		return this.records(filter).filter((r) => r.t > now - windowMs).length;
	}

	reset(): void {
		this.#records.length = 0;
	}

	stats(windowMs = 60_000): CounterStats {
		const byClient: Record<string, number> = {};
		const byKind: Record<string, number> = {};
		const byStatus: Record<string, number> = {};
		for (const r of this.#records) {
			byClient[r.client] = (byClient[r.client] ?? 0) + 1;
			byKind[r.kind] = (byKind[r.kind] ?? 0) + 1;
			byStatus[String(r.status)] = (byStatus[String(r.status)] ?? 0) + 1;
		}
		const maxInWindow: Record<string, number> = {};
		for (const client of Object.keys(byClient)) maxInWindow[client] = this.maxInWindow(windowMs, { client });
		return { total: this.#records.length, byClient, byKind, byStatus, maxInWindow, windowMs };
	}
}
