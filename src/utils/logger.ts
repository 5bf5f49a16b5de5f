import moleculer from "moleculer";
import type { LoggerOptions } from "pino";
import { redact } from "./redact.ts";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace";
export type LogFormat = "json" | "pretty";

/**
 * pino options for Moleculer's Pino logger. Moleculer calls `logger.info("message", obj, ...)`;
 * pino would drop the trailing objects, so the hook folds them into the merging object, and every
 * argument passes through `redact` so tokens, keys and proxy passwords never reach the output.
 */
export function pinoOptions(level: LogLevel): LoggerOptions {
	return {
		level,
		base: undefined,
		timestamp: () => `,"time":"${new Date().toISOString()}"`,
		hooks: {
			logMethod(args, method) {
				const clean = args.map((a) => redact(a));
				if (typeof clean[0] === "string" && clean.length > 1) {
					const [msg, ...rest] = clean;
					const merged: Record<string, unknown> = {};
					for (const r of rest) {
						if (r instanceof Error) merged.err = r;
						else if (r !== null && typeof r === "object") Object.assign(merged, r);
						else merged.extra = [...((merged.extra as unknown[]) ?? []), r];
					}
					return method.call(this, merged, msg as string);
				}
				return method.apply(this, clean as Parameters<typeof method>);
			},
		},
	};
}

/** Human-readable console output for development, with the same redaction as the JSON logs. */
class RedactingConsoleLogger extends moleculer.Loggers.Console {
	getLogHandler(bindings: Parameters<moleculer.Loggers.Console["getLogHandler"]>[0]) {
		const handler = super.getLogHandler(bindings);
		if (!handler) return handler;
		return (type: moleculer.LogLevels, args: unknown[]) =>
			handler(
				type,
				args.map((a) => redact(a)),
			);
	}
}

/** Moleculer `logger` broker option: JSON lines through pino (default) or pretty console. */
export function moleculerLogger(level: LogLevel, format: LogFormat) {
	if (format === "pretty") {
		return new RedactingConsoleLogger({ level, formatter: "short", colors: Boolean(process.stdout.isTTY) });
	}
	return { type: "Pino", options: { level, pino: { options: pinoOptions(level) } } };
}
