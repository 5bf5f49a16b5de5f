/**
 * Deterministic, seeded randomness for the sandbox.
 *
 * Every simulator and the world generator draw from these so that one seed reproduces one world and
 * one fault sequence: a failing test can be replayed exactly.
 */

/** mulberry32: tiny, fast 32-bit PRNG; good enough for test data, not for cryptography. */
export function mulberry32(seed: number): () => number {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

/** FNV-1a 32-bit hash: turns strings (prompts, keys) into seeds. */
export function hashString(text: string): number {
	let h = 0x811c9dc5;
	for (let i = 0; i < text.length; i++) {
		h ^= text.charCodeAt(i);
		h = Math.imul(h, 0x01000193);
	}
	return h >>> 0;
}

/** Convenience wrapper over a mulberry32 stream. */
export class Rng {
	readonly next: () => number;

	constructor(seed: number | string) {
		this.next = mulberry32(typeof seed === "string" ? hashString(seed) : seed);
	}

	/** Float in [0, 1). */
	float(): number {
		return this.next();
	}

	/** Integer in [min, max] (both inclusive). */
	int(min: number, max: number): number {
		return min + Math.floor(this.next() * (max - min + 1));
	}

	/** Float in [min, max). */
	range(min: number, max: number): number {
		return min + this.next() * (max - min);
	}

	/** True with probability p. */
	chance(p: number): boolean {
		return p > 0 && this.next() < p;
	}

	pick<T>(items: readonly T[]): T {
		if (items.length === 0) throw new Error("Rng.pick: empty list");
		return items[Math.floor(this.next() * items.length)]!;
	}

	/** Picks by weight; weights need not sum to 1. */
	weighted<T>(entries: readonly (readonly [T, number])[]): T {
		let total = 0;
		for (const [, w] of entries) total += w;
		let r = this.next() * total;
		for (const [item, w] of entries) {
			r -= w;
			if (r < 0) return item;
		}
		return entries[entries.length - 1]![0];
	}

	/** A shuffled copy (Fisher-Yates). */
	shuffle<T>(items: readonly T[]): T[] {
		const out = [...items];
		for (let i = out.length - 1; i > 0; i--) {
			const j = Math.floor(this.next() * (i + 1));
			[out[i], out[j]] = [out[j]!, out[i]!];
		}
		return out;
	}

	/** Derives an independent stream, so adding draws in one place does not shift another. */
	fork(label: string): Rng {
		return new Rng((hashString(label) ^ Math.floor(this.next() * 4294967296)) >>> 0);
	}
}
