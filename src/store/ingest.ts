/**
 * `properties.ingest` (see src/contracts/store.ts): a page of records judged one by one (a bad one
 * is rejected and counted, the others go on), their raw payloads read, the records that changed
 * merged in bulk, then the raw payloads written.
 */
import type { IngestOutcome, IngestParams, IngestRecord } from "../contracts/store.ts";
import { PROPERTY_SOURCES } from "../domain/records.ts";
import { databaseUnreachable, unavailable } from "./database-errors.ts";
import { type MergeOutcome, unjoinableReason } from "./merge-rules.ts";
import type { PropertyStore } from "./property-store.ts";
import type { RawItem, RawStore } from "./raw-store.ts";
import { checkIngestEnvelope, checkRecord, rawProblem } from "./record-validation.ts";

export interface IngestDeps {
	raws: RawStore;
	props: PropertyStore;
	/** STORE_RAW_MAX_BYTES. */
	rawMaxBytes: number;
	/** Count rejected records (`<service>.<source>.<reason>`), `by` at once. */
	reject(service: string, source: string, reason: string, by: number): Promise<unknown>;
	/** A merge that changed its property (`properties.changed`). */
	changed(out: MergeOutcome): void;
}

/** The outcomes of `params.records`, in input order. */
export async function ingestRecords(params: IngestParams, deps: IngestDeps): Promise<IngestOutcome[]> {
	const { raws, props } = deps;
	const now = new Date().toISOString();
	const outcomes: IngestOutcome[] = [];
	const rejected = new Map<string, number>();
	const accepted: { i: number; input: IngestRecord & { collectedAt: string } }[] = [];
	const refuse = (i: number, sourceId: unknown, counter: string, error: string) => {
		outcomes[i] = { sourceId: String(sourceId ?? ""), raw: null, status: "rejected", error };
		rejected.set(counter, (rejected.get(counter) ?? 0) + 1);
	};
	params.records.forEach((given, i) => {
		const source = PROPERTY_SOURCES.includes(given?.source) ? given.source : "unknown";
		const envelope = checkIngestEnvelope({ ...given });
		if (envelope !== true) {
			const problems = envelope as { message?: string }[];
			refuse(i, given?.sourceId, `properties.${source}.invalid`, problems.map((p) => p.message).join("; "));
			return;
		}
		// The validator strips unknown fields in place: work on a copy of the caller's record.
		const record = structuredClone(given.record);
		const verdict = checkRecord[given.source](record);
		if (verdict !== true) {
			const problems = verdict as { message?: string }[];
			refuse(
				i,
				given.sourceId,
				`properties.${source}.invalid`,
				`invalid ${source} record ${given.sourceId}: ${problems.map((p) => p.message).join("; ")}`,
			);
			return;
		}
		const unjoinable = unjoinableReason({ source: given.source, record });
		if (unjoinable) {
			refuse(i, given.sourceId, `properties.${source}.unjoinable`, unjoinable);
			return;
		}
		const problem = given.raw ? rawProblem(given.raw.payload, deps.rawMaxBytes) : null;
		if (problem) {
			refuse(i, given.sourceId, `raw.${given.raw!.source}.${problem.reason}`, problem.message);
			return;
		}
		accepted.push({ i, input: { ...given, record, collectedAt: given.collectedAt ?? now } });
	});
	await Promise.all(
		[...rejected].map(([field, n]) => deps.reject(...(field.split(".") as [string, string, string]), n)),
	);
	try {
		const withRaw = accepted.filter(({ input }) => input.raw);
		// Read the raw records first, merge what changed, then write the raw records: a raw
		// record is stored only after its merge, so "unchanged" proves the merge happened
		// (and a GIS row re-read unchanged is not merged over the details merged since).
		const rawPlan = await raws.prepareMany(
			withRaw.map(
				({ input }): RawItem => ({
					source: input.raw!.source,
					sourceId: input.sourceId,
					payload: input.raw!.payload,
					collectedAt: input.collectedAt,
				}),
			),
		);
		const rawStatus = new Map(withRaw.map(({ i }, j) => [i, rawPlan.statuses[j]!]));
		const toMerge = accepted.filter(({ i }) => params.force || rawStatus.get(i) !== "unchanged");
		const merged = await props.mergeMany(
			toMerge.map(({ input }) => ({
				source: input.source,
				sourceId: input.sourceId,
				record: input.record,
				collectedAt: input.collectedAt,
			})),
		);
		const mergedOf = new Map(toMerge.map(({ i }, j) => [i, merged[j]!]));
		const rawOut = await rawPlan.commit();
		const rawFinal = new Map(withRaw.map(({ i }, j) => [i, rawOut[j]!.status]));
		for (const { i, input } of accepted) {
			const out = mergedOf.get(i);
			outcomes[i] = {
				sourceId: input.sourceId,
				...(out ? { key: out.key } : {}),
				raw: rawFinal.get(i) ?? null,
				status: out?.status ?? "unchanged",
			};
			if (out && (out.changes.length > 0 || out.status === "new")) deps.changed(out);
		}
	} catch (err) {
		if (unavailable(err)) throw databaseUnreachable(err);
		throw err;
	}
	return outcomes;
}
