/**
 * What a photo's bytes are: decoded with sharp (libvips) to prove they are a whole image, then
 * hashed: SHA-256 of the bytes (exact duplicates) and a 64-bit perceptual hash (pHash: the signs of
 * the lowest 8x8 DCT coefficients of a 32x32 greyscale resize against their median), which stays
 * within a few bits for a re-encoded or resized copy of the same picture (near duplicates).
 *
 * Near duplicates are found through an index of 8 bands of 8 bits: two hashes within Hamming
 * distance 7 agree on at least one whole band (pigeonhole), so a lookup by band finds every
 * candidate, and the exact distance decides.
 */
import { createHash } from "node:crypto";
import sharp, { type Metadata } from "sharp";

export const PHASH_BANDS = 8;

/** A photo that cannot be stored (not an image, truncated, too large, refused by the CDN). */
export class PhotoRejectedError extends Error {
	readonly reason: string;
	constructor(reason: string, message: string) {
		super(message);
		this.name = "PhotoRejectedError";
		this.reason = reason;
	}
}

export interface ImageFacts {
	sha256: string;
	/** 16 hex digits. */
	phash: string;
	width: number;
	height: number;
	/** jpeg, png, webp, gif... as sharp names it. */
	format: string;
	bytes: number;
}

const FORMAT_TYPES: Record<string, string> = {
	jpeg: "image/jpeg",
	png: "image/png",
	webp: "image/webp",
	gif: "image/gif",
	avif: "image/avif",
	heif: "image/heif",
	tiff: "image/tiff",
};

export function contentTypeOf(format: string): string {
	return FORMAT_TYPES[format] ?? "application/octet-stream";
}

export function extensionOf(format: string): string {
	return format === "jpeg" ? "jpg" : /^[a-z0-9]{2,5}$/.test(format) ? format : "bin";
}

/** Decode and hash; throws PhotoRejectedError for anything that is not one whole image. */
export async function analyzeImage(
	buf: Buffer,
	maxBytes: number,
	maxPixels = 100_000_000,
): Promise<ImageFacts> {
	if (buf.length > maxBytes)
		throw new PhotoRejectedError("oversized", `photo is ${buf.length} bytes, over ${maxBytes}`);
	if (buf.length === 0) throw new PhotoRejectedError("empty", "photo is empty");
	let meta: Metadata;
	try {
		meta = await sharp(buf, { limitInputPixels: maxPixels }).metadata();
	} catch (err) {
		throw new PhotoRejectedError("not-an-image", `not an image: ${(err as Error).message}`);
	}
	if (!meta.format || !meta.width || !meta.height)
		throw new PhotoRejectedError("not-an-image", "not an image");
	let grey: Buffer;
	try {
		// failOn "warning" (sharp's default) makes a truncated or corrupt file an error: decoding the
		// whole image for the resize is what proves the bytes are complete.
		grey = await sharp(buf, { limitInputPixels: maxPixels, failOn: "warning" })
			.greyscale()
			.resize(32, 32, { fit: "fill", kernel: "cubic" })
			.raw()
			.toBuffer();
	} catch (err) {
		throw new PhotoRejectedError("truncated", `image does not decode whole: ${(err as Error).message}`);
	}
	return {
		sha256: sha256Hex(buf),
		phash: phashOf(grey),
		width: meta.width,
		height: meta.height,
		format: meta.format,
		bytes: buf.length,
	};
}

export function sha256Hex(buf: Buffer): string {
	return createHash("sha256").update(buf).digest("hex");
}

const N = 32;
const COS: number[][] = Array.from({ length: 8 }, (_, u) =>
	Array.from({ length: N }, (_, x) => Math.cos(((2 * x + 1) * u * Math.PI) / (2 * N))),
);

/** pHash of a 32x32 greyscale image (1,024 bytes): 64 bits as 16 hex digits. */
export function phashOf(grey: Buffer): string {
	if (grey.length !== N * N) throw new RangeError(`expected ${N * N} grey pixels, got ${grey.length}`);
	// The 8x8 lowest frequencies of the 2-D DCT-II, separably: rows first, then columns.
	const rows: number[][] = [];
	for (let y = 0; y < N; y++) {
		const r: number[] = [];
		for (let u = 0; u < 8; u++) {
			let s = 0;
			for (let x = 0; x < N; x++) s += grey[y * N + x]! * COS[u]![x]!;
			r.push(s);
		}
		rows.push(r);
	}
	const coeffs: number[] = [];
	for (let v = 0; v < 8; v++) {
		for (let u = 0; u < 8; u++) {
			let s = 0;
			for (let y = 0; y < N; y++) s += rows[y]![u]! * COS[v]![y]!;
			coeffs.push(s);
		}
	}
	// The DC term says only how bright the picture is: the median leaves it out.
	const sorted = coeffs.slice(1).sort((a, b) => a - b);
	const median = (sorted[31]! + sorted[32]!) / 2;
	let hex = "";
	for (let i = 0; i < 64; i += 4) {
		let nibble = 0;
		for (let b = 0; b < 4; b++) nibble = (nibble << 1) | (coeffs[i + b]! > median ? 1 : 0);
		hex += nibble.toString(16);
	}
	return hex;
}

/** Hamming distance of two 16-hex-digit hashes. */
export function hamming(a: string, b: string): number {
	let d = 0;
	for (let i = 0; i < 16; i += 4) {
		let x = Number.parseInt(a.slice(i, i + 4), 16) ^ Number.parseInt(b.slice(i, i + 4), 16);
		while (x) {
			d += x & 1;
			x >>>= 1;
		}
	}
	return d;
}

/** The 8 bands of a hash as index values ("<band><2 hex>"), one per field pb0..pb7. */
export function phashBands(phash: string): string[] {
	return Array.from({ length: PHASH_BANDS }, (_, i) => phash.slice(i * 2, i * 2 + 2));
}
