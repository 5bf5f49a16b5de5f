/**
 * REPL commands of the store: `property <apn|key>` (the canonical property, its sources and
 * history) and `store` (counts and rejections). They call the same actions as the API.
 */
import type { ReplCommand } from "../types/repl.ts";

export function storeReplCommands(): ReplCommand[] {
	return [
		{
			command: "property <key>",
			description:
				"Canonical property by APN (any form: 103-06-005, 10306005) or key, with sources and history",
			async action(broker, args) {
				const key = String(args.key);
				const prop =
					(await broker.call("properties.byApn", { apn: key, history: true }).catch(() => null)) ??
					(await broker.call("properties.get", { key, history: true }));
				if (!prop) {
					console.log(`No property ${key}`);
					return;
				}
				console.log(JSON.stringify(prop, null, 2));
			},
		},
		{
			command: "store",
			description: "Store counts (properties, raw records) and rejected records by reason",
			async action(broker) {
				console.log(await broker.call("properties.stats"));
			},
		},
	];
}
