/**
 * REPL commands (moleculer-repl `customCommands`). Each area adds its commands to this list; they
 * call the same actions the REST API does, so the REPL never has a private path into a service.
 */
import type { Config } from "../config/index.ts";
import { callProxyPool } from "../contracts/proxy-pool.ts";
import { jobReplCommands } from "../jobs/repl.ts";
import { llmReplCommands } from "../llm/repl.ts";
import { mlsReplCommands } from "../mls/repl.ts";
import { photosReplCommands } from "../photos/repl.ts";
import { storeReplCommands } from "../store/repl.ts";
import type { MoleculerReplCommand, ReplArgs, ReplCommand } from "../types/repl.ts";
import { redact } from "../utils/redact.ts";

export type { ReplCommand };

/** A field of something thrown or answered, when it is an object that has it. */
function fieldOf(value: unknown, name: string): unknown {
	return typeof value === "object" && value !== null && name in value ? Reflect.get(value, name) : undefined;
}

/**
 * What a failed command prints: one line (the reasons, not a stack), as every command does. A
 * validation error lists its fields' messages; a plan error its problems.
 */
export function replErrorLine(err: unknown): string {
	const message = fieldOf(err, "message");
	const data = fieldOf(err, "data");
	let reasons: string[] = [];
	if (Array.isArray(data)) {
		reasons = data
			.map((d: unknown) => {
				const m = fieldOf(d, "message");
				return typeof m === "string" ? m : "";
			})
			.filter(Boolean);
	} else {
		const problems = fieldOf(data, "problems");
		if (Array.isArray(problems)) reasons = problems.map(String);
	}
	const text = reasons.length > 0 ? reasons.join("; ") : typeof message === "string" ? message : String(err);
	return `Error: ${redact(text).replace(/\s*\n\s*/g, " ")}`;
}

export function printReplError(err: unknown): void {
	console.error(replErrorLine(err));
}

/**
 * What moleculer-repl hands a command. Its typings call the args `string[]`; they are an object of
 * the named operands and options (ReplArgs), which this checks.
 */
function isReplArgs(args: unknown): args is ReplArgs {
	if (typeof args !== "object" || args === null || Array.isArray(args)) return false;
	const options = fieldOf(args, "options");
	return options === undefined || (typeof options === "object" && options !== null);
}

/**
 * Every command answers a failure with one line (moleculer-repl would log the error's stack). The
 * one place a command meets moleculer-repl's typings.
 */
function oneLineErrors(command: ReplCommand): MoleculerReplCommand {
	const { action, ...rest } = command;
	return {
		...rest,
		async action(broker, args, helpers) {
			const given: unknown = args;
			try {
				if (!isReplArgs(given)) throw new Error(`'${command.command}' was given no arguments object`);
				await action(broker, given, helpers);
			} catch (err) {
				printReplError(err);
			}
		},
	};
}

/**
 * Built-in moleculer-repl commands Saguaro replaces (src/repl/session.ts dispatches them first, and
 * prints their failures in one line): `env` prints the environment with every secret redacted (the
 * built-in prints it in clear).
 */
export function replacedBuiltinCommands(_config: Config): ReplCommand[] {
	return [
		{
			command: "env",
			description: "Environment variables of this process (secrets redacted)",
			action() {
				const env = redact({ ...process.env });
				for (const name of Object.keys(env).sort()) console.log(`${name}=${env[name] ?? ""}`);
			},
		},
	];
}

export function createReplCommands(config: Config): MoleculerReplCommand[] {
	return allReplCommands(config).map(oneLineErrors);
}

function allReplCommands(config: Config): ReplCommand[] {
	return [
		{
			command: "config",
			description: "Show this node's effective configuration (secrets redacted)",
			action() {
				console.log(JSON.stringify(redact(config), null, 2));
			},
		},
		{
			command: "proxies [domain]",
			description: "Upstream proxies: state, latency, leases in flight, bans (for one site with [domain])",
			async action(broker, args) {
				const named = args.domain;
				const domain = typeof named === "string" ? named : undefined;
				const rows = await callProxyPool(broker, "proxy-pool.list", domain ? { domain } : {});
				console.table(
					rows.map((r) => ({
						id: r.id,
						proxy: r.label,
						state: r.state,
						latencyMs: r.health?.latencyMs == null ? "-" : Math.round(r.health.latencyMs),
						success: r.health ? `${Math.round(r.health.successRate * 100)}%` : "-",
						inFlight: r.inFlight,
						uses: r.uses,
						bans: r.bans.map((b) => `${b.domain} (${b.remainingS}s)`).join(", "),
					})),
				);
				console.log(await broker.call("proxy-pool.stats"));
			},
		},
		...jobReplCommands(),
		{
			command: "held",
			description: "Endpoints held open on this node because a peer's breaker opened them",
			async action(broker) {
				console.log(await broker.call("$cluster-breaker.held"));
			},
		},
		...storeReplCommands(),
		...mlsReplCommands(),
		...llmReplCommands(),
		...photosReplCommands(),
	];
}
