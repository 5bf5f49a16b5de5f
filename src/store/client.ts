/**
 * The one client of the store's write path for services that collect records (maricopa, mls):
 * `properties.ingest` cut into calls that fit the bus, and `raw.ages`. Every call has its own time
 * limit, so a call lost to a transport restart fails (and its task is retried) instead of waiting
 * out the task's whole timeout. A store that cannot be reached is a DependencyUnavailableError: the
 * task stops and waits for the store, rather than failing record after record.
 */
import {
	AGES_MAX_IDS,
	INGEST_MAX_RECORDS,
	type IngestOutcome,
	type IngestParams,
	type IngestRecord,
	type IngestResult,
	type MergeVerdict,
	type RawAges,
	type RawAgesParams,
	type RoundTrips,
} from "../contracts/store.ts";
import { DependencyUnavailableError, PermanentError } from "../core/errors.ts";
import { chunksOf } from "../utils/chunks.ts";

/** What the client needs of a Moleculer Context or ServiceBroker. */
export interface Caller {
	call<T, P>(action: string, params: P, opts?: { timeout?: number; retries?: number }): Promise<T>;
}

/** A store call's payload stays well under NATS's 1 MB cap. */
export const STORE_CALL_MAX_BYTES = 400_000;
/** A store call's own time limit, unless the caller gives one (STORE_CALL_TIMEOUT_S). */
export const STORE_CALL_TIMEOUT_MS = 60_000;

export class StoreClient {
	readonly #caller: Caller;
	readonly #timeoutMs: number;

	constructor(caller: Caller, timeoutMs = STORE_CALL_TIMEOUT_MS) {
		this.#caller = caller;
		this.#timeoutMs = timeoutMs;
	}

	/** Store records (raw payload + merge), in input order; see IngestParams for `force`. */
	async ingest(records: IngestRecord[], force = false): Promise<IngestResult> {
		const outcomes: IngestOutcome[] = [];
		const roundTrips: RoundTrips = { raw: 0, properties: 0, locks: 0, total: 0 };
		for (const chunk of chunksOf(records, INGEST_MAX_RECORDS, STORE_CALL_MAX_BYTES)) {
			const answer = await this.#call<IngestResult, IngestParams>("properties.ingest", {
				records: chunk,
				force,
			});
			outcomes.push(...answer.outcomes);
			for (const k of ["raw", "properties", "locks", "total"] as const) roundTrips[k] += answer.roundTrips[k];
		}
		return { outcomes, roundTrips };
	}

	async #call<T, P>(action: string, params: P): Promise<T> {
		try {
			// No broker retries: a store that timed out is busy, and a retry beside the call it still
			// works on only adds load. The task waits for the store and runs again (dependency backoff).
			return await this.#caller.call<T, P>(action, params, { timeout: this.#timeoutMs, retries: 0 });
		} catch (err) {
			if (storeUnreachable(err)) throw new DependencyUnavailableError("store", (err as Error).message);
			throw err;
		}
	}

	/** One record; a refusal (invalid, unjoinable) is thrown as a RecordRejectedError. */
	async ingestOne(record: IngestRecord, force = false): Promise<IngestOutcome & { status: MergeVerdict }> {
		const out = (await this.ingest([record], force)).outcomes[0]!;
		if (out.status === "rejected")
			throw new RecordRejectedError(record.source, record.sourceId, out.error ?? "");
		return { ...out, status: out.status };
	}

	/** When each record of a raw source was stored (absent: never). */
	async ages(source: string, sourceIds: string[]): Promise<RawAges> {
		const ages: RawAges = {};
		for (const chunk of chunksOf(sourceIds, AGES_MAX_IDS, STORE_CALL_MAX_BYTES)) {
			Object.assign(ages, await this.#call<RawAges, RawAgesParams>("raw.ages", { source, sourceIds: chunk }));
		}
		return ages;
	}
}

/**
 * Broker errors that say the store is not there (no node offers the action, the node left or went
 * silent, a transport restart lost the call) and the store's own "database unreachable" answers.
 */
const UNAVAILABLE_NAMES = [
	"ServiceNotAvailableError",
	"ServiceNotFoundError",
	"RequestRejectedError",
	"RequestTimeoutError",
];
const UNAVAILABLE_TYPES = ["STORE_UNAVAILABLE", "STORE_NOT_READY"];

export function storeUnreachable(err: unknown): boolean {
	if (typeof err !== "object" || err === null) return false;
	const name = "name" in err && typeof err.name === "string" ? err.name : "";
	const type = "type" in err && typeof err.type === "string" ? err.type : "";
	return UNAVAILABLE_NAMES.includes(name) || UNAVAILABLE_TYPES.includes(type);
}

/** The store refused a record (invalid, or an address with no key): no retry changes that. */
export class RecordRejectedError extends PermanentError {
	readonly source: string;
	readonly sourceId: string;
	constructor(source: string, sourceId: string, reason: string) {
		super(`${source} record ${sourceId} refused by the store: ${reason}`, {
			type: "REJECTED",
			data: { source, sourceId },
		});
		this.source = source;
		this.sourceId = sourceId;
	}
}
