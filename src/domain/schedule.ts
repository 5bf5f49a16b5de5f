/**
 * Schedules, pure: their configuration shape and checks, cron ticks (croner), a jitter every node
 * computes alike, blackout hours, ZIP batches rotated round-robin across runs, and the decision of
 * what to do with a due tick. The scheduler service only adds the clock and SharedState.
 */
import { Cron } from "croner";
import { Validator } from "../utils/validator.ts";

export type MissedPolicy = "run-once" | "skip";

export interface ScheduleConfig {
	name: string;
	/** 5 fields, or 6 with seconds first (croner). */
	cron: string;
	/** Action fired; default orchestrator.collect. */
	action: string;
	/** Extra params of the action (for collect: sources, enrich, priority). */
	params: Record<string, unknown>;
	/** ZIPs, given to the action as `zips`, `batchSize` at a time, rotated across runs (0 = all). */
	zips: string[];
	batchSize: number;
	/** Fire up to this many seconds after the tick (same offset on every node). */
	jitterS: number;
	/** Hour ranges "HH-HH" (schedule time zone, end exclusive, may wrap midnight) when ticks are skipped. */
	blackout: string[];
	/** A tick missed while the cluster was down: run once on return, or skip it. */
	missed: MissedPolicy;
	enabled: boolean;
}

const check = new Validator({ useNewCustomCheckerFunction: true }).compile({
	$$root: true,
	type: "array",
	items: {
		type: "object",
		strict: true,
		props: {
			name: { type: "string", pattern: /^[A-Za-z0-9_-]{1,64}$/ },
			cron: { type: "string", min: 9 },
			action: { type: "string", pattern: /^[A-Za-z0-9$_-]+\.[A-Za-z0-9_]+$/, optional: true },
			params: { type: "object", optional: true },
			zips: { type: "array", items: { type: "string", pattern: /^\d{5}$/ }, optional: true },
			batchSize: { type: "number", integer: true, min: 0, optional: true },
			jitterS: { type: "number", integer: true, min: 0, max: 86_400, optional: true },
			blackout: { type: "array", items: { type: "string", pattern: /^\d{1,2}-\d{1,2}$/ }, optional: true },
			missed: { type: "enum", values: ["run-once", "skip"], optional: true },
			enabled: { type: "boolean", optional: true },
		},
	},
});

/** Parse and check schedules (an array); throws one error naming every problem. */
export function parseSchedules(input: unknown, timezone: string): ScheduleConfig[] {
	const result = check(input);
	if (result !== true) {
		const problems = (result as { message?: string; type: string }[]).map((e) => e.message ?? e.type);
		throw new Error(`invalid schedules: ${problems.join("; ")}`);
	}
	const raw = input as Partial<ScheduleConfig>[];
	const problems: string[] = [];
	const names = new Set<string>();
	const schedules = raw.map((s): ScheduleConfig => {
		const name = s.name as string;
		if (names.has(name)) problems.push(`schedule '${name}' is defined twice`);
		names.add(name);
		try {
			new Cron(s.cron as string, { timezone, paused: true });
		} catch (err) {
			problems.push(`schedule '${name}': ${(err as Error).message}`);
		}
		for (const range of s.blackout ?? []) {
			const [from, to] = range.split("-").map(Number);
			if (from > 23 || to > 24 || from === to)
				problems.push(`schedule '${name}': bad blackout range '${range}'`);
		}
		return {
			name,
			cron: s.cron as string,
			action: s.action ?? "orchestrator.collect",
			params: s.params ?? {},
			zips: s.zips ?? [],
			batchSize: s.batchSize ?? 0,
			jitterS: s.jitterS ?? 0,
			blackout: s.blackout ?? [],
			missed: s.missed ?? "run-once",
			enabled: s.enabled ?? true,
		};
	});
	if (problems.length > 0) throw new Error(`invalid schedules: ${problems.join("; ")}`);
	return schedules;
}

export function cronOf(schedule: ScheduleConfig, timezone: string): Cron {
	return new Cron(schedule.cron, { timezone, paused: true });
}

/** The latest tick at or before `now`, or null when the pattern never fired within a year. */
export function latestTick(cron: Cron, now: Date): Date | null {
	// Look back in growing steps so a per-second schedule costs one step and a yearly one a few.
	for (const lookbackMs of [
		2_000,
		60_000,
		3_600_000,
		86_400_000,
		8 * 86_400_000,
		32 * 86_400_000,
		367 * 86_400_000,
	]) {
		let tick = cron.nextRun(new Date(now.getTime() - lookbackMs));
		if (!tick || tick > now) continue;
		for (let next = cron.nextRun(tick); next && next <= now; next = cron.nextRun(tick)) tick = next;
		return tick;
	}
	return null;
}

export function nextTick(cron: Cron, now: Date): Date | null {
	return cron.nextRun(now);
}

/** A stable offset in [0, jitterS] s: every node derives the same one for a tick (FNV-1a hash). */
export function jitterMs(name: string, tick: Date, jitterS: number): number {
	if (jitterS <= 0) return 0;
	let h = 0x811c9dc5;
	for (const ch of `${name}@${tick.toISOString()}`) {
		h ^= ch.charCodeAt(0);
		h = Math.imul(h, 0x01000193) >>> 0;
	}
	return h % (jitterS * 1000 + 1);
}

/** The hour (0-23) of `at` in `timezone`. */
export function hourIn(at: Date, timezone: string): number {
	const hour = new Intl.DateTimeFormat("en-US", {
		timeZone: timezone,
		hour: "numeric",
		hourCycle: "h23",
	}).format(at);
	return Number(hour);
}

export function inBlackout(at: Date, timezone: string, ranges: string[]): boolean {
	const hour = hourIn(at, timezone);
	return ranges.some((range) => {
		const [from, to] = range.split("-").map(Number);
		return from < to ? hour >= from && hour < to : hour >= from || hour < to;
	});
}

/** The ZIPs of run number `run` (0-based): consecutive batches, wrapping around the list. */
export function batchFor(zips: string[], batchSize: number, run: number): string[] {
	if (batchSize <= 0 || batchSize >= zips.length) return [...zips];
	const batches = Math.ceil(zips.length / batchSize);
	const start = (run % batches) * batchSize;
	return zips.slice(start, start + batchSize);
}

export type TickDecision =
	| { kind: "idle" }
	| { kind: "wait"; untilMs: number }
	| { kind: "fire"; late: boolean }
	| { kind: "skip"; reason: "missed" | "blackout" | "paused" | "disabled" };

/**
 * What to do about the latest tick. `lastHandled` is the last tick any node fired or skipped.
 * A tick is on time until `graceMs` after its jittered fire time; later than that it was missed
 * (the cluster was down) and the schedule's policy decides. Ticks missed before the latest one
 * collapse into it: a cluster back after three days runs a daily schedule once, not three times.
 */
export function decide(
	schedule: ScheduleConfig,
	tick: Date | null,
	lastHandled: Date | null,
	now: Date,
	opts: { timezone: string; graceMs: number; paused: boolean },
): TickDecision {
	if (!tick) return { kind: "idle" };
	if (lastHandled && lastHandled.getTime() >= tick.getTime()) return { kind: "idle" };
	const fireAt = tick.getTime() + jitterMs(schedule.name, tick, schedule.jitterS);
	if (now.getTime() < fireAt) return { kind: "wait", untilMs: fireAt };
	if (!schedule.enabled) return { kind: "skip", reason: "disabled" };
	if (opts.paused) return { kind: "skip", reason: "paused" };
	const late = now.getTime() - fireAt > opts.graceMs;
	if (late) {
		// A fresh deployment has no history: old ticks were never ours to run.
		if (!lastHandled || schedule.missed === "skip") return { kind: "skip", reason: "missed" };
	}
	// A late run happens now, so it is now that must be outside the blackout hours.
	const runsAt = late ? now : new Date(fireAt);
	if (inBlackout(runsAt, opts.timezone, schedule.blackout)) return { kind: "skip", reason: "blackout" };
	return { kind: "fire", late };
}
