/**
 * The photo index (issue 18): one collection `photos` beside the properties, holding two kinds of
 * documents, each found by `_id` or a top-level field (FerretDB scans array fields, so nothing is
 * looked up inside an array):
 *
 * - an image, `_id: "img:<sha256>"`: one stored picture (its object key, bytes, size, pHash and the
 *   hash's 8 bands `pb0..pb7`, each indexed, so near duplicates are found by band);
 * - a photo of a property, `_id: "ph:<property key>|<photo id>"`: where it sits in the listing's
 *   order, its source URL, its own SHA-256 and pHash, the image it resolved to (`imageSha256`,
 *   itself for the first copy; `duplicate: "exact" | "near"` otherwise), first and last seen, or
 *   the failure that kept it out.
 *
 * Writes are keyed by `_id` (an image insert that clashes means another writer stored the same
 * bytes first: its document wins), so a retried or repeated job never stores anything twice.
 */
import moleculer, { type Context, type ServiceSchema } from "moleculer";
import type { DbAdapter } from "moleculer-db";
import type { Config } from "../config/index.ts";
import { createStoreAdapter } from "./adapters.ts";
import { type DocCollection, DuplicateKeyError } from "./collection.ts";
import { type DbServiceSchema, dbMixin } from "./db-mixin.ts";

const { MoleculerRetryableError } = moleculer.Errors;

export interface ImageDoc {
	_id: string;
	kind: "image";
	sha256: string;
	phash: string;
	pb0: string;
	pb1: string;
	pb2: string;
	pb3: string;
	pb4: string;
	pb5: string;
	pb6: string;
	pb7: string;
	objectKey: string;
	bytes: number;
	width: number;
	height: number;
	format: string;
	contentType: string;
	firstSeen: string;
}

export interface PhotoDoc {
	_id: string;
	kind: "photo";
	/** Property key. */
	key: string;
	zip: string | null;
	photoId: string;
	/** 0-based place in the listing's photo order (as last seen). */
	position: number;
	sourceUrl: string;
	/** Size fetched (t, m, l, o). */
	size: string;
	status: "ok" | "failed";
	sha256: string | null;
	phash: string | null;
	bytes: number | null;
	width: number | null;
	height: number | null;
	/** The stored image this photo is (its own bytes when it was the first copy). */
	imageSha256: string | null;
	duplicate: "exact" | "near" | null;
	/** pHash distance to the stored image (near duplicates). */
	distance: number | null;
	firstSeen: string;
	lastSeen: string;
	failure: { reason: string; message: string; at: string; attempts: number } | null;
}

type IndexDoc = ImageDoc | PhotoDoc;

export const imageDocId = (sha256: string) => `img:${sha256}`;
export const photoDocId = (key: string, photoId: string) => `ph:${key}|${photoId}`;

export class PhotoIndex {
	readonly #c: DocCollection<IndexDoc>;
	constructor(c: DocCollection<IndexDoc>) {
		this.#c = c;
	}

	async ensureIndexes(): Promise<void> {
		await this.#c.ensureIndex("key", false);
		for (let i = 0; i < 8; i++) await this.#c.ensureIndex(`pb${i}`, false);
	}

	async photosOf(key: string): Promise<PhotoDoc[]> {
		const docs = (await this.#c.find({ key }, { sort: { position: 1 } })) as PhotoDoc[];
		return docs.filter((d) => d.kind === "photo");
	}

	async photo(key: string, photoId: string): Promise<PhotoDoc | null> {
		return (await this.#c.findOne({ _id: photoDocId(key, photoId) })) as PhotoDoc | null;
	}

	async image(sha256: string): Promise<ImageDoc | null> {
		return (await this.#c.findOne({ _id: imageDocId(sha256) })) as ImageDoc | null;
	}

	/** Images sharing at least one band with `bands` (every image within distance 7 is among them). */
	async imagesByBands(bands: string[]): Promise<ImageDoc[]> {
		const docs = (await this.#c.find({ $or: bands.map((b, i) => ({ [`pb${i}`]: b })) })) as IndexDoc[];
		return docs.filter((d): d is ImageDoc => d.kind === "image");
	}

	/** Insert an image; when one with the same bytes is there already, that one is answered. */
	async addImage(doc: ImageDoc): Promise<{ image: ImageDoc; created: boolean }> {
		try {
			await this.#c.insert(doc);
			return { image: doc, created: true };
		} catch (err) {
			if (!(err instanceof DuplicateKeyError)) throw err;
			const existing = await this.image(doc.sha256);
			if (!existing) throw err;
			return { image: existing, created: false };
		}
	}

	/** Upsert photos by `_id`. */
	async savePhotos(docs: PhotoDoc[]): Promise<number> {
		for (const doc of docs) {
			for (let attempt = 0; ; attempt++) {
				if (await this.#c.replaceIf({ _id: doc._id }, doc)) break;
				try {
					await this.#c.insert(doc);
					break;
				} catch (err) {
					if (!(err instanceof DuplicateKeyError) || attempt >= 3) throw err;
				}
			}
		}
		return docs.length;
	}

	async counts(): Promise<{ images: number; photos: number; failed: number }> {
		const [images, photos, failed] = await Promise.all([
			this.#c.count({ kind: "image" }),
			this.#c.count({ kind: "photo" }),
			this.#c.count({ kind: "photo", status: "failed" }),
		]);
		return { images, photos, failed };
	}
}

const sha = { type: "string", pattern: /^[0-9a-f]{64}$/ } as const;
const hex16 = { type: "string", pattern: /^[0-9a-f]{16}$/ } as const;
const propertyKey = { type: "string", min: 1, max: 300 } as const;
const photoId = { type: "string", pattern: /^[A-Za-z0-9_]{1,64}$/ } as const;
const band = { type: "string", pattern: /^[0-9a-f]{2}$/ } as const;
const iso = { type: "string", min: 10, max: 40 } as const;
const nullable = (rule: object) => ({ ...rule, nullable: true, optional: true });

const imageRule = {
	type: "object",
	strict: "remove",
	props: {
		_id: { type: "string", max: 80 },
		kind: { type: "equal", value: "image" },
		sha256: sha,
		phash: hex16,
		...Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`pb${i}`, band])),
		objectKey: { type: "string", min: 1, max: 600 },
		bytes: { type: "number", integer: true, min: 0 },
		width: { type: "number", integer: true, min: 0 },
		height: { type: "number", integer: true, min: 0 },
		format: { type: "string", max: 20 },
		contentType: { type: "string", max: 100 },
		firstSeen: iso,
	},
} as const;

const photoRule = {
	type: "object",
	strict: "remove",
	props: {
		_id: { type: "string", max: 400 },
		kind: { type: "equal", value: "photo" },
		key: propertyKey,
		zip: nullable({ type: "string", max: 10 }),
		photoId,
		position: { type: "number", integer: true, min: 0, max: 10_000 },
		sourceUrl: { type: "string", max: 1000 },
		size: { type: "string", max: 2 },
		status: { type: "enum", values: ["ok", "failed"] },
		sha256: nullable(sha),
		phash: nullable(hex16),
		bytes: nullable({ type: "number", integer: true, min: 0 }),
		width: nullable({ type: "number", integer: true, min: 0 }),
		height: nullable({ type: "number", integer: true, min: 0 }),
		imageSha256: nullable(sha),
		duplicate: { type: "enum", values: ["exact", "near"], nullable: true, optional: true },
		distance: nullable({ type: "number", integer: true, min: 0, max: 64 }),
		firstSeen: iso,
		lastSeen: iso,
		failure: { type: "object", nullable: true, optional: true },
	},
} as const;

/**
 * The store's `photo-index` service (part of the store role): the actions the photos service
 * writes and reads the index through. `hooks` are the store's own (database outages answered as
 * retryable 503s).
 */
export function photoIndexService(config: Config, hooks: ServiceSchema["hooks"]): DbServiceSchema {
	const adapter = createStoreAdapter<IndexDoc>(config, "photos");
	let instance: PhotoIndex | null = null;
	const index = () => {
		if (!instance)
			throw new MoleculerRetryableError("photo index is not connected yet", 503, "STORE_NOT_READY", {
				upstream: true,
			});
		return instance;
	};
	return {
		name: "photo-index",
		hooks,
		mixins: [dbMixin],
		adapter: adapter.adapter,
		settings: { idField: "_id" },
		actions: {
			// Every read and write goes through the actions below.
			create: false,
			insert: false,
			update: false,
			remove: false,
			list: false,
			find: false,
			count: false,
			get: false,
			photos: {
				params: { key: propertyKey },
				handler(ctx: Context<{ key: string }>) {
					return index().photosOf(ctx.params.key);
				},
			},
			photo: {
				params: { key: propertyKey, photoId },
				handler(ctx: Context<{ key: string; photoId: string }>) {
					return index().photo(ctx.params.key, ctx.params.photoId);
				},
			},
			image: {
				params: { sha256: sha },
				handler(ctx: Context<{ sha256: string }>) {
					return index().image(ctx.params.sha256);
				},
			},
			byBands: {
				params: { bands: { type: "array", length: 8, items: band } },
				handler(ctx: Context<{ bands: string[] }>) {
					return index().imagesByBands(ctx.params.bands);
				},
			},
			addImage: {
				params: { image: imageRule },
				handler(ctx: Context<{ image: ImageDoc }>) {
					return index().addImage(ctx.params.image);
				},
			},
			savePhotos: {
				params: { photos: { type: "array", max: 500, items: photoRule } },
				async handler(ctx: Context<{ photos: PhotoDoc[] }>) {
					return { saved: await index().savePhotos(ctx.params.photos) };
				},
			},
			counts: {
				handler() {
					return index().counts();
				},
			},
		},
		async afterConnected(this: { adapter: DbAdapter }) {
			const idx = new PhotoIndex(adapter.collection(this.adapter));
			await idx.ensureIndexes();
			instance = idx;
		},
	};
}
