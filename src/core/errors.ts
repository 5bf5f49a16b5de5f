/**
 * The error taxonomy: every module error extends one of these classes, which carry their retry
 * meaning across layers (as Crawlee's do), so the code that catches them needs no knowledge of
 * where they came from. One place turns them into bus errors (`toBusError`, applied to every action
 * by the BusSafeErrors middleware, src/core/bus-errors.ts), and one place reads a failure's kind back
 * on the other side of the bus (`errorKindOf`: the orchestrator's classify, the scheduler, the API).
 *
 * | kind             | meaning                                                     | bus answer             |
 * | ---------------- | ----------------------------------------------------------- | ---------------------- |
 * | `permanent`      | no retry can fix it (a refusal, a missing field)            | 422, dead letter       |
 * | `invalid`        | the caller's input is wrong                                 | 422 ValidationError    |
 * | `not-found`      | what was asked for does not exist                           | 404                    |
 * | `not-configured` | this node lacks a part (no proxy, no browser, no token)     | 424, dead letter       |
 * | `transient`      | try again later, maybe on another node                      | 503 retryable          |
 * | `upstream`       | an outside service (a site, the LLM endpoint) is failing    | 503                    |
 * | `dependency`     | a service the work needs (the store) is down: wait for it   | 503 `<DEP>_UNAVAILABLE`|
 * | `host-stopped`   | a site refused us for good; stopped cluster-wide until resumed | 500                 |
 * | `rotate-proxy`   | the site refused every proxy tried (ban, captcha): the host is fine | 503 retryable |
 */
import moleculer from "moleculer";
import { redact } from "../utils/redact.ts";

export type ErrorKind =
	| "permanent"
	| "invalid"
	| "not-found"
	| "not-configured"
	| "transient"
	| "upstream"
	| "dependency"
	| "host-stopped"
	| "rotate-proxy";

const KIND_DEFAULTS: Record<ErrorKind, { code: number; retryable: boolean }> = {
	permanent: { code: 422, retryable: false },
	invalid: { code: 422, retryable: false },
	"not-found": { code: 404, retryable: false },
	"not-configured": { code: 424, retryable: false },
	transient: { code: 503, retryable: true },
	upstream: { code: 503, retryable: true },
	dependency: { code: 503, retryable: true },
	"host-stopped": { code: 500, retryable: false },
	"rotate-proxy": { code: 503, retryable: true },
};

export interface SaguaroErrorOptions {
	/** The bus error's type (e.g. "NOT_FOUND"); with `scoped`, prefixed by the answering service. */
	type: string;
	/** `<SERVICE>_<type>` (MARICOPA_STOPPED, MLS_UNAVAILABLE): the same error means one site per service. */
	scoped?: boolean;
	code?: number;
	retryable?: boolean;
	data?: Record<string, unknown>;
}

export class SaguaroError extends Error {
	readonly kind: ErrorKind;
	readonly type: string;
	readonly scoped: boolean;
	readonly code: number;
	readonly retryable: boolean;
	readonly data: Record<string, unknown> | undefined;
	constructor(kind: ErrorKind, message: string, opts: SaguaroErrorOptions) {
		super(message);
		this.name = new.target.name;
		this.kind = kind;
		this.type = opts.type;
		this.scoped = opts.scoped ?? false;
		this.code = opts.code ?? KIND_DEFAULTS[kind].code;
		this.retryable = opts.retryable ?? KIND_DEFAULTS[kind].retryable;
		this.data = opts.data;
	}
}

/** No retry can fix it: the task is a dead letter at once, with this message. */
export class PermanentError extends SaguaroError {
	constructor(message: string, opts: SaguaroErrorOptions) {
		super("permanent", message, opts);
	}
}

/** The caller's input is wrong (answered as a ValidationError). */
export class InvalidInputError extends SaguaroError {
	constructor(message: string, opts: SaguaroErrorOptions) {
		super("invalid", message, opts);
	}
}

/** What was asked for does not exist (a 404 everywhere: a job, a schedule, a property). */
export class NotFoundError extends SaguaroError {
	constructor(message: string, opts: SaguaroErrorOptions = { type: "NOT_FOUND" }) {
		super("not-found", message, opts);
	}
}

/** Try again later, maybe on another node. */
export class TransientError extends SaguaroError {
	constructor(message: string, opts: SaguaroErrorOptions) {
		super("transient", message, opts);
	}
}

/** An outside service (a site, the LLM endpoint) is failing or unreachable. */
export class UpstreamError extends SaguaroError {
	constructor(message: string, opts: SaguaroErrorOptions) {
		super("upstream", message, opts);
	}
}

/** A site refused us for good (a revoked token): its work stops cluster-wide until resumed. */
export class HostStoppedError extends SaguaroError {
	constructor(message: string, opts: SaguaroErrorOptions) {
		super("host-stopped", message, opts);
	}
}

/**
 * Something a task depends on (the store) cannot be reached. The task stops at once — going on
 * record by record would only fail each record — and is retried later, without using up an attempt
 * (the orchestrator waits for the dependency with a growing backoff).
 */
export class DependencyUnavailableError extends SaguaroError {
	readonly dependency: string;
	constructor(dependency: string, message: string, data: Record<string, unknown> = {}) {
		super("dependency", `${dependency} unavailable: ${message}`, {
			type: `${dependency.toUpperCase()}_UNAVAILABLE`,
			data: { ...data, dependency },
		});
		this.dependency = dependency;
	}
}

/**
 * Something this node needs is not set up (no proxy, no browser, no token): no retry can fix it, so
 * it is a permanent failure that names what to set — never retried, never a host breaker failure.
 * `what` names the missing part ("proxy", "browser", ...).
 */
export class NotConfiguredError extends SaguaroError {
	readonly what: string;
	constructor(what: string, message: string) {
		super("not-configured", message, { type: `${what.toUpperCase()}_NOT_CONFIGURED`, data: { what } });
		this.what = what;
	}
}

/** "proxy-pool" -> "PROXY_POOL": the prefix of a scoped error's type. */
function scopeOf(service: string): string {
	return service.toUpperCase().replace(/[^A-Z0-9]+/g, "_");
}

/**
 * The Moleculer error an action answers for `err`: a SaguaroError becomes the bus error of its kind
 * (message and data redacted, `data.kind` set so callers read the kind back with `errorKindOf`);
 * anything else passes unchanged. `service` scopes the type of scoped errors (MARICOPA_STOPPED).
 */
export function toBusError(err: unknown, service?: string): unknown {
	if (!(err instanceof SaguaroError)) return err;
	const { Errors } = moleculer;
	const message = redact(err.message);
	const type = err.scoped && service ? `${scopeOf(service)}_${err.type}` : err.type;
	const data = { ...(err.data ? redact(err.data) : {}), kind: err.kind };
	if (err.kind === "invalid") return new Errors.ValidationError(message, type, data);
	if (err.code >= 400 && err.code < 500)
		return new Errors.MoleculerClientError(message, err.code, type, data);
	if (err.retryable) return new Errors.MoleculerRetryableError(message, err.code, type, data);
	return new Errors.MoleculerError(message, err.code, type, data);
}

const KINDS = new Set<string>(Object.keys(KIND_DEFAULTS));
/** Broker errors that mean the serving node is gone: not the work's fault. */
const NODE_GONE = ["RequestRejectedError", "ServiceNotAvailableError", "ServiceNotFoundError"];

/**
 * The kind of a failure on either side of the bus: a SaguaroError's own, the `data.kind` of its bus
 * answer, or — for the broker's own errors — what its name, code and type say. Null: no telling
 * (an unexpected error), which callers treat as "retry with backoff".
 */
export function errorKindOf(err: unknown): ErrorKind | null {
	if (err instanceof SaguaroError) return err.kind;
	if (err === null || typeof err !== "object") return null;
	const e = err as { name?: unknown; code?: unknown; type?: unknown; retryable?: unknown; data?: unknown };
	const kind = (e.data as { kind?: unknown } | null | undefined)?.kind;
	if (typeof kind === "string" && KINDS.has(kind)) return kind as ErrorKind;
	const type = typeof e.type === "string" ? e.type : "";
	if (type === "STORE_UNAVAILABLE") return "dependency";
	if (type.endsWith("_NOT_CONFIGURED")) return "not-configured";
	if (NODE_GONE.includes(String(e.name))) return "transient";
	if (e.name === "ValidationError") return "invalid";
	const code = typeof e.code === "number" ? e.code : 500;
	if (code === 404) return "not-found";
	if (code >= 400 && code < 500 && code !== 408 && code !== 429) return "permanent";
	if (e.retryable === true) return "transient";
	return null;
}

/** Kinds no retry can fix: a task failing so is a dead letter at once. */
export const PERMANENT_KINDS: ReadonlySet<ErrorKind> = new Set([
	"permanent",
	"invalid",
	"not-found",
	"not-configured",
]);

/** A `<WHAT>_NOT_CONFIGURED` answer from another service as a NotConfiguredError again, else null. */
export function notConfiguredOf(err: unknown): NotConfiguredError | null {
	if (err instanceof NotConfiguredError) return err;
	const e = err as { type?: unknown; message?: unknown; data?: { what?: unknown } } | null;
	if (typeof e?.type !== "string" || !e.type.endsWith("_NOT_CONFIGURED")) return null;
	const what = typeof e.data?.what === "string" ? e.data.what : e.type.slice(0, -15).toLowerCase();
	return new NotConfiguredError(what, String(e.message));
}
