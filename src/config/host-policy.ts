/**
 * The politeness settings of every outside host, under one naming family: `<HOST>_RATE_PER_MIN`
 * (declared with each area) and `<HOST>_BREAKER_MIN_REQUESTS`, `_BREAKER_FAILURE_RATE`,
 * `_BREAKER_OPEN_S` declared here from defaults plus each host's own values. Units are converted
 * once, here: services get `HostBreakerConfig` in milliseconds.
 */
import type { SettingGroup } from "./define.ts";

/** The breaker of one host as src/core/host-policy.ts takes it. */
export interface HostBreakerConfig {
	/** Outcomes are judged per window of this length. */
	windowMs: number;
	/** Outcomes in the window before the failure rate is judged. */
	minRequests: number;
	/** Failure share (0..1] that opens the breaker. */
	failureRate: number;
	/** How long an open breaker waits before one trial request. */
	openMs: number;
}

export interface HostBreakerDefaults {
	minRequests: number;
	failureRate: number;
	openS: number;
}

/** The breaker every host gets unless it says otherwise. */
export const BREAKER_DEFAULTS: HostBreakerDefaults = { minRequests: 10, failureRate: 0.5, openS: 30 };

const BREAKER_WINDOW_MS = 60_000;

/** Older names still read, with a deprecation warning: `${PREFIX}_${suffix}` -> the old name. */
export type BreakerRenames = Partial<
	Record<"MIN_REQUESTS" | "FAILURE_RATE" | "OPEN_S", { name: string; convert?: (raw: string) => string }>
>;

/** `<PREFIX>_BREAKER_*` settings of one host, `overrides` over BREAKER_DEFAULTS. */
export function hostBreakerSettings(
	prefix: string,
	label: string,
	overrides: Partial<HostBreakerDefaults> = {},
	renames: BreakerRenames = {},
): SettingGroup {
	const d = { ...BREAKER_DEFAULTS, ...overrides };
	const was = (old?: { name: string }) => (old ? ` Replaces ${old.name} (still read, deprecated).` : "");
	return {
		[`${prefix}_BREAKER_MIN_REQUESTS`]: {
			rule: { type: "number", integer: true, convert: true, min: 1, max: 100_000 },
			default: String(d.minRequests),
			description: `Outcomes in a minute (cluster-wide) before the ${label} breaker judges the failure rate.${was(renames.MIN_REQUESTS)}`,
			...(renames.MIN_REQUESTS ? { replaces: renames.MIN_REQUESTS } : {}),
		},
		[`${prefix}_BREAKER_FAILURE_RATE`]: {
			rule: { type: "number", convert: true, min: 0.01, max: 1 },
			default: String(d.failureRate),
			description: `Failure share that opens the ${label} breaker for the whole cluster.${was(renames.FAILURE_RATE)}`,
			...(renames.FAILURE_RATE ? { replaces: renames.FAILURE_RATE } : {}),
		},
		[`${prefix}_BREAKER_OPEN_S`]: {
			rule: { type: "number", convert: true, min: 0.1, max: 86_400 },
			default: String(d.openS),
			description: `How long an open ${label} breaker waits before one trial request (seconds).${was(renames.OPEN_S)}`,
			...(renames.OPEN_S ? { replaces: renames.OPEN_S } : {}),
		},
	};
}

/** The validated `<PREFIX>_BREAKER_*` values as the policy takes them (ms). */
export function toHostBreaker(values: Record<string, unknown>, prefix: string): HostBreakerConfig {
	return {
		windowMs: BREAKER_WINDOW_MS,
		minRequests: values[`${prefix}_BREAKER_MIN_REQUESTS`] as number,
		failureRate: values[`${prefix}_BREAKER_FAILURE_RATE`] as number,
		openMs: Math.round((values[`${prefix}_BREAKER_OPEN_S`] as number) * 1000),
	};
}

/** ms -> s, for an old `_MS` setting. */
export const msToS = (raw: string): string => String(Number(raw) / 1000);
