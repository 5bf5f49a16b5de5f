/**
 * Errors sized for the bus. NATS refuses a message over 1 MB (MAX_PAYLOAD_EXCEEDED), and an error
 * that echoes its input (a validator's `actual`, a message quoting a parameter) can be as large as
 * that input. Guards installed by moleculer.config.ts on every node:
 *
 * - `toBusError` (src/core/errors.ts) turns a taxonomy error into the bus error of its kind, so no
 *   service translates errors itself;
 * - `boundError` cuts an error's message, stack and data to a few KB (strings, arrays, depth and the
 *   whole `data` are capped), so no answer echoes unbounded input; the middleware applies it to every
 *   error a local action throws, validation errors included.
 * - the middleware's `transitPublish` hook turns a response packet the transport refuses (too large,
 *   whatever the reason) into a small error answer, so the caller is answered at once instead of
 *   waiting for its timeout, and a publish failure never becomes an unhandled rejection (the NATS
 *   client throws synchronously, which Moleculer's response path does not catch: a process exit).
 */
import type { Context, Middleware, Service, ServiceBroker } from "moleculer";
import { toBusError } from "./errors.ts";

export const ERROR_MESSAGE_MAX = 1000;
const STRING_MAX = 200;
const ARRAY_MAX = 20;
const KEYS_MAX = 50;
const DEPTH_MAX = 6;
const DATA_JSON_MAX = 16_384;
const STACK_FRAMES_MAX = 15;

/** `text` cut to `max` characters, saying how much was cut. */
export function cutString(text: string, max: number): string {
	return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/** A copy of `value` small enough for an answer: long strings, long arrays, wide or deep objects cut. */
export function boundValue(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
	if (typeof value === "string") return cutString(value, STRING_MAX);
	if (value === null || typeof value !== "object") {
		return typeof value === "bigint" || typeof value === "function" || typeof value === "symbol"
			? String(value)
			: value;
	}
	if (value instanceof Date) return value;
	if (Buffer.isBuffer(value)) return `[${value.length} bytes]`;
	if (seen.has(value)) return "[circular]";
	if (depth >= DEPTH_MAX) return Array.isArray(value) ? "[array]" : "[object]";
	seen.add(value);
	if (Array.isArray(value)) {
		const out = value.slice(0, ARRAY_MAX).map((v) => boundValue(v, depth + 1, seen));
		if (value.length > ARRAY_MAX) out.push(`… ${value.length - ARRAY_MAX} more items`);
		return out;
	}
	const out: Record<string, unknown> = {};
	const keys = Object.keys(value);
	for (const k of keys.slice(0, KEYS_MAX)) {
		out[cutString(k, STRING_MAX)] = boundValue((value as Record<string, unknown>)[k], depth + 1, seen);
	}
	if (keys.length > KEYS_MAX) out["…"] = `${keys.length - KEYS_MAX} more keys`;
	return out;
}

function jsonLength(value: unknown): number {
	try {
		return JSON.stringify(value)?.length ?? 0;
	} catch {
		return Number.POSITIVE_INFINITY;
	}
}

type ErrorLike = Error & { data?: unknown; code?: unknown; type?: unknown };

/**
 * Cut `err` in place to a size any answer can carry (message, stack, data) and return it. Idempotent:
 * a bounded error passes unchanged.
 */
export function boundError<T>(err: T): T {
	if (!(err instanceof Error)) return err;
	const e = err as ErrorLike;
	const message = typeof e.message === "string" ? e.message : String(e.message);
	const cut = cutString(message, ERROR_MESSAGE_MAX);
	if (cut !== message) e.message = cut;
	if (typeof e.stack === "string" && (cut !== message || e.stack.length > 8_000)) {
		// V8 starts the stack with "Name: message": rebuild it on the cut message, frames capped.
		const frames = e.stack
			.split("\n")
			.filter((l) => /^\s+at /.test(l))
			.slice(0, STACK_FRAMES_MAX)
			.map((l) => cutString(l, 300));
		e.stack = [`${e.name}: ${cut}`, ...frames].join("\n");
	}
	if (e.data !== undefined && e.data !== null) {
		let data = boundValue(e.data);
		if (jsonLength(data) > DATA_JSON_MAX) data = { truncated: true, note: "error data too large to answer" };
		e.data = data;
	}
	return err;
}

interface PacketLike {
	type: string;
	target: string | null;
	payload: Record<string, unknown>;
}

/** The answer sent instead of a response the transport refused. */
export function refusedResponse(packet: PacketLike, reason: unknown, nodeID: string): PacketLike {
	const why = cutString(reason instanceof Error ? reason.message : String(reason), 200);
	const copy = Object.assign(Object.create(Object.getPrototypeOf(packet)), packet) as PacketLike;
	copy.payload = {
		id: packet.payload.id,
		meta: {},
		headers: {},
		success: false,
		data: null,
		error: {
			name: "MoleculerError",
			message: `The answer could not be sent over the message bus (${why}).`,
			nodeID,
			code: 500,
			type: "RESPONSE_NOT_SENDABLE",
			retryable: false,
			data: null,
		},
	};
	return copy;
}

type Publish = (packet: PacketLike) => Promise<unknown>;

/** `transitPublish`: a response the transport refuses is answered with a small error instead. */
function refusingPublish(next: Publish, broker: () => ServiceBroker | null): Publish {
	const publish = (packet: PacketLike): Promise<unknown> => {
		try {
			return Promise.resolve(next(packet));
		} catch (err) {
			return Promise.reject(err);
		}
	};
	return (packet: PacketLike) =>
		publish(packet).catch((err: unknown) => {
			const b = broker();
			// Only answers have a caller waiting; anything else fails as before (logged by transit).
			if (packet.type !== "RES" || packet.payload?.stream || !b) throw err;
			b.logger.warn(
				`Answer ${String(packet.payload?.id)} to '${packet.target}' could not be sent; answering with an error instead.`,
				cutString(err instanceof Error ? err.message : String(err), 300),
			);
			return publish(refusedResponse(packet, err, b.nodeID));
		});
}

export function busSafeErrorsMiddleware(): Middleware {
	let broker: ServiceBroker | null = null;
	return {
		name: "BusSafeErrors",
		created(b: ServiceBroker) {
			broker = b;
		},
		// Every action answers taxonomy errors (src/core/errors.ts) as their bus errors, cut to size.
		localAction(next, action) {
			const service = action?.service?.name;
			return function (this: Service, ctx: Context) {
				return next
					.call(this, ctx)
					.catch((err: unknown) => Promise.reject(boundError(toBusError(err, service))));
			};
		},
		// Moleculer's typings (0.15) give wrapper hooks the wrapped method's result type
		// (`ReturnType<Transit["publish"]>`); Moleculer takes the wrapper they return (middleware.js
		// wrapMethod). The one cast of this file states that, for this hook only.
		transitPublish: ((next: Publish) =>
			refusingPublish(next, () => broker)) as unknown as Middleware["transitPublish"],
	};
}
