/**
 * The photo CDN of the MLS simulator: generated images at `/az/{photoId}-{size}.jpg` (sizes t, m, l,
 * o), served by the MLS site behind its per-IP defences (mls-site.ts), with ground truth.
 *
 * Every photo id of the world shows a *picture*. Most pictures appear once; a share of photos are
 * true duplicates of an earlier photo of another listing (same picture, same bytes) and a share
 * are near duplicates (same picture re-encoded at another JPEG quality and/or resized). A share may
 * be bad input: not an image, a truncated JPEG, or an oversized file. The plan is drawn from the
 * world's listings in MLS id order with its own seed, so it is the same in every process.
 *
 * Images are drawn from a seeded scene (a gradient and a few shapes) at low resolution, then
 * resized and JPEG-encoded by sharp: the same (picture, size, variant) always gives the same bytes.
 */
import sharp from "sharp";
import type { World } from "./generator.ts";
import { Rng } from "./rng.ts";

export type PhotoSizeCode = "t" | "m" | "l" | "o";
export type BadPhotoKind = "not-image" | "truncated" | "oversized";

export interface PhotoVariant {
	quality: number;
	/** Scale of the picture's dimensions for its size (1 = as the original). */
	scale: number;
}

export interface PhotoTruth {
	photoId: string;
	mlsId: string;
	zip: string;
	/** The picture shown: photos with one picture are one photo to store. */
	picture: string;
	kind: "original" | "exact" | "near";
	variant: PhotoVariant;
	/** Bad input: the CDN serves something that is not a storable image. */
	bad: BadPhotoKind | null;
}

export interface PhotoCatalogOptions {
	/** Share of photos that are byte-identical copies of an earlier photo's picture. */
	exactShare: number;
	/** Share of photos that are re-encoded/resized copies of an earlier photo's picture. */
	nearShare: number;
	/** Share of photos served as bad input (not image, truncated, oversized; in turn). */
	badShare: number;
	/** Size of an oversized answer, bytes. */
	oversizedBytes: number;
	seed: number;
}

export function defaultPhotoCatalogOptions(): PhotoCatalogOptions {
	return { exactShare: 0.06, nearShare: 0.06, badShare: 0, oversizedBytes: 12 * 1024 * 1024, seed: 7 };
}

const DIMS: Record<PhotoSizeCode, [number, number]> = {
	t: [160, 120],
	m: [640, 480],
	l: [1024, 768],
	o: [1600, 1200],
};
const BASE: PhotoVariant = { quality: 82, scale: 1 };

export interface PhotoCatalog {
	readonly options: PhotoCatalogOptions;
	truth(photoId: string): PhotoTruth | undefined;
	/** Ground truth of a ZIP's photos (every listing of the ZIP, in the listings' order). */
	truthOfZip(zip: string): PhotoTruth[];
	/** Distinct storable pictures of a ZIP's photos. */
	picturesOfZip(zip: string): Set<string>;
	/** The bytes and content type served for a photo at a size; null when the id is unknown. */
	render(photoId: string, size: PhotoSizeCode): Promise<{ body: Buffer; contentType: string } | null>;
}

export function createPhotoCatalog(world: World, options: Partial<PhotoCatalogOptions> = {}): PhotoCatalog {
	const o = { ...defaultPhotoCatalogOptions(), ...options };
	const rng = new Rng(`photos:${o.seed}`);
	const byId = new Map<string, PhotoTruth>();
	const byZip = new Map<string, PhotoTruth[]>();
	const pool: PhotoTruth[] = [];
	let badTurn = 0;
	const listings = [...world.listingById.values()].sort((a, b) => (a.mlsId < b.mlsId ? -1 : 1));
	for (const l of listings) {
		const own: PhotoTruth[] = [];
		for (const photoId of l.photoIds) {
			if (byId.has(photoId)) continue;
			const r = rng.float();
			// Copies come from other listings (earlier ones), as when agents reuse a picture.
			const others =
				pool.length > 0 && pool[pool.length - 1]!.mlsId !== l.mlsId
					? pool
					: pool.filter((p) => p.mlsId !== l.mlsId);
			let t: PhotoTruth;
			if (r < o.badShare) {
				const kinds: BadPhotoKind[] = ["not-image", "truncated", "oversized"];
				t = {
					photoId,
					mlsId: l.mlsId,
					zip: l.zip,
					picture: `bad-${photoId}`,
					kind: "original",
					variant: BASE,
					bad: kinds[badTurn++ % 3]!,
				};
			} else if (r < o.badShare + o.exactShare && others.length > 0) {
				const src = others[Math.floor(rng.float() * others.length)]!;
				t = {
					photoId,
					mlsId: l.mlsId,
					zip: l.zip,
					picture: src.picture,
					kind: "exact",
					variant: src.variant,
					bad: null,
				};
			} else if (r < o.badShare + o.exactShare + o.nearShare && others.length > 0) {
				const src = others[Math.floor(rng.float() * others.length)]!;
				let variant: PhotoVariant;
				do {
					variant = {
						quality: rng.pick([55, 65, 75, 90, 95]),
						scale: rng.pick([1, 1, 0.9, 0.8, 0.75]),
					};
				} while (variant.quality === src.variant.quality && variant.scale === src.variant.scale);
				t = { photoId, mlsId: l.mlsId, zip: l.zip, picture: src.picture, kind: "near", variant, bad: null };
			} else {
				t = {
					photoId,
					mlsId: l.mlsId,
					zip: l.zip,
					picture: `pic-${photoId}`,
					kind: "original",
					variant: BASE,
					bad: null,
				};
			}
			byId.set(photoId, t);
			own.push(t);
		}
		for (const t of own) if (!t.bad) pool.push(t);
		const list = byZip.get(l.zip) ?? [];
		list.push(...own);
		byZip.set(l.zip, list);
	}

	// Rendered bytes, most recent first out (a small cache: the same photo is asked for again on retries).
	const cache = new Map<string, Promise<Buffer>>();
	const cached = (key: string, make: () => Promise<Buffer>): Promise<Buffer> => {
		let p = cache.get(key);
		if (!p) {
			p = make();
			cache.set(key, p);
			if (cache.size > 300) cache.delete(cache.keys().next().value as string);
		}
		return p;
	};

	const renderPicture = (picture: string, size: PhotoSizeCode, v: PhotoVariant) =>
		cached(`${picture}|${size}|${v.quality}|${v.scale}`, async () => {
			const [w0, h0] = DIMS[size];
			const w = Math.max(16, Math.round(w0 * v.scale));
			const h = Math.max(12, Math.round(h0 * v.scale));
			return sharp(scene(picture), { raw: { width: SCENE_W, height: SCENE_H, channels: 3 } })
				.resize(w, h, { kernel: "cubic" })
				.jpeg({ quality: v.quality, mozjpeg: false })
				.toBuffer();
		});

	return {
		options: o,
		truth: (id) => byId.get(id),
		truthOfZip: (zip) => [...(byZip.get(zip) ?? [])],
		picturesOfZip: (zip) => new Set((byZip.get(zip) ?? []).filter((t) => !t.bad).map((t) => t.picture)),
		async render(photoId, size) {
			const t = byId.get(photoId);
			if (!t) return null;
			if (t.bad === "not-image")
				return {
					body: Buffer.from(`GIF89a? no: this is not an image (${photoId})\n`.repeat(20)),
					contentType: "image/jpeg",
				};
			const body = await renderPicture(t.picture, size, t.variant);
			if (t.bad === "truncated")
				return { body: body.subarray(0, Math.floor(body.length * 0.6)), contentType: "image/jpeg" };
			if (t.bad === "oversized") {
				const big = Buffer.alloc(Math.max(o.oversizedBytes, body.length + 1));
				body.copy(big);
				return { body: big, contentType: "image/jpeg" };
			}
			return { body, contentType: "image/jpeg" };
		},
	};
}

const SCENE_W = 48;
const SCENE_H = 36;

/** A seeded low-resolution scene: a two-colour gradient and a few rectangles and discs. */
function scene(picture: string): Buffer {
	const rng = new Rng(`scene:${picture}`);
	const px = Buffer.alloc(SCENE_W * SCENE_H * 3);
	const c1 = [rng.int(0, 255), rng.int(0, 255), rng.int(0, 255)];
	const c2 = [rng.int(0, 255), rng.int(0, 255), rng.int(0, 255)];
	const angle = rng.range(0, Math.PI * 2);
	const dx = Math.cos(angle);
	const dy = Math.sin(angle);
	for (let y = 0; y < SCENE_H; y++) {
		for (let x = 0; x < SCENE_W; x++) {
			const t = Math.min(1, Math.max(0, 0.5 + ((x / SCENE_W - 0.5) * dx + (y / SCENE_H - 0.5) * dy)));
			const i = (y * SCENE_W + x) * 3;
			for (let ch = 0; ch < 3; ch++) px[i + ch] = Math.round(c1[ch]! * (1 - t) + c2[ch]! * t);
		}
	}
	const shapes = rng.int(4, 9);
	for (let s = 0; s < shapes; s++) {
		const color = [rng.int(0, 255), rng.int(0, 255), rng.int(0, 255)];
		const cx = rng.int(0, SCENE_W - 1);
		const cy = rng.int(0, SCENE_H - 1);
		const rw = rng.int(3, 16);
		const rh = rng.int(3, 12);
		const disc = rng.chance(0.5);
		for (let y = Math.max(0, cy - rh); y < Math.min(SCENE_H, cy + rh); y++) {
			for (let x = Math.max(0, cx - rw); x < Math.min(SCENE_W, cx + rw); x++) {
				if (disc && ((x - cx) / rw) ** 2 + ((y - cy) / rh) ** 2 > 1) continue;
				const i = (y * SCENE_W + x) * 3;
				for (let ch = 0; ch < 3; ch++) px[i + ch] = color[ch]!;
			}
		}
	}
	return px;
}
