/** Pure schedule logic: config checks, ticks in Phoenix time, jitter, blackout, batches, decisions. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { loadConfig } from "../../src/config/index.ts";
import {
	batchFor,
	cronOf,
	decide,
	inBlackout,
	jitterMs,
	latestTick,
	nextTick,
	parseSchedules,
	type ScheduleConfig,
} from "../../src/domain/schedule.ts";

const TZ = "America/Phoenix";
const [daily] = parseSchedules([{ name: "assessor", cron: "0 6 * * *", zips: ["85031"] }], TZ);
const opts = { timezone: TZ, graceMs: 300_000, paused: false };
const at = (iso: string) => new Date(iso);

describe("schedule configuration", () => {
	test("defaults: assessor 06:00, MLS 14:00, enrichment 20:00 Phoenix time", () => {
		const config = loadConfig({});
		const byName = Object.fromEntries(config.jobs.schedules.map((s) => [s.name, s]));
		assert.deepEqual(Object.keys(byName), ["assessor", "mls", "enrichment", "reconcile"]);
		// Phoenix is UTC-7 all year (no daylight saving).
		const from = at("2026-07-01T00:00:00Z");
		assert.equal(nextTick(cronOf(byName.assessor, TZ), from)?.toISOString(), "2026-07-01T13:00:00.000Z");
		assert.equal(nextTick(cronOf(byName.mls, TZ), from)?.toISOString(), "2026-07-01T21:00:00.000Z");
		assert.equal(nextTick(cronOf(byName.enrichment, TZ), from)?.toISOString(), "2026-07-01T03:00:00.000Z");
		// Enrichment runs as an orchestrator job (enrichment tasks only), so it is leased and retried.
		assert.equal(byName.enrichment.action, "orchestrator.collect");
		assert.deepEqual(byName.enrichment.params, { sources: [], enrich: true });
		assert.deepEqual(byName.assessor.params, { sources: ["maricopa"] });
		// Reconciliation calls the store's action directly, nightly, over the schedule's ZIPs.
		assert.equal(byName.reconcile.action, "properties.reconcile");
		assert.equal(nextTick(cronOf(byName.reconcile, TZ), from)?.toISOString(), "2026-07-01T09:00:00.000Z");
	});

	test("bad schedules stop the configuration with a named problem", () => {
		assert.throws(
			() => loadConfig({ SCHEDULES: '[{"name":"x","cron":"not a cron at all"}]' }),
			/SCHEDULES .*schedule 'x'/s,
		);
		assert.throws(
			() => loadConfig({ SCHEDULES: '[{"name":"x","cron":"0 6 * * *","zips":["123"]}]' }),
			/SCHEDULES/,
		);
		assert.throws(() => loadConfig({ SCHEDULES: "/nonexistent/schedules.json" }), /SCHEDULES/);
		assert.throws(
			() => loadConfig({ SCHEDULER_TZ: "Mars/Olympus" }),
			/SCHEDULER_TZ is not an IANA time zone/,
		);
		assert.throws(
			() =>
				parseSchedules(
					[
						{ name: "a", cron: "0 6 * * *" },
						{ name: "a", cron: "0 7 * * *" },
					],
					TZ,
				),
			/defined twice/,
		);
		assert.throws(
			() => parseSchedules([{ name: "a", cron: "0 6 * * *", blackout: ["5-5"] }], TZ),
			/blackout/,
		);
	});
});

describe("ticks", () => {
	test("latest tick at or before now, for daily and per-second patterns", () => {
		const cron = cronOf(daily, TZ);
		assert.equal(latestTick(cron, at("2026-03-15T12:59:59Z"))?.toISOString(), "2026-03-14T13:00:00.000Z");
		assert.equal(latestTick(cron, at("2026-03-15T13:00:00Z"))?.toISOString(), "2026-03-15T13:00:00.000Z");
		const [fast] = parseSchedules([{ name: "f", cron: "*/2 * * * * *" }], TZ);
		assert.equal(
			latestTick(cronOf(fast, TZ), at("2026-03-15T13:00:03.500Z"))?.toISOString(),
			"2026-03-15T13:00:02.000Z",
		);
	});

	test("jitter is stable per tick, within bounds, and differs between ticks", () => {
		const t1 = at("2026-03-15T13:00:00Z");
		const t2 = at("2026-03-16T13:00:00Z");
		assert.equal(jitterMs("a", t1, 300), jitterMs("a", t1, 300));
		assert.ok(jitterMs("a", t1, 300) <= 300_000);
		assert.notEqual(jitterMs("a", t1, 300), jitterMs("a", t2, 300));
		assert.equal(jitterMs("a", t1, 0), 0);
	});

	test("blackout hours, including ranges over midnight", () => {
		assert.equal(inBlackout(at("2026-03-15T06:30:00Z"), TZ, ["22-6"]), true); // 23:30 Phoenix
		assert.equal(inBlackout(at("2026-03-15T12:30:00Z"), TZ, ["22-6"]), true); // 05:30
		assert.equal(inBlackout(at("2026-03-15T13:00:00Z"), TZ, ["22-6"]), false); // 06:00
		assert.equal(inBlackout(at("2026-03-15T20:00:00Z"), TZ, ["13-14"]), true); // 13:00
	});

	test("ZIP batches rotate round-robin and wrap", () => {
		const zips = ["1", "2", "3", "4", "5"];
		assert.deepEqual(
			[0, 1, 2, 3].map((r) => batchFor(zips, 2, r)),
			[["1", "2"], ["3", "4"], ["5"], ["1", "2"]],
		);
		assert.deepEqual(batchFor(zips, 0, 7), zips);
	});
});

describe("decisions", () => {
	const tick = at("2026-03-15T13:00:00Z");
	const s = (over: Partial<ScheduleConfig> = {}): ScheduleConfig => ({ ...daily, ...over });

	test("on time fires; already handled is idle; jitter waits", () => {
		assert.deepEqual(decide(s(), tick, at("2026-03-14T13:00:00Z"), at("2026-03-15T13:00:01Z"), opts), {
			kind: "fire",
			late: false,
		});
		assert.deepEqual(decide(s(), tick, tick, at("2026-03-15T13:00:01Z"), opts), { kind: "idle" });
		const jittered = s({ jitterS: 600 });
		const offset = jitterMs(jittered.name, tick, 600);
		assert.equal(decide(jittered, tick, null, new Date(tick.getTime() + offset - 1), opts).kind, "wait");
		assert.equal(decide(jittered, tick, null, new Date(tick.getTime() + offset), opts).kind, "fire");
	});

	test("a missed tick runs once on return or is skipped, by policy; a fresh cluster skips old ticks", () => {
		const later = at("2026-03-15T18:00:00Z");
		const lastWeek = at("2026-03-08T13:00:00Z");
		assert.deepEqual(decide(s(), tick, lastWeek, later, opts), { kind: "fire", late: true });
		assert.deepEqual(decide(s({ missed: "skip" }), tick, lastWeek, later, opts), {
			kind: "skip",
			reason: "missed",
		});
		assert.deepEqual(decide(s(), tick, null, later, opts), { kind: "skip", reason: "missed" });
	});

	test("paused, disabled and blackout ticks are skipped", () => {
		const now = at("2026-03-15T13:00:01Z");
		assert.deepEqual(decide(s(), tick, null, now, { ...opts, paused: true }), {
			kind: "skip",
			reason: "paused",
		});
		assert.deepEqual(decide(s({ enabled: false }), tick, null, now, opts), {
			kind: "skip",
			reason: "disabled",
		});
		assert.deepEqual(decide(s({ blackout: ["5-7"] }), tick, null, now, opts), {
			kind: "skip",
			reason: "blackout",
		});
	});
});
