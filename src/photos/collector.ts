/**
 * Photos of listings, collected: for each property, the photos its listing names (in order), each
 * fetched once at the configured size, checked to be one whole image, hashed, and folded onto the
 * picture it shows:
 *
 * - same bytes as a stored image (SHA-256) = an exact duplicate: nothing is written but the photo;
 * - a perceptual hash within `nearDistance` of a stored image = a near duplicate (re-encoded or
 *   resized copy): nothing is written but the photo;
 * - otherwise a new image: its bytes go to object storage (atomically), then its index document.
 *
 * The near-duplicate check and the new image's write run holding cluster-wide locks on the
 * perceptual hash's bands (copies of one picture share a band), so two workers holding copies of
 * one picture store it once. A photo already stored for the property is
 * not fetched again (its last-seen time and position are updated). A photo that cannot be stored
 * (not an image, truncated, over the size cap, gone) is recorded as failed, with the reason.
 */
import type { Lease, SharedState } from "../shared-state/index.ts";
import type { ImageDoc, PhotoDoc } from "../store/photo-index.ts";
import { imageDocId, photoDocId } from "../store/photo-index.ts";
import { sleep } from "../utils/time.ts";
import type { PhotoFetcher } from "./fetcher.ts";
import {
	analyzeImage,
	contentTypeOf,
	extensionOf,
	hamming,
	type ImageFacts,
	PhotoRejectedError,
	phashBands,
} from "./hash.ts";
import { imageObjectKey, type ObjectStore } from "./object-store.ts";
import { listingPhotos, type PhotoSize, photoUrl } from "./urls.ts";

/** What the collector needs of the store's photo-index service. */
export interface PhotoIndexPort {
	photos(key: string): Promise<PhotoDoc[]>;
	image(sha256: string): Promise<ImageDoc | null>;
	byBands(bands: string[]): Promise<ImageDoc[]>;
	addImage(image: ImageDoc): Promise<{ image: ImageDoc; created: boolean }>;
	savePhotos(photos: PhotoDoc[]): Promise<void>;
}

export interface PhotoCounts {
	/** Photos named by the listings looked at. */
	seen: number;
	/** New images stored. */
	new: number;
	/** Photos folded onto a stored image (exact or near copies). */
	duplicate: number;
	exact: number;
	near: number;
	/** Photos already stored for their property (not fetched). */
	unchanged: number;
	failed: number;
	/** Bytes downloaded. */
	bytes: number;
	/** Properties looked at. */
	properties: number;
}

export const emptyPhotoCounts = (): PhotoCounts => ({
	seen: 0,
	new: 0,
	duplicate: 0,
	exact: 0,
	near: 0,
	unchanged: 0,
	failed: 0,
	bytes: 0,
	properties: 0,
});

export type PhotoEvent =
	| {
			type: "photo";
			outcome: "new" | "exact" | "near" | "unchanged" | "failed";
			bytes: number;
			reason?: string;
	  }
	| { type: "counts"; delta: Partial<PhotoCounts> };

export interface PhotoCollectorOptions {
	index: PhotoIndexPort;
	objects: ObjectStore;
	fetcher: PhotoFetcher;
	state: SharedState;
	cdnUrl: string;
	size: PhotoSize;
	maxBytes: number;
	nearDistance: number;
	concurrency: number;
	/** Lock hold limit (a holder that died frees it after this long). */
	lockTtlMs?: number;
	onEvent?: (e: PhotoEvent) => void;
	now?: () => Date;
}

export interface ListingPhotos {
	key: string;
	zip: string | null;
	/** Photo URLs (or ids) in the listing's order. */
	photos: readonly string[];
}

export interface FailedPhoto {
	id: string;
	reason: string;
}

export class PhotoCollector {
	readonly #o: PhotoCollectorOptions;
	readonly #session = `photos-${Math.random().toString(36).slice(2, 10)}`;
	#turn = 0;

	constructor(options: PhotoCollectorOptions) {
		this.#o = options;
	}

	#now(): string {
		return (this.#o.now?.() ?? new Date()).toISOString();
	}

	/** Collect one listing's photos; adds to `counts`, lists failures in `failed`. */
	async collectListing(
		listing: ListingPhotos,
		counts: PhotoCounts,
		failed: FailedPhoto[],
		signal?: AbortSignal,
	): Promise<void> {
		const items = listingPhotos(listing.photos, this.#o.size, null);
		counts.properties++;
		if (items.length === 0) return;
		const known = new Map((await this.#o.index.photos(listing.key)).map((d) => [d.photoId, d]));
		const touched: PhotoDoc[] = [];
		const todo: { id: string; sourceUrl: string; position: number }[] = [];
		const now = this.#now();
		items.forEach((item, position) => {
			counts.seen++;
			const doc = known.get(item.id);
			if (doc && doc.status === "ok") {
				counts.unchanged++;
				this.#o.onEvent?.({ type: "photo", outcome: "unchanged", bytes: 0 });
				touched.push({ ...doc, position, lastSeen: now });
			} else {
				todo.push({ ...item, position });
			}
		});
		if (touched.length > 0) await this.#o.index.savePhotos(touched);
		let next = 0;
		const worker = async () => {
			while (next < todo.length) {
				signal?.throwIfAborted();
				const item = todo[next++]!;
				const prior = known.get(item.id) ?? null;
				await this.#one(listing, item, prior, counts, failed, signal);
			}
		};
		await Promise.all(Array.from({ length: Math.min(this.#o.concurrency, todo.length) }, worker));
	}

	async #one(
		listing: ListingPhotos,
		item: { id: string; sourceUrl: string; position: number },
		prior: PhotoDoc | null,
		counts: PhotoCounts,
		failed: FailedPhoto[],
		signal?: AbortSignal,
	): Promise<void> {
		const now = this.#now();
		const base: PhotoDoc = {
			_id: photoDocId(listing.key, item.id),
			kind: "photo",
			key: listing.key,
			zip: listing.zip,
			photoId: item.id,
			position: item.position,
			sourceUrl: item.sourceUrl,
			size: this.#o.size,
			status: "ok",
			sha256: null,
			phash: null,
			bytes: null,
			width: null,
			height: null,
			imageSha256: null,
			duplicate: null,
			distance: null,
			firstSeen: prior?.firstSeen ?? now,
			lastSeen: now,
			failure: null,
		};
		const fail = async (reason: string, message: string) => {
			counts.failed++;
			if (failed.length < 100)
				failed.push({ id: `${listing.key}/${item.id}`, reason: `${reason}: ${message}`.slice(0, 300) });
			this.#o.onEvent?.({ type: "photo", outcome: "failed", bytes: 0, reason });
			await this.#o.index.savePhotos([
				{
					...base,
					status: "failed",
					failure: {
						reason,
						message: message.slice(0, 300),
						at: now,
						attempts: (prior?.failure?.attempts ?? 0) + 1,
					},
				},
			]);
		};
		// A few sticky sessions per collector spread its photos over several proxies (exit IPs).
		const session = `${this.#session}-${this.#turn++ % 8}`;
		const got = await this.#o.fetcher.fetch(photoUrl(this.#o.cdnUrl, item.id, this.#o.size), session, signal);
		if ("rejected" in got) return fail(got.rejected.reason, got.rejected.message);
		counts.bytes += got.body.length;
		let facts: ImageFacts;
		try {
			facts = await analyzeImage(got.body, this.#o.maxBytes);
		} catch (err) {
			if (err instanceof PhotoRejectedError) return fail(err.reason, err.message);
			throw err;
		}
		const { image, outcome, distance } = await this.#resolve(facts, got.body, now);
		if (outcome === "new") counts.new++;
		else {
			counts.duplicate++;
			counts[outcome]++;
		}
		this.#o.onEvent?.({ type: "photo", outcome, bytes: got.body.length });
		await this.#o.index.savePhotos([
			{
				...base,
				sha256: facts.sha256,
				phash: facts.phash,
				bytes: facts.bytes,
				width: facts.width,
				height: facts.height,
				imageSha256: image.sha256,
				duplicate: outcome === "new" ? null : outcome,
				distance,
			},
		]);
	}

	/** The stored image these bytes are: an existing one (exact, near) or a new one written now. */
	async #resolve(
		facts: ImageFacts,
		body: Buffer,
		now: string,
	): Promise<{ image: ImageDoc; outcome: "new" | "exact" | "near"; distance: number }> {
		const exact = await this.#o.index.image(facts.sha256);
		if (exact) return { image: exact, outcome: "exact", distance: 0 };
		const bands = phashBands(facts.phash);
		return this.#locked(bands, async () => {
			let best: { image: ImageDoc; distance: number } | null = null;
			for (const img of await this.#o.index.byBands(bands)) {
				const d = img.sha256 === facts.sha256 ? 0 : hamming(img.phash, facts.phash);
				if (d <= this.#o.nearDistance && (!best || d < best.distance)) best = { image: img, distance: d };
			}
			if (best)
				return {
					image: best.image,
					outcome: best.image.sha256 === facts.sha256 ? "exact" : "near",
					distance: best.distance,
				};
			const ext = extensionOf(facts.format);
			const objectKey = imageObjectKey(facts.sha256, ext);
			// Bytes first, then the document: a crash between them leaves an unindexed object that the
			// next attempt writes again whole (same key), never a document without its object.
			await this.#o.objects.put(objectKey, body, contentTypeOf(facts.format));
			const doc: ImageDoc = {
				_id: imageDocId(facts.sha256),
				kind: "image",
				sha256: facts.sha256,
				phash: facts.phash,
				pb0: bands[0]!,
				pb1: bands[1]!,
				pb2: bands[2]!,
				pb3: bands[3]!,
				pb4: bands[4]!,
				pb5: bands[5]!,
				pb6: bands[6]!,
				pb7: bands[7]!,
				objectKey,
				bytes: facts.bytes,
				width: facts.width,
				height: facts.height,
				format: facts.format,
				contentType: contentTypeOf(facts.format),
				firstSeen: now,
			};
			const added = await this.#o.index.addImage(doc);
			return { image: added.image, outcome: added.created ? "new" : "exact", distance: 0 };
		});
	}

	/**
	 * Run `fn` holding the cluster-wide locks of the hash's bands (`photos:band:<i>:<value>`). Two
	 * copies of one picture (within 7 bits, PHOTOS_NEAR_DISTANCE) share a band, so they take one lock
	 * in turn; unrelated pictures rarely share one, so registrations across the cluster do not queue
	 * behind one lock. All or nothing, in sorted order, with jittered retries: no deadlock.
	 */
	async #locked<T>(bands: string[], fn: () => Promise<T>): Promise<T> {
		const ttl = this.#o.lockTtlMs ?? 30_000;
		const keys = [...new Set(bands.map((b, i) => `photos:band:${i}:${b}`))].sort();
		const deadline = Date.now() + ttl * 4;
		let wait = 2;
		for (;;) {
			const held: Lease[] = [];
			for (const key of keys) {
				const lease = await this.#o.state.acquire(key, ttl);
				if (!lease) break;
				held.push(lease);
			}
			if (held.length === keys.length) {
				try {
					return await fn();
				} finally {
					await Promise.all(held.map((l) => l.release().catch(() => undefined)));
				}
			}
			await Promise.all(held.map((l) => l.release().catch(() => undefined)));
			if (Date.now() > deadline) throw new Error("photo registration locks not acquired in time");
			await sleep(wait + Math.random() * wait);
			wait = Math.min(50, wait * 2);
		}
	}
}
