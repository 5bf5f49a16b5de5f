/**
 * The scheduler's actions and what they answer (a schedule's view, a firing), with a typed
 * `callScheduler` (the REPL, the API).
 */
import { type Action, callerOf } from "./call.ts";

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
	"scheduler.trigger": Action<{ name: string }, Firing>;
	"scheduler.pause": Action<{ name: string }, ScheduleView>;
	"scheduler.resume": Action<{ name: string }, ScheduleView>;
};

/** `callScheduler(broker, "scheduler.list", {})`: a scheduler call typed by its action. */
export const callScheduler = callerOf<SchedulerActions>();
