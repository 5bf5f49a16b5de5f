/**
 * The scheduler engine. Every node running it evaluates every schedule each round; a due tick is
 * claimed with SharedState.setIfAbsent on (schedule, tick), so however many nodes run it, one fires.
 * No node holds a lock between ticks, so the death of the node that fired the last tick does not
 * stop the next one. A claim expires: if its node dies before recording the tick, another node
 * claims it again after `claimTtlMs` (and a collect fired twice is still one job: its id is derived
 * from the tick).
 *
 * Keys: sched:last:<name> (last tick fired or skipped), sched:claim:<name>:<tick>,
 * sched:paused:<name>, sched:run:<name> (batch rotation counter), sched:history:<name>.
 */
import type { Cron } from "croner";
import type { Firing, ScheduleView } from "../contracts/scheduler.ts";
import { NotFoundError } from "../core/errors.ts";
import { batchFor, cronOf, decide, latestTick, nextTick, type ScheduleConfig } from "../domain/schedule.ts";
import type { SharedState } from "../shared-state/index.ts";

/** An unknown schedule name is the caller's mistake: a 404 naming the known ones. */
export class ScheduleNotFoundError extends NotFoundError {
	constructor(name: string, known: string) {
		super(`no schedule '${name}' (known: ${known})`, { type: "SCHEDULE_NOT_FOUND", data: { name } });
	}
}

export interface SchedulerDeps {
	state: SharedState;
	nodeId: string;
	schedules: ScheduleConfig[];
	timezone: string;
	graceMs: number;
	roundMs: number;
	claimTtlMs: number;
	call(action: string, params: Record<string, unknown>): Promise<unknown>;
	broadcast(event: string, payload: Record<string, unknown>): void;
	logger: { info(...a: unknown[]): void; warn(...a: unknown[]): void };
	now?: () => Date;
}

export type { Firing, ScheduleView } from "../contracts/scheduler.ts";

const lastKey = (n: string) => `sched:last:${n}`;
const claimKey = (n: string, tick: string) => `sched:claim:${n}:${tick}`;
const pausedKey = (n: string) => `sched:paused:${n}`;
const runKey = (n: string) => `sched:run:${n}`;
const historyKey = (n: string) => `sched:history:${n}`;

export class Scheduler {
	readonly #deps: SchedulerDeps;
	readonly #crons = new Map<string, Cron>();
	#timer: NodeJS.Timeout | null = null;
	#stopped = true;

	constructor(deps: SchedulerDeps) {
		this.#deps = deps;
		for (const s of deps.schedules) this.#crons.set(s.name, cronOf(s, deps.timezone));
	}

	#now(): Date {
		return (this.#deps.now ?? (() => new Date()))();
	}

	#schedule(name: string): ScheduleConfig {
		const s = this.#deps.schedules.find((x) => x.name === name);
		if (!s) {
			const known = this.#deps.schedules.map((x) => x.name).join(", ") || "none";
			throw new ScheduleNotFoundError(name, known);
		}
		return s;
	}

	start(): void {
		this.#stopped = false;
		const loop = async () => {
			if (this.#stopped) return;
			try {
				await this.round();
			} catch (err) {
				this.#deps.logger.warn("Scheduler round failed; retrying on the next round.", err);
			}
			if (!this.#stopped) this.#timer = setTimeout(loop, this.#deps.roundMs);
		};
		this.#timer = setTimeout(loop, 0);
	}

	stop(): void {
		this.#stopped = true;
		if (this.#timer) clearTimeout(this.#timer);
	}

	/** Evaluate every schedule once. */
	async round(): Promise<void> {
		for (const schedule of this.#deps.schedules) await this.#evaluate(schedule);
	}

	async #evaluate(schedule: ScheduleConfig): Promise<void> {
		const { state, nodeId, timezone, graceMs, claimTtlMs } = this.#deps;
		const now = this.#now();
		const tick = latestTick(this.#crons.get(schedule.name) as Cron, now);
		const last = await this.#lastTick(schedule.name);
		const paused = (await state.get(pausedKey(schedule.name))) === true;
		const decision = decide(schedule, tick, last, now, { timezone, graceMs, paused });
		if (decision.kind === "idle" || decision.kind === "wait" || !tick) return;
		const tickIso = tick.toISOString();
		if (!(await state.setIfAbsent(claimKey(schedule.name, tickIso), nodeId, claimTtlMs))) return;
		// Another node may have handled the tick and let its claim expire since we read `last`.
		const lastNow = await this.#lastTick(schedule.name);
		if (lastNow && lastNow.getTime() >= tick.getTime()) return;

		let firing: Firing;
		if (decision.kind === "skip") {
			firing = {
				name: schedule.name,
				tick: tickIso,
				node: nodeId,
				at: now.toISOString(),
				kind: "skip",
				reason: decision.reason,
			};
			this.#deps.logger.info(`Schedule ${schedule.name}: tick ${tickIso} skipped (${decision.reason}).`);
		} else {
			firing = await this.#fire(schedule, tickIso, "fire", decision.late);
		}
		await state.set(lastKey(schedule.name), tickIso);
		await state.set(historyKey(schedule.name), firing);
		this.#deps.broadcast(firing.kind === "skip" ? "scheduler.skipped" : "scheduler.fired", { ...firing });
	}

	async #fire(
		schedule: ScheduleConfig,
		tickIso: string,
		kind: "fire" | "manual",
		late = false,
	): Promise<Firing> {
		const { state, nodeId } = this.#deps;
		const run = (await state.incr(runKey(schedule.name))) - 1;
		const zips = batchFor(schedule.zips, schedule.batchSize, run);
		const params: Record<string, unknown> = { ...schedule.params };
		if (schedule.zips.length > 0) params.zips = zips;
		if (schedule.action === "orchestrator.collect") {
			// The job id comes from the tick, so a tick fired twice (claimer died mid-fire) is one job.
			params.jobId = `sched-${schedule.name}-${tickIso.replace(/[-:.]/g, "")}`;
			params.origin = `schedule:${schedule.name}`;
		}
		const firing: Firing = {
			name: schedule.name,
			tick: tickIso,
			node: nodeId,
			at: this.#now().toISOString(),
			kind,
			late,
			zips,
		};
		try {
			const result = (await this.#deps.call(schedule.action, params)) as
				| { job?: { id?: string } }
				| undefined;
			firing.result = result?.job?.id ? { jobId: result.job.id } : "ok";
			this.#deps.logger.info(`Schedule ${schedule.name}: tick ${tickIso} fired ${schedule.action}.`, {
				zips,
			});
		} catch (err) {
			firing.error = err instanceof Error ? err.message : String(err);
			this.#deps.logger.warn(`Schedule ${schedule.name}: ${schedule.action} failed.`, {
				error: firing.error,
			});
		}
		return firing;
	}

	async #lastTick(name: string): Promise<Date | null> {
		const iso = await this.#deps.state.get<string>(lastKey(name));
		return iso ? new Date(iso) : null;
	}

	// ---- actions ----

	async list(): Promise<ScheduleView[]> {
		const { state, timezone } = this.#deps;
		const now = this.#now();
		const out: ScheduleView[] = [];
		for (const s of this.#deps.schedules) {
			const run = Number((await state.get<number>(runKey(s.name))) ?? 0);
			out.push({
				name: s.name,
				cron: s.cron,
				action: s.action,
				enabled: s.enabled,
				paused: (await state.get(pausedKey(s.name))) === true,
				nextRun: nextTick(cronOf(s, timezone), now)?.toISOString() ?? null,
				lastTick: (await state.get<string>(lastKey(s.name))) ?? null,
				lastFiring: (await state.get<Firing>(historyKey(s.name))) ?? null,
				nextZips: batchFor(s.zips, s.batchSize, run),
			});
		}
		return out;
	}

	/** Fire a schedule now, outside its cron (its batch rotation advances as for a tick). */
	async trigger(name: string): Promise<Firing> {
		const schedule = this.#schedule(name);
		const firing = await this.#fire(schedule, this.#now().toISOString(), "manual");
		await this.#deps.state.set(historyKey(name), firing);
		this.#deps.broadcast("scheduler.fired", { ...firing });
		return firing;
	}

	async pause(name: string): Promise<ScheduleView> {
		this.#schedule(name);
		await this.#deps.state.set(pausedKey(name), true);
		return (await this.list()).find((v) => v.name === name) as ScheduleView;
	}

	async resume(name: string): Promise<ScheduleView> {
		this.#schedule(name);
		await this.#deps.state.del(pausedKey(name));
		return (await this.list()).find((v) => v.name === name) as ScheduleView;
	}
}
