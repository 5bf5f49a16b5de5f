/**
 * Starts moleculer-repl on a broker, with what the library does not offer itself:
 * - built-in commands Saguaro replaces (`env`, which prints every variable in clear): moleculer-repl
 *   skips a custom command named like a built-in, so these are dispatched before its evaluator;
 * - foreground work (`job <id>`'s progress bar) stops when another command is typed or on Ctrl-C.
 */
/// <reference types="moleculer-repl" />
// moleculer-repl's typings (referenced above) type `broker.repl()` as the REPL server it returns.
import type { REPLServer } from "node:repl";
import type { ServiceBroker } from "moleculer";
import type { Config } from "../config/index.ts";
import { interruptForeground } from "../utils/foreground.ts";
import { printReplError, replacedBuiltinCommands } from "./commands.ts";

type Eval = REPLServer["eval"];

export async function startRepl(broker: ServiceBroker, config: Config): Promise<REPLServer | undefined> {
	// Undefined when moleculer-repl is not installed (Moleculer logs why).
	const server: REPLServer | undefined = broker.repl();
	if (!server) return undefined;
	const replaced = new Map(replacedBuiltinCommands(config).map((c) => [c.command, c]));
	const builtinEval = server.eval;
	const evaluate: Eval = function (this: REPLServer, cmd, context, file, cb) {
		const line = cmd.trim();
		if (line !== "") interruptForeground("another command was typed");
		const own = replaced.get(line.split(/\s+/)[0] ?? "");
		if (!own) return builtinEval.call(this, cmd, context, file, cb);
		Promise.resolve()
			.then(() => own.action(broker, { options: {}, rawCommand: line }))
			.catch(printReplError)
			// One argument: the REPL then prints no "undefined" after the command's output.
			.finally(() => (cb as (err: Error | null) => void)(null));
	};
	(server as { eval: Eval }).eval = evaluate;
	server.on("SIGINT", () => {
		if (interruptForeground("Ctrl-C")) server.displayPrompt();
	});
	return server;
}
