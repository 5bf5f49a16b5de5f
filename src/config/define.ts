/**
 * Environment settings are declared once, with their rule, default and description, and validated
 * together at start-up by fastest-validator (the validator Moleculer uses for action params), so a
 * bad value stops the node with a message naming the variable. README's configuration table and the
 * deployment files are checked against these declarations by the test suite.
 */
import type { ValidationRule } from "fastest-validator";
import { registerSecret, registerSecretKey } from "../utils/redact.ts";
import { Validator } from "../utils/validator.ts";

export interface Setting {
	/** fastest-validator rule applied to the raw string (use `convert: true` for numbers/booleans). */
	rule: ValidationRule;
	/** Default as it would be written in the environment; absent = optional with no default. */
	default?: string;
	description: string;
	/** Secret values are registered for redaction and never printed. */
	secret?: boolean;
	/**
	 * An older name of this setting, still read (with a deprecation warning) when this one is unset;
	 * `convert` turns its value into this setting's unit (e.g. ms to s).
	 */
	replaces?: { name: string; convert?: (raw: string) => string };
}

/** Warned once per process and old name. */
const warned = new Set<string>();

/** The raw value of `name`, or of the older name it replaces (warning that it is deprecated). */
function rawValue(name: string, setting: Setting, env: NodeJS.ProcessEnv): string | undefined {
	const raw = env[name];
	if (raw !== undefined && raw.trim() !== "") return raw;
	const old = setting.replaces;
	const oldRaw = old ? env[old.name] : undefined;
	if (!old || oldRaw === undefined || oldRaw.trim() === "") return raw;
	if (!warned.has(old.name)) {
		warned.add(old.name);
		process.emitWarning(
			`${old.name} is deprecated: set ${name} instead${old.convert ? ` (note the unit: ${old.name}=${oldRaw.trim()} is ${name}=${old.convert(oldRaw.trim())})` : ""}.`,
			"DeprecationWarning",
		);
	}
	return old.convert ? old.convert(oldRaw.trim()) : oldRaw;
}

export type SettingGroup = Record<string, Setting>;

export class ConfigError extends Error {
	readonly problems: string[];
	constructor(problems: string[]) {
		super(`Invalid configuration:\n  - ${problems.join("\n  - ")}`);
		this.name = "ConfigError";
		this.problems = problems;
	}
}

const validator = new Validator({ useNewCustomCheckerFunction: true });

/** A URL rule restricted to some schemes, e.g. urlRule(["redis", "rediss"]). */
export function urlRule(schemes: string[], extra: Record<string, unknown> = {}): ValidationRule {
	return {
		type: "string",
		...extra,
		custom(value: unknown, errors: unknown[]) {
			if (typeof value !== "string" || value === "") return value;
			let parsed: URL;
			try {
				parsed = new URL(value);
			} catch {
				(errors as { type: string; message: string }[]).push({
					type: "url",
					message: "is not a valid URL",
				});
				return value;
			}
			const scheme = parsed.protocol.replace(/:$/, "");
			if (!schemes.includes(scheme)) {
				(errors as { type: string; message: string }[]).push({
					type: "urlScheme",
					message: `has unsupported scheme '${scheme}:' (expected ${schemes.map((s) => `${s}:`).join(", ")})`,
				});
			}
			return value;
		},
	} as ValidationRule;
}

/** A comma-separated list whose items must be among `known` (empty items dropped). */
export function listRule(
	known: readonly string[] | null,
	extra: Record<string, unknown> = {},
): ValidationRule {
	return {
		type: "string",
		...extra,
		custom(value: unknown, errors: unknown[]) {
			if (typeof value !== "string") return value;
			const items = value
				.split(",")
				.map((s) => s.trim())
				.filter(Boolean);
			if (known) {
				const unknown = items.filter((i) => !known.includes(i));
				if (unknown.length > 0) {
					(errors as { type: string; message: string }[]).push({
						type: "listItem",
						message: `names unknown value(s) ${unknown.map((u) => `'${u}'`).join(", ")} (known: ${known.join(", ")})`,
					});
				}
			}
			return items;
		},
	} as ValidationRule;
}

export const intRule = (min: number, max: number): ValidationRule => ({
	type: "number",
	integer: true,
	convert: true,
	min,
	max,
});

export const boolRule: ValidationRule = { type: "boolean", convert: true };

/**
 * Validate `env` against every group at once and return the converted values by variable name.
 * Empty strings count as unset, so `FOO=` falls back to the default.
 */
export function validateEnv(groups: SettingGroup[], env: NodeJS.ProcessEnv): Record<string, unknown> {
	const schema: Record<string, ValidationRule> = {};
	const input: Record<string, unknown> = {};
	for (const group of groups) {
		for (const [name, setting] of Object.entries(group)) {
			const raw = rawValue(name, setting, env);
			const value = raw === undefined || raw.trim() === "" ? setting.default : raw.trim();
			const rule = typeof setting.rule === "string" ? { type: setting.rule } : setting.rule;
			schema[name] = { ...(rule as object), optional: setting.default === undefined } as ValidationRule;
			if (value !== undefined) input[name] = value;
			if (setting.secret) registerSecretKey(name);
			if (setting.secret && value) registerSecret(value);
		}
	}
	const check = validator.compile(schema);
	const result = check(input);
	if (result !== true) {
		type Problem = { field: string; message?: string; type: string; actual?: unknown; expected?: unknown };
		const problems = (result as Problem[]).map((e) => {
			const message =
				e.type === "enumValue"
					? `${e.field} must be one of: ${String(e.expected)}`
					: e.message?.startsWith("The '")
						? e.message
						: `${e.field} ${e.message ?? e.type}`;
			const shown = isSecret(groups, e.field) ? "" : ` (got '${String(e.actual ?? input[e.field])}')`;
			return `${message}${shown}`;
		});
		throw new ConfigError(problems);
	}
	// A list-valued secret (API_TOKENS, PROXIES) is converted to its items: each item is a secret of
	// its own, printed alone wherever the list is shown (the REPL's `config`, an API answer).
	for (const group of groups) {
		for (const [name, setting] of Object.entries(group)) {
			const value = input[name];
			if (setting.secret && Array.isArray(value)) {
				for (const item of value) if (typeof item === "string") registerSecret(item);
			}
		}
	}
	return input;
}

function isSecret(groups: SettingGroup[], name: string): boolean {
	return groups.some((g) => g[name]?.secret);
}
