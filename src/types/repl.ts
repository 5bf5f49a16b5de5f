/**
 * The shape of one REPL command (moleculer-repl `customCommands`). It lives at the bottom layer so
 * an area's repl.ts and src/repl/commands.ts, which gathers them, do not import each other.
 */
import type { BrokerOptions, ServiceBroker } from "moleculer";

/** A command as moleculer-repl takes it (src/repl/commands.ts turns ours into these). */
export type MoleculerReplCommand = NonNullable<
	NonNullable<BrokerOptions["replOptions"]>["customCommands"]
>[number];

/**
 * What moleculer-repl hands a command: its named operands (`mls <zip>` -> `args.zip`), `options`
 * and the raw line. Moleculer's typings say `string[]`, which it is not.
 */
export interface ReplArgs {
	[operand: string]: unknown;
	options?: Record<string, unknown>;
	rawCommand?: string;
}

export interface ReplCommand extends Omit<MoleculerReplCommand, "action"> {
	/** moleculer-repl's (vorpal's) own option, missing from Moleculer's typings. */
	allowUnknownOptions?: boolean;
	action(broker: ServiceBroker, args: ReplArgs, helpers?: unknown): Promise<void> | void;
}
