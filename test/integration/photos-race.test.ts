/**
 * Two photo collectors at once on listings that share pictures (byte copies and re-encoded/resized
 * copies), over one shared state, one index and one object store, fetching from a real HTTP server
 * on loopback: each picture is stored once, whichever collector gets there first, because the
 * near-duplicate check and a new image's write run under the cluster-wide lock.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import sharp from "sharp";
import { HostPolicy } from "../../src/core/host-policy.ts";
import {
	emptyPhotoCounts,
	type FailedPhoto,
	PhotoCollector,
	type PhotoIndexPort,
} from "../../src/photos/collector.ts";
import { PhotoFetcher } from "../../src/photos/fetcher.ts";
import { FsObjectStore } from "../../src/photos/object-store.ts";
import { MemorySharedState } from "../../src/shared-state/memory.ts";
import type { ImageDoc, PhotoDoc } from "../../src/store/photo-index.ts";

const PICTURES = 12;

async function render(picture: number, width: number, quality: number): Promise<Buffer> {
	const px = Buffer.alloc(24 * 18 * 3);
	let x = (picture + 1) * 2654435761;
	for (let i = 0; i < px.length; i++) {
		x = (x * 1103515245 + 12345) >>> 0;
		px[i] = x >>> 24;
	}
	return sharp(px, { raw: { width: 24, height: 18, channels: 3 } })
		.resize(width, Math.round((width * 3) / 4), { kernel: "cubic" })
		.jpeg({ quality })
		.toBuffer();
}

/** An index with the photo-index service's semantics: images unique by sha, photos upserted. */
function memoryIndex(): PhotoIndexPort & { images: Map<string, ImageDoc>; photoDocs: Map<string, PhotoDoc> } {
	const images = new Map<string, ImageDoc>();
	const photoDocs = new Map<string, PhotoDoc>();
	const tick = () => new Promise((r) => setImmediate(r));
	return {
		images,
		photoDocs,
		async photos(key) {
			await tick();
			return [...photoDocs.values()].filter((d) => d.key === key);
		},
		async image(sha) {
			await tick();
			return images.get(sha) ?? null;
		},
		async byBands(bands) {
			await tick();
			return [...images.values()].filter((img) =>
				bands.some((b, i) => (img as unknown as Record<string, string>)[`pb${i}`] === b),
			);
		},
		async addImage(image) {
			await tick();
			const existing = images.get(image.sha256);
			if (existing) return { image: existing, created: false };
			images.set(image.sha256, image);
			return { image, created: true };
		},
		async savePhotos(docs) {
			await tick();
			for (const d of docs) photoDocs.set(d._id, d);
		},
	};
}

describe("two photo collectors racing on shared pictures", () => {
	let server: Server;
	let base: string;
	let dir: string;
	// Photo id -> [picture, width, quality]: listing A has each picture once; listing B a byte copy
	// of half of them and a re-encoded/resized copy of the other half.
	const plan = new Map<string, [number, number, number]>();
	for (let p = 0; p < PICTURES; p++) {
		plan.set(`a${p}`, [p, 640, 85]);
		plan.set(`b${p}`, p % 2 === 0 ? [p, 640, 85] : [p, 512, 60]);
	}

	before(async () => {
		dir = await mkdtemp(join(tmpdir(), "saguaro-photo-race-"));
		server = createServer((req, res) => {
			const m = /^\/az\/(\w+)-m\.jpg$/.exec(req.url ?? "");
			const spec = m ? plan.get(m[1]!) : undefined;
			if (!spec) {
				res.writeHead(404).end();
				return;
			}
			void render(...spec).then((body) => {
				// A little latency so both collectors are mid-flight together.
				setTimeout(
					() => res.writeHead(200, { "content-type": "image/jpeg" }).end(body),
					5 + Math.random() * 20,
				);
			});
		});
		await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
		base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
	});

	after(async () => {
		await new Promise((r) => server.close(r));
		await rm(dir, { recursive: true, force: true });
	});

	test("each picture stored once, every photo resolved to its picture's image", async () => {
		const state = new MemorySharedState();
		const index = memoryIndex();
		const objects = new FsObjectStore(dir);
		const collector = () =>
			new PhotoCollector({
				index,
				objects,
				state,
				fetcher: new PhotoFetcher({
					policy: new HostPolicy(state, { host: "race-cdn", rate: { points: 1000, durationMs: 1000 } }),
					proxies: null,
					timeoutMs: 10_000,
					maxBytes: 5_000_000,
				}),
				cdnUrl: base,
				size: "m",
				maxBytes: 5_000_000,
				nearDistance: 6,
				concurrency: 4,
			});
		const ids = (prefix: string) =>
			Array.from({ length: PICTURES }, (_, p) => `${base}/az/${prefix}${p}-t.jpg`);
		const counts = [emptyPhotoCounts(), emptyPhotoCounts()];
		const failed: FailedPhoto[] = [];
		await Promise.all([
			collector().collectListing({ key: "A", zip: null, photos: ids("a") }, counts[0]!, failed),
			collector().collectListing({ key: "B", zip: null, photos: ids("b") }, counts[1]!, failed),
		]);
		assert.deepEqual(failed, []);
		assert.equal(index.images.size, PICTURES, "one image per picture");
		assert.equal(counts[0]!.new + counts[1]!.new, PICTURES);
		assert.equal(counts[0]!.duplicate + counts[1]!.duplicate, PICTURES);
		for (let p = 0; p < PICTURES; p++) {
			const a = index.photoDocs.get(`ph:A|a${p}`)!;
			const b = index.photoDocs.get(`ph:B|b${p}`)!;
			assert.equal(a.imageSha256, b.imageSha256, `picture ${p}: both photos on one image`);
		}
		const files = [];
		for (const a of await readdir(join(dir, "images")))
			for (const b of await readdir(join(dir, "images", a)))
				files.push(...(await readdir(join(dir, "images", a, b))));
		assert.equal(files.length, PICTURES, "one object per picture, no temporary file");
	});
});
