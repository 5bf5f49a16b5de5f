/**
 * The scheduler's actions and what they answer (a schedule's view, a firing), with a typed
 * `callScheduler` (the REPL, the API).
 */
import { type Action, callerOf } from "./call.ts";
import type { ParamsSchema } from "./params.ts";

/** `trigger`, `pause`, `resume`: one schedule, by its name in SCHEDULES. */
export interface ScheduleNameParams {
	name: string;
}

export const scheduleNameParams = {
	name: { type: "string", pattern: /^[A-Za-z0-9_-]{1,64}$/ },
} as const satisfies ParamsSchema<ScheduleNameParams>;

export interface Firing {
	name: string;
	tick: string;
	node: string;
	at: string;
	kind: "fire" | "skip" | "manual";
	reason?: string;
	late?: boolean;
	zips?: string[];
	result?: unknown;
	error?: string;
}

export interface ScheduleView {
	name: string;
	cron: string;
	action: string;
	enabled: boolean;
	paused: boolean;
	nextRun: string | null;
	lastTick: string | null;
	lastFiring: Firing | null;
	nextZips: string[];
}

/** The catalog (a type alias, not an interface: only aliases fit `ActionCatalog`). */
export type SchedulerActions = {
	"scheduler.list": Action<Record<string, never>, ScheduleView[]>;
	"scheduler.trigger": Action<ScheduleNameParams, Firing>;
	"scheduler.pause": Action<ScheduleNameParams, ScheduleView>;
	"scheduler.resume": Action<ScheduleNameParams, ScheduleView>;
};

/** `callScheduler(broker, "scheduler.list", {})`: a scheduler call typed by its action. */
export const callScheduler = callerOf<SchedulerActions>();
