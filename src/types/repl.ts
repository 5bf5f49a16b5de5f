/**
 * The shape of one REPL command (moleculer-repl `customCommands`). It lives at the bottom layer so
 * an area's repl.ts and src/repl/commands.ts, which gathers them, do not import each other.
 */
import type { BrokerOptions } from "moleculer";

export type ReplCommand = NonNullable<NonNullable<BrokerOptions["replOptions"]>["customCommands"]>[number];
