/**
 * Client of the Assessor REST API (contract: shared/contracts/maricopa-api.md), every request paced
 * and retried by the host's cluster-wide HostPolicy.
 *
 * Answers that matter: the "Unauthorized" answer is HTTP 500 with the reason phrase
 * `[search]:Unauthorized access! ...` (fatal for the whole cluster, never retried); a missing parcel
 * is 404 with an empty body (not found, not an error); an unknown path is 200 with an HTML page
 * (a failure, never parsed); malformed or truncated JSON is a transient failure of that call.
 */
import { NotConfiguredError } from "../core/errors.ts";
import type { HostPolicy } from "../core/host-policy.ts";
import {
	type Classified,
	classifiedExchange,
	classifyStatus,
	type HttpAnswer,
	httpExchange,
	isJsonType,
	parseJsonBody,
	type RequestOutcome,
} from "../core/http.ts";
import type { AssessorParcelRecord } from "../domain/records.ts";
import type { RequestKind, RequestTally } from "./http.ts";
import {
	parseAddressResource,
	parseParcelDetail,
	parseSearchPage,
	type SearchPage,
	UpstreamShapeError,
} from "./normalize.ts";

/** Results per page of `/search/property/` (fixed by the API). */
export const SEARCH_PAGE_SIZE = 25;

export const PARCEL_SUB_RESOURCES = [
	"propertyinfo",
	"address",
	"valuations",
	"residential-details",
	"owner-details",
] as const;
export type ParcelSubResource = (typeof PARCEL_SUB_RESOURCES)[number];

/** No Assessor token on this node (MARICOPA_TOKEN): no retry fixes that. */
export class MaricopaConfigError extends NotConfiguredError {
	constructor(message: string) {
		super("maricopa", message);
	}
}

export interface ApiClientOptions {
	baseUrl: string;
	token: string | null;
	timeoutMs: number;
	policy: HostPolicy;
	/** Called once per HTTP request with its outcome (metrics). */
	onRequest?: (endpoint: string, outcome: RequestOutcome) => void;
}

export interface ParcelDetail {
	record: AssessorParcelRecord;
	/** The document as received (the raw record). */
	raw: unknown;
}

/** True for the Assessor's "Unauthorized" answer (HTTP 500 + reason phrase, not 401). */
export function isUnauthorizedAnswer(a: HttpAnswer): boolean {
	return (a.status === 500 || a.status === 401 || a.status === 403) && /unauthori[sz]ed/i.test(a.statusText);
}

/**
 * Classify one REST answer. `notFoundIsAnswer`: a 404 is the definite "no such parcel" (value null).
 * Exported for unit tests; the parse callback may throw UpstreamShapeError.
 */
export function classifyApiAnswer<T>(
	a: HttpAnswer,
	notFoundIsAnswer: boolean,
	parse: (json: unknown) => T,
): Classified<T | null> {
	if (isUnauthorizedAnswer(a)) {
		return {
			outcome: "unauthorized",
			attempt: {
				kind: "fatal",
				reason: `Assessor API refused the token: HTTP ${a.status} '${a.statusText}' (set a valid MARICOPA_TOKEN)`,
			},
		};
	}
	if (a.status === 404 && notFoundIsAnswer)
		return { outcome: "not_found", attempt: { kind: "ok", value: null } };
	const byStatus = classifyStatus(a);
	if (byStatus) return byStatus;
	if (!isJsonType(a.contentType)) {
		return {
			outcome: "html",
			attempt: {
				kind: "failed",
				reason: `expected JSON, got '${a.contentType || "no content type"}' (${a.body.length} bytes)`,
			},
		};
	}
	const json = parseJsonBody(a);
	if (!json.ok) return { outcome: "malformed", attempt: { kind: "transient", reason: json.reason } };
	try {
		return { outcome: "ok", attempt: { kind: "ok", value: parse(json.value) } };
	} catch (err) {
		if (err instanceof UpstreamShapeError) {
			return { outcome: "bad_shape", attempt: { kind: "failed", reason: err.message } };
		}
		throw err;
	}
}

export class MaricopaApiClient {
	readonly #opts: ApiClientOptions;

	constructor(opts: ApiClientOptions) {
		this.#opts = opts;
	}

	get policy(): HostPolicy {
		return this.#opts.policy;
	}

	/** One page (1-based) of `/search/property/?q=`: a ZIP gives the parcels of that ZIP. */
	async searchPage(q: string, page: number, tally?: RequestTally, signal?: AbortSignal): Promise<SearchPage> {
		const url = `${this.#opts.baseUrl}/search/property/?q=${encodeURIComponent(q)}&page=${page}`;
		const result = await this.#get("search", "bulk", url, false, parseSearchPage, tally, signal);
		// 404 is not an answer for search: classifyApiAnswer never returns null here.
		return result as SearchPage;
	}

	/** `GET /parcel/{apn}`; null when the Assessor has no such parcel. */
	async parcel(apn: string, tally?: RequestTally, signal?: AbortSignal): Promise<ParcelDetail | null> {
		const url = `${this.#opts.baseUrl}/parcel/${encodeURIComponent(apn)}`;
		return this.#get(
			"parcel",
			"detail",
			url,
			true,
			(json) => ({ record: parseParcelDetail(apn, json), raw: json }),
			tally,
			signal,
		);
	}

	/** The structured address of a parcel (`/parcel/{apn}/address`); null for a missing parcel. */
	async parcelAddress(
		apn: string,
		tally?: RequestTally,
		signal?: AbortSignal,
	): Promise<AssessorParcelRecord["address"]> {
		const url = `${this.#opts.baseUrl}/parcel/${encodeURIComponent(apn)}/address`;
		return this.#get("parcel/address", "detail", url, true, parseAddressResource, tally, signal);
	}

	async #get<T>(
		endpoint: string,
		kind: RequestKind,
		url: string,
		notFoundIsAnswer: boolean,
		parse: (json: unknown) => T,
		tally: RequestTally | undefined,
		signal: AbortSignal | undefined,
	): Promise<T | null> {
		const { token, timeoutMs, policy, onRequest } = this.#opts;
		if (!token) throw new MaricopaConfigError("MARICOPA_TOKEN is not set: the Assessor API needs a token");
		return policy.run(
			endpoint,
			async () => {
				if (tally) tally[kind]++;
				const c = await classifiedExchange(
					() => httpExchange(url, { headers: { AUTHORIZATION: token } }, timeoutMs, signal),
					(a) => classifyApiAnswer(a, notFoundIsAnswer, parse),
					signal,
				);
				onRequest?.(endpoint, c.outcome);
				return c.attempt;
			},
			signal,
		);
	}
}
