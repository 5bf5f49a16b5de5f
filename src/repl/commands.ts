/**
 * REPL commands (moleculer-repl `customCommands`). Each area adds its commands to this list; they
 * call the same actions the REST API does, so the REPL never has a private path into a service.
 */
import type { BrokerOptions } from "moleculer";
import type { Config } from "../config/index.ts";
import { jobReplCommands } from "../jobs/repl.ts";
import { llmReplCommands } from "../llm/repl.ts";
import { mlsReplCommands } from "../mls/repl.ts";
import { storeReplCommands } from "../store/repl.ts";
import { redact } from "../utils/redact.ts";

export type ReplCommand = NonNullable<NonNullable<BrokerOptions["replOptions"]>["customCommands"]>[number];

export function createReplCommands(config: Config): ReplCommand[] {
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
				type Row = {
					id: string;
					label: string;
					state: string;
					health: { latencyMs: number | null; successRate: number } | null;
					inFlight: number;
					uses: number;
					bans: { domain: string; remainingS: number }[];
				};
				const named = (args as unknown as { domain?: unknown }).domain;
				const domain = typeof named === "string" ? named : undefined;
				const rows = (await broker.call("proxy-pool.list", domain ? { domain } : {})) as Row[];
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
		...(jobReplCommands() as ReplCommand[]),
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
	];
}
