/**
 * REPL commands (moleculer-repl `customCommands`). Each area adds its commands to this list; they
 * call the same actions the REST API does, so the REPL never has a private path into a service.
 */
import type { BrokerOptions } from "moleculer";
import type { Config } from "../config/index.ts";
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
			command: "held",
			description: "Endpoints held open on this node because a peer's breaker opened them",
			async action(broker) {
				console.log(await broker.call("$cluster-breaker.held"));
			},
		},
	];
}
