/**
 * Split a list into runs that each fit one message: at most `maxItems` items and about `maxBytes` of
 * JSON (an item larger than `maxBytes` travels alone). NATS caps a payload at 1 MB by default, so
 * batches sent over the bus are cut to fit well below it.
 */
export function chunksOf<T>(items: readonly T[], maxItems: number, maxBytes: number): T[][] {
	const out: T[][] = [];
	let current: T[] = [];
	let bytes = 0;
	for (const item of items) {
		const size = Buffer.byteLength(JSON.stringify(item) ?? "");
		if (current.length > 0 && (current.length >= maxItems || bytes + size > maxBytes)) {
			out.push(current);
			current = [];
			bytes = 0;
		}
		current.push(item);
		bytes += size;
	}
	if (current.length > 0) out.push(current);
	return out;
}
