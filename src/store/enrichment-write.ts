/**
 * An enrichment put on a property (`properties.setEnrichment`), only while the property's facts are
 * still the ones it was made from.
 */
import { propertyInputHash } from "../domain/enrichment-input.ts";
import { canonicalJson, type PropertyDoc, type PropertyEnrichment } from "../domain/property.ts";
import { contentionMs, WRITE_CONTENTION } from "../utils/backoff.ts";
import { sleep } from "../utils/time.ts";
import { gaveUp, type PropertyWriter, writerLockKeys } from "./merge-rules.ts";

/** What `setEnrichment` did: stored; refused because the facts changed since; no such property. */
export type EnrichmentWrite = "stored" | "stale" | "missing";

/**
 * Put an enrichment on a property, only while the property's facts are still the ones it was
 * made from (`expectedInputHash`, recomputed here with the enrichment's model); else "stale".
 * A conditional replace on the version read, under the same locks as a merge of the property
 * (FerretDB's conditional replace alone is not atomic), so a merge is never lost and a lost
 * race re-reads. Neither `changedAt` nor the history move: an enrichment is not a fact change.
 */
export async function setEnrichment(
	w: PropertyWriter,
	key: string,
	enrichment: PropertyEnrichment,
	expectedInputHash: string,
): Promise<EnrichmentWrite> {
	for (let attempt = 1; attempt <= w.maxAttempts; attempt++) {
		const seen = await w.col.findOne({ key });
		if (!seen) return "missing";
		const out = await w.locks.withLocks(writerLockKeys(seen), async (): Promise<EnrichmentWrite | null> => {
			const doc = await w.col.findOne({ _id: seen._id });
			if (!doc || doc.key !== key) return "missing";
			// A merge in between may have given the property other lock keys: take those first.
			if (canonicalJson(writerLockKeys(doc)) !== canonicalJson(writerLockKeys(seen))) return null;
			if (propertyInputHash(doc, enrichment.processing.llm_model) !== expectedInputHash) return "stale";
			const next: PropertyDoc = { ...doc, enrichment, version: doc.version + 1 };
			return (await w.col.replaceIf({ _id: doc._id, version: doc.version }, next)) ? "stored" : null;
		});
		if (out) return out;
		await sleep(contentionMs(attempt, WRITE_CONTENTION));
	}
	throw gaveUp(`storing the enrichment of ${key}`, w.maxAttempts);
}
