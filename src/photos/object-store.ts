/**
 * Where photo bytes live: content-addressed objects (`images/ab/cd/<sha256>.<ext>`), written once.
 *
 * - `FsObjectStore` (embedded default): files under DATA_DIR/photos. A write goes to a temporary
 *   file in the same directory, is flushed to disk, then renamed over the final name, so a process
 *   killed mid-write leaves at most a stray `.tmp-*` file (swept at start), never a half object.
 * - `S3ObjectStore` (cluster): any S3-compatible store through the AWS SDK v3 client. A PUT is
 *   atomic: the object is there whole or not at all.
 *
 * `sweepUnindexed` removes whole objects no index entry names (a writer killed between an object and
 * its index entry, whose photo then resolved to another copy of the picture).
 */
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import type { Readable } from "node:stream";
import {
	DeleteObjectCommand,
	GetObjectCommand,
	HeadObjectCommand,
	ListObjectsV2Command,
	NoSuchKey,
	NotFound,
	PutObjectCommand,
	S3Client,
} from "@aws-sdk/client-s3";

export interface StoredObject {
	body: Readable;
	size: number;
	contentType: string;
}

export interface ObjectStore {
	readonly kind: "fs" | "s3";
	/** Where objects go, for logs and status (no credentials). */
	readonly where: string;
	/** Write the whole object (atomically); writing an existing key again replaces it whole. */
	put(key: string, body: Buffer, contentType: string): Promise<void>;
	exists(key: string): Promise<boolean>;
	get(key: string): Promise<StoredObject | null>;
	/** Objects whose key starts with `prefix`, with their last write time (ms). */
	list(prefix: string): AsyncIterable<{ key: string; modifiedMs: number }>;
	delete(key: string): Promise<void>;
	close(): Promise<void>;
}

/** Object key of an image: content-addressed, fanned out over two directory levels. */
export function imageObjectKey(sha256: string, ext: string): string {
	if (!/^[0-9a-f]{64}$/.test(sha256)) throw new RangeError("not a sha256 hex digest");
	return `images/${sha256.slice(0, 2)}/${sha256.slice(2, 4)}/${sha256}.${ext}`;
}

const KEY_SHAPE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,500}$/;

function checkKey(key: string): void {
	if (!KEY_SHAPE.test(key) || key.split("/").some((p) => p === ".." || p === "." || p === "")) {
		throw new RangeError(`invalid object key '${key.slice(0, 80)}'`);
	}
}

export class FsObjectStore implements ObjectStore {
	readonly kind = "fs" as const;
	readonly root: string;
	readonly where: string;

	constructor(root: string) {
		this.root = resolve(root);
		this.where = this.root;
	}

	#path(key: string): string {
		checkKey(key);
		const p = resolve(this.root, key);
		if (!p.startsWith(this.root + sep)) throw new RangeError("object key escapes the store");
		return p;
	}

	async put(key: string, body: Buffer, _contentType: string): Promise<void> {
		const path = this.#path(key);
		await mkdir(dirname(path), { recursive: true });
		const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
		const fh = await open(tmp, "wx");
		try {
			await fh.writeFile(body);
			await fh.sync();
		} catch (err) {
			await fh.close().catch(() => undefined);
			await rm(tmp, { force: true });
			throw err;
		}
		await fh.close();
		await rename(tmp, path);
		// The rename itself is durable once the directory is flushed.
		const dir = await open(dirname(path), "r");
		try {
			await dir.sync();
		} finally {
			await dir.close();
		}
	}

	async exists(key: string): Promise<boolean> {
		try {
			return (await stat(this.#path(key))).isFile();
		} catch {
			return false;
		}
	}

	async get(key: string): Promise<StoredObject | null> {
		const path = this.#path(key);
		let size: number;
		try {
			size = (await stat(path)).size;
		} catch {
			return null;
		}
		return { body: createReadStream(path), size, contentType: contentTypeOfKey(key) };
	}

	/** Remove temporary files left by a process killed mid-write (older than `olderThanMs`). */
	async sweepTemporary(olderThanMs = 60_000): Promise<number> {
		let removed = 0;
		const walk = async (dir: string): Promise<void> => {
			let entries: import("node:fs").Dirent[];
			try {
				entries = await readdir(dir, { withFileTypes: true });
			} catch {
				return;
			}
			for (const e of entries) {
				const p = join(dir, e.name);
				if (e.isDirectory()) await walk(p);
				else if (/\.tmp-\d+-[0-9a-f]+$/.test(e.name)) {
					const s = await stat(p).catch(() => null);
					if (s && Date.now() - s.mtimeMs > olderThanMs) {
						await rm(p, { force: true });
						removed++;
					}
				}
			}
		};
		await walk(this.root);
		return removed;
	}

	async *list(prefix: string): AsyncIterable<{ key: string; modifiedMs: number }> {
		const walk = async function* (
			dir: string,
			rel: string,
		): AsyncGenerator<{ key: string; modifiedMs: number }> {
			let entries: import("node:fs").Dirent[];
			try {
				entries = await readdir(dir, { withFileTypes: true });
			} catch {
				return;
			}
			for (const e of entries) {
				const key = rel ? `${rel}/${e.name}` : e.name;
				if (e.isDirectory()) yield* walk(join(dir, e.name), key);
				else if (key.startsWith(prefix) && !/\.tmp-\d+-[0-9a-f]+$/.test(e.name)) {
					const st = await stat(join(dir, e.name)).catch(() => null);
					if (st) yield { key, modifiedMs: st.mtimeMs };
				}
			}
		};
		yield* walk(this.root, "");
	}

	async delete(key: string): Promise<void> {
		await rm(this.#path(key), { force: true });
	}

	async close(): Promise<void> {}
}

export interface S3Options {
	bucket: string;
	prefix: string;
	region: string;
	endpoint: string | null;
	accessKeyId: string | null;
	secretAccessKey: string | null;
}

export class S3ObjectStore implements ObjectStore {
	readonly kind = "s3" as const;
	readonly where: string;
	readonly #client: S3Client;
	readonly #bucket: string;
	readonly #prefix: string;

	constructor(opts: S3Options) {
		this.#bucket = opts.bucket;
		this.#prefix = opts.prefix;
		this.where = `s3://${opts.bucket}/${opts.prefix}${opts.endpoint ? ` at ${new URL(opts.endpoint).origin}` : ""}`;
		this.#client = new S3Client({
			region: opts.region,
			...(opts.endpoint ? { endpoint: opts.endpoint, forcePathStyle: true } : {}),
			...(opts.accessKeyId && opts.secretAccessKey
				? { credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } }
				: {}),
			maxAttempts: 4,
		});
	}

	#key(key: string): string {
		checkKey(key);
		return `${this.#prefix}${key}`;
	}

	async put(key: string, body: Buffer, contentType: string): Promise<void> {
		await this.#client.send(
			new PutObjectCommand({
				Bucket: this.#bucket,
				Key: this.#key(key),
				Body: body,
				ContentType: contentType,
			}),
		);
	}

	async exists(key: string): Promise<boolean> {
		try {
			await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#key(key) }));
			return true;
		} catch (err) {
			if (
				err instanceof NotFound ||
				err instanceof NoSuchKey ||
				(err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404
			)
				return false;
			throw err;
		}
	}

	async get(key: string): Promise<StoredObject | null> {
		try {
			const out = await this.#client.send(
				new GetObjectCommand({ Bucket: this.#bucket, Key: this.#key(key) }),
			);
			return {
				body: out.Body as Readable,
				size: Number(out.ContentLength ?? 0),
				contentType: out.ContentType ?? contentTypeOfKey(key),
			};
		} catch (err) {
			if (
				err instanceof NoSuchKey ||
				(err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404
			)
				return null;
			throw err;
		}
	}

	async *list(prefix: string): AsyncIterable<{ key: string; modifiedMs: number }> {
		let token: string | undefined;
		do {
			const page = await this.#client.send(
				new ListObjectsV2Command({
					Bucket: this.#bucket,
					Prefix: `${this.#prefix}${prefix}`,
					ContinuationToken: token,
				}),
			);
			for (const o of page.Contents ?? []) {
				if (!o.Key) continue;
				yield { key: o.Key.slice(this.#prefix.length), modifiedMs: o.LastModified?.getTime() ?? 0 };
			}
			token = page.IsTruncated ? page.NextContinuationToken : undefined;
		} while (token);
	}

	async delete(key: string): Promise<void> {
		await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#key(key) }));
	}

	async close(): Promise<void> {
		this.#client.destroy();
	}
}

function contentTypeOfKey(key: string): string {
	const ext = key.slice(key.lastIndexOf(".") + 1);
	return (
		{ jpg: "image/jpeg", png: "image/png", webp: "image/webp", gif: "image/gif", avif: "image/avif" }[ext] ??
		"application/octet-stream"
	);
}

/**
 * Delete image objects older than `olderThanMs` whose SHA-256 (their name) the index does not know;
 * answers how many were looked at and removed. Younger ones may belong to a registration under way.
 */
export async function sweepUnindexed(
	store: ObjectStore,
	indexed: (sha256: string) => Promise<boolean>,
	olderThanMs: number,
	now = Date.now(),
): Promise<{ objects: number; removed: string[] }> {
	let objects = 0;
	const removed: string[] = [];
	for await (const o of store.list("images/")) {
		objects++;
		const sha = /([0-9a-f]{64})\.[a-z0-9]+$/.exec(o.key)?.[1];
		if (!sha || now - o.modifiedMs < olderThanMs) continue;
		if (await indexed(sha)) continue;
		await store.delete(o.key);
		removed.push(o.key);
	}
	return { objects, removed };
}
