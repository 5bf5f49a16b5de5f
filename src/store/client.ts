/**
 * The one client of the store's write path for services that collect records (maricopa, mls):
 * `properties.ingest` cut into calls that fit the bus, and `raw.ages`. Every call has its own time
 * limit, so a call lost to a transport restart fails (and its task is retried) instead of waiting
 * out the task's whole timeout.
 */
import { chunksOf } from "../utils/chunks.ts";
import {
	AGES_MAX_IDS,
	INGEST_MAX_RECORDS,
	type IngestOutcome,
	type IngestParams,
	type IngestRecord,
	type IngestResult,
	type RawAges,
	type RawAgesParams,
	type RoundTrips,
} from "./ingest.ts";

/** What the client needs of a Moleculer Context or ServiceBroker. */
export interface Caller {
	call<T, P>(action: string, params: P, opts?: { timeout?: number }): Promise<T>;
}

/** A store call's payload stays well under NATS's 1 MB cap. */
export const STORE_CALL_MAX_BYTES = 400_000;
/** A store call's own time limit. */
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
			const answer = await this.#caller.call<IngestResult, IngestParams>(
				"properties.ingest",
				{ records: chunk, force },
				{ timeout: this.#timeoutMs },
			);
			outcomes.push(...answer.outcomes);
			for (const k of ["raw", "properties", "locks", "total"] as const) roundTrips[k] += answer.roundTrips[k];
		}
		return { outcomes, roundTrips };
	}

	/** One record; a refusal (invalid, unjoinable) is thrown as a RecordRejectedError. */
	async ingestOne(record: IngestRecord, force = false): Promise<IngestOutcome> {
		const out = (await this.ingest([record], force)).outcomes[0]!;
		if (out.status === "rejected")
			throw new RecordRejectedError(record.source, record.sourceId, out.error ?? "");
		return out;
	}

	/** When each record of a raw source was stored (absent: never). */
	async ages(source: string, sourceIds: string[]): Promise<RawAges> {
		const ages: RawAges = {};
		for (const chunk of chunksOf(sourceIds, AGES_MAX_IDS, STORE_CALL_MAX_BYTES)) {
			Object.assign(
				ages,
				await this.#caller.call<RawAges, RawAgesParams>(
					"raw.ages",
					{ source, sourceIds: chunk },
					{ timeout: this.#timeoutMs },
				),
			);
		}
		return ages;
	}
}

/** The store refused a record (invalid, or an address with no key): no retry changes that. */
export class RecordRejectedError extends Error {
	readonly source: string;
	readonly sourceId: string;
	constructor(source: string, sourceId: string, reason: string) {
		super(`${source} record ${sourceId} refused by the store: ${reason}`);
		this.name = "RecordRejectedError";
		this.source = source;
		this.sourceId = sourceId;
	}
}
