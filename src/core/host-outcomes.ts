/**
 * What one request to an outside host can come to, as a `HostPolicy` (src/core/host-policy.ts) sees
 * it: the caller classifies its protocol's answers into an `Attempt`, and a call that gives up ends
 * in one of the two errors below (both in the taxonomy of src/core/errors.ts).
 */
import { HostStoppedError, SaguaroError } from "./errors.ts";

export type HostOutcomeKind = "ok" | "rate-limited" | "rotate" | "transient" | "failed" | "fatal";

/** What one attempt at a request gave; the caller classifies its protocol's answers into these. */
export type Attempt<T> =
	| { kind: "ok"; value: T }
	/** 429: wait `retryAfterMs` (all nodes), then retry; not a breaker failure. */
	| { kind: "rate-limited"; retryAfterMs: number; reason: string }
	/**
	 * The site refused this proxy or session (a ban, a captcha wall, an expired session), not us:
	 * retry at once on another one. Neither a pause of the host nor a breaker failure.
	 */
	| { kind: "rotate"; reason: string }
	/** 5xx, timeouts, connection errors, malformed bodies: retry with backoff; counts for the breaker. */
	| { kind: "transient"; reason: string }
	/** A definite answer that retrying cannot change (bad request): no retry, no breaker failure. */
	| { kind: "failed"; reason: string }
	/** The host refuses us for good (revoked token): stop the whole cluster. */
	| { kind: "fatal"; reason: string };

/** Answered `<SERVICE>_STOPPED` (500): no node calls the host until it is resumed. */
export class HostFatalError extends HostStoppedError {
	readonly host: string;
	readonly reason: string;
	constructor(host: string, reason: string) {
		super(`${host}: stopped after a fatal answer: ${reason}`, {
			type: "STOPPED",
			scoped: true,
			data: { host, reason },
		});
		this.host = host;
		this.reason = reason;
	}
}

/**
 * Retries exhausted, a permanent failure, or no slot within `maxWaitMs`. A definite refusal
 * ("failed") is permanent, `<SERVICE>_REQUEST_FAILED` (422); every proxy refused ("rotate")
 * `<SERVICE>_PROXIES_REFUSED` (503, retryable); anything else transient, `<SERVICE>_UNAVAILABLE`
 * (503, retryable: later, or on another node).
 */
export class HostRequestError extends SaguaroError {
	readonly host: string;
	readonly label: string;
	readonly attempts: number;
	readonly outcome: HostOutcomeKind | "timeout";
	constructor(
		host: string,
		label: string,
		attempts: number,
		outcome: HostRequestError["outcome"],
		reason: string,
	) {
		super(
			outcome === "failed" ? "permanent" : outcome === "rotate" ? "rotate-proxy" : "transient",
			`${host} ${label}: ${reason} (after ${attempts} attempt${attempts === 1 ? "" : "s"})`,
			{
				type:
					outcome === "failed" ? "REQUEST_FAILED" : outcome === "rotate" ? "PROXIES_REFUSED" : "UNAVAILABLE",
				scoped: true,
			},
		);
		this.host = host;
		this.label = label;
		this.attempts = attempts;
		this.outcome = outcome;
	}
}
