import { readFileSync } from "node:fs";
import type { ValidationRule } from "fastest-validator";
import { MARICOPA_COUNTY_ZIPS } from "../domain/county-zips.ts";
import { parseSchedules, type ScheduleConfig } from "../domain/schedule.ts";
import { intRule, type SettingGroup } from "./define.ts";

type RuleErrors = { type: string; message: string }[];

/** "4" (every source) or "maricopa=4,mls=2,default=3": a number per source with a fallback. */
function perSourceRule(kind: "int" | "number"): ValidationRule {
	return {
		type: "string",
		custom(value: unknown, errors: unknown[]) {
			if (typeof value !== "string") return value;
			const map: Record<string, number> = {};
			for (const part of value
				.split(",")
				.map((s) => s.trim())
				.filter(Boolean)) {
				const [name, raw] = part.includes("=") ? part.split("=", 2) : ["default", part];
				const n = Number(raw);
				if (!/^[a-z][a-z0-9-]*$/.test(name.trim()) || !(n > 0) || (kind === "int" && !Number.isInteger(n))) {
					(errors as RuleErrors).push({
						type: "perSource",
						message: `has a bad entry '${part}' (expected N or source=N with N > 0${kind === "int" ? ", whole" : ""})`,
					});
					continue;
				}
				map[name.trim()] = n;
			}
			return map;
		},
	} as ValidationRule;
}

/** A JSON array of schedules, or the path of a file holding one. */
const schedulesRule = {
	type: "string",
	custom(value: unknown, errors: unknown[]) {
		if (typeof value !== "string") return value;
		try {
			const text = value.trimStart().startsWith("[") ? value : readFileSync(value, "utf8");
			const parsed = JSON.parse(text) as unknown;
			// Shape and cron syntax are checked here so a bad schedule stops the node at start-up.
			parseSchedules(parsed, "UTC");
			return parsed;
		} catch (err) {
			(errors as RuleErrors).push({
				type: "schedules",
				message: `is not a valid JSON array of schedules or a readable file of one (${(err as Error).message})`,
			});
			return value;
		}
	},
} as ValidationRule;

/** Orchestrator (durable jobs) and scheduler (cluster-wide cron) settings. */
export const jobsSettings = {
	ORCHESTRATOR_TASK_LEASE_S: {
		rule: intRule(1, 3600),
		default: "30",
		description:
			"Lease of a running task: extended while its call runs; when its holder dies it expires and the task is dispatched again. A call no worker has claimed within this time (at least 10 s) is presumed lost in transit and dispatched again.",
	},
	ORCHESTRATOR_TASK_TIMEOUT_S: {
		rule: intRule(1, 86_400),
		default: "7200",
		description:
			"Longest one attempt at a task (a page of about 1,000 parcels, or a whole ZIP for sources that do not page) may run; past it the attempt is stopped on its worker and retried, carrying on from what it stored.",
	},
	ORCHESTRATOR_MAX_ATTEMPTS: {
		rule: intRule(1, 100),
		default: "5",
		description: "Attempts of a task before it becomes a dead letter.",
	},
	ORCHESTRATOR_BACKOFF_BASE_MS: {
		rule: intRule(0, 3_600_000),
		default: "2000",
		description: "First retry delay of a failed task; doubles per attempt (with jitter).",
	},
	ORCHESTRATOR_BACKOFF_MAX_MS: {
		rule: intRule(0, 3_600_000),
		default: "120000",
		description: "Longest retry delay of a failed task.",
	},
	ORCHESTRATOR_CONCURRENCY_PER_SOURCE: {
		rule: perSourceRule("int"),
		default: "4",
		description:
			"Tasks of one source running at once per node offering it (the cluster runs N x nodes; site budgets stay cluster-wide): N, or source=N pairs (e.g. maricopa=4,mls=2,default=3).",
	},
	COUNTY_ZIPS: {
		rule: { type: "string", pattern: /^\d{5}(\s*,\s*\d{5})*$/ },
		description:
			"ZIPs a county-wide collection (collect --county) sweeps. Unset = the 131 residential ZIPs of Maricopa County (src/domain/county-zips.ts).",
	},
	ORCHESTRATOR_SOURCE_RATES: {
		rule: perSourceRule("number"),
		description:
			"Requests per second each source's budget allows (e.g. maricopa=5,mls=0.5), for the ETA. Unset = from observed speed.",
	},
	ORCHESTRATOR_LEADER_TTL_S: {
		rule: intRule(1, 600),
		default: "10",
		description: "Leader lock expiry: another orchestrator takes over this long after the leader died.",
	},
	ORCHESTRATOR_TICK_MS: {
		rule: intRule(50, 60_000),
		default: "500",
		description: "How often the leader advances its jobs.",
	},
	ORCHESTRATOR_JOB_RETENTION_H: {
		rule: intRule(1, 24 * 365),
		default: "168",
		description: "How long a finished job and its tasks stay in the ledger.",
	},
	SCHEDULES: {
		rule: schedulesRule,
		description:
			"Schedules: a JSON array or the path of a JSON file ([{name, cron, action?, params?, zips?, batchSize?, jitterS?, blackout?, missed?, enabled?}]). Unset = assessor 06:00, MLS 14:00, enrichment 20:00.",
	},
	SCHEDULER_TZ: {
		rule: {
			type: "string",
			min: 1,
			custom(value: unknown, errors: unknown[]) {
				try {
					new Intl.DateTimeFormat("en-US", { timeZone: String(value) });
				} catch {
					(errors as RuleErrors).push({ type: "timezone", message: "is not an IANA time zone" });
				}
				return value;
			},
		} as ValidationRule,
		default: "America/Phoenix",
		description: "Time zone of the schedules' cron expressions and blackout hours.",
	},
	SCHEDULER_ZIPS: {
		rule: { type: "string", pattern: /^\d{5}(\s*,\s*\d{5})*$/ },
		default: "85031,85033,85008,85301,85379",
		description: "ZIPs of the built-in schedules.",
	},
	SCHEDULER_BATCH_SIZE: {
		rule: intRule(0, 10_000),
		default: "0",
		description: "ZIPs per run of the built-in schedules, rotated round-robin (0 = all each run).",
	},
	SCHEDULER_ROUND_MS: {
		rule: intRule(100, 60_000),
		default: "1000",
		description: "How often each scheduler node checks for due ticks.",
	},
	SCHEDULER_MISSED_GRACE_S: {
		rule: intRule(1, 86_400),
		default: "300",
		description:
			"A tick later than this (after its jitter) counts as missed and follows its schedule's policy.",
	},
} satisfies SettingGroup;

export interface JobsConfig {
	taskLeaseMs: number;
	taskTimeoutMs: number;
	maxAttempts: number;
	backoffBaseMs: number;
	backoffMaxMs: number;
	concurrency: Record<string, number>;
	countyZips: string[];
	sourceRates: Record<string, number>;
	leaderTtlMs: number;
	tickMs: number;
	retentionMs: number;
	schedules: ScheduleConfig[];
	timezone: string;
	roundMs: number;
	missedGraceMs: number;
}

/** The schedules of the original design: assessor 06:00, MLS 14:00, enrichment 20:00. */
export function defaultSchedules(zips: string[], batchSize: number): unknown[] {
	return [
		{ name: "assessor", cron: "0 6 * * *", params: { sources: ["maricopa"] }, zips, batchSize, jitterS: 300 },
		{ name: "mls", cron: "0 14 * * *", params: { sources: ["mls"] }, zips, batchSize, jitterS: 300 },
		// Through the orchestrator (an enrichment-only job), so a ZIP's enrichment is a durable task.
		{
			name: "enrichment",
			cron: "0 20 * * *",
			params: { sources: [], enrich: true },
			zips,
			batchSize,
			jitterS: 300,
		},
		// Nightly reconciliation of the store (issue 12): listings put where they belong now, per ZIP.
		{
			name: "reconcile",
			cron: "0 2 * * *",
			action: "properties.reconcile",
			params: {},
			zips,
			batchSize,
			jitterS: 300,
		},
	];
}

export function toJobsConfig(v: Record<string, unknown>): JobsConfig {
	const timezone = v.SCHEDULER_TZ as string;
	const zips = (v.SCHEDULER_ZIPS as string).split(",").map((z) => z.trim());
	const rawSchedules = v.SCHEDULES ?? defaultSchedules(zips, v.SCHEDULER_BATCH_SIZE as number);
	return {
		taskLeaseMs: (v.ORCHESTRATOR_TASK_LEASE_S as number) * 1000,
		taskTimeoutMs: (v.ORCHESTRATOR_TASK_TIMEOUT_S as number) * 1000,
		maxAttempts: v.ORCHESTRATOR_MAX_ATTEMPTS as number,
		backoffBaseMs: v.ORCHESTRATOR_BACKOFF_BASE_MS as number,
		backoffMaxMs: v.ORCHESTRATOR_BACKOFF_MAX_MS as number,
		concurrency: { default: 4, ...(v.ORCHESTRATOR_CONCURRENCY_PER_SOURCE as Record<string, number>) },
		countyZips: v.COUNTY_ZIPS
			? [...new Set((v.COUNTY_ZIPS as string).split(",").map((z) => z.trim()))]
			: [...MARICOPA_COUNTY_ZIPS],
		sourceRates: (v.ORCHESTRATOR_SOURCE_RATES as Record<string, number> | undefined) ?? {},
		leaderTtlMs: (v.ORCHESTRATOR_LEADER_TTL_S as number) * 1000,
		tickMs: v.ORCHESTRATOR_TICK_MS as number,
		retentionMs: (v.ORCHESTRATOR_JOB_RETENTION_H as number) * 3_600_000,
		schedules: parseSchedules(rawSchedules, timezone),
		timezone,
		roundMs: v.SCHEDULER_ROUND_MS as number,
		missedGraceMs: (v.SCHEDULER_MISSED_GRACE_S as number) * 1000,
	};
}
