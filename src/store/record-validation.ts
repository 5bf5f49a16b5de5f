/**
 * What the store refuses before it writes anything: a record that does not fit its source's schema,
 * an ingest envelope that is malformed, a raw payload that is empty or too large.
 */
import {
	assessorParcelSchema,
	mlsListingSchema,
	PROPERTY_SOURCES,
	type PropertySource,
} from "../domain/records.ts";
import { Validator } from "../utils/validator.ts";
import { isoTime, rawSource } from "./action-params.ts";

const validator = new Validator({ useNewCustomCheckerFunction: true });
export type Check = (value: unknown) => true | { message?: string; field?: string }[] | Promise<unknown>;

/** Each source's record schema. The validator strips unknown fields in place: check a copy. */
export const checkRecord: Record<PropertySource, Check> = {
	maricopa: validator.compile(assessorParcelSchema as never) as Check,
	mls: validator.compile(mlsListingSchema as never) as Check,
};

/** One record of `properties.ingest`, judged on its own (a bad one is rejected, not the call). */
export const checkIngestEnvelope = validator.compile({
	source: { type: "enum", values: [...PROPERTY_SOURCES] },
	sourceId: { type: "string", min: 1, max: 100 },
	record: { type: "object" },
	collectedAt: { ...isoTime, optional: true },
	raw: { type: "object", optional: true, props: { source: rawSource, payload: { type: "any" } } },
} as never) as Check;

/** A raw payload the store refuses (null, over `maxBytes`), or null when it is fine. */
export function rawProblem(payload: unknown, maxBytes: number): { reason: string; message: string } | null {
	if (payload === undefined || payload === null)
		return { reason: "empty", message: "raw record has no payload" };
	const bytes = Buffer.byteLength(JSON.stringify(payload));
	if (bytes > maxBytes)
		return {
			reason: "too-large",
			message: `raw payload is ${bytes} bytes, over STORE_RAW_MAX_BYTES (${maxBytes})`,
		};
	return null;
}
