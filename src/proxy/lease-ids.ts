/**
 * Random parts of lease ids, drawn from the CSPRNG in batches: one randomFillSync per 256 leases
 * instead of a randomBytes call (and its buffer) per lease. Every byte is used once, so an id is as
 * unguessable as `randomBytes(8).toString("hex")` (a pinned lease's id is a gateway credential).
 */
import { randomFillSync } from "node:crypto";

const ID_BYTES = 8;
const batch = Buffer.alloc(ID_BYTES * 256);
let offset = batch.length;

/** 16 hex characters of fresh randomness. */
export function randomLeaseHex(): string {
	if (offset + ID_BYTES > batch.length) {
		randomFillSync(batch);
		offset = 0;
	}
	const hex = batch.toString("hex", offset, offset + ID_BYTES);
	offset += ID_BYTES;
	return hex;
}
