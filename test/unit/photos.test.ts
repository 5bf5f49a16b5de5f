/**
 * Photos (issue 18), the pure parts: URLs and ids, image checks and hashes (on real JPEGs encoded by
 * sharp), the filesystem object store's atomic writes, and how jobs plan and order photos tasks.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import sharp from "sharp";
import { newTask, PHOTOS_SOURCE, validateRequest } from "../../src/jobs/plan.ts";
import { parseCollectCommand } from "../../src/jobs/repl.ts";
import { phaseOpen } from "../../src/jobs/task-machine.ts";
import { analyzeImage, hamming, PhotoRejectedError, phashBands } from "../../src/photos/hash.ts";
import { FsObjectStore, imageObjectKey, sweepUnindexed } from "../../src/photos/object-store.ts";
import { listingPhotos, photoIdOf, photoUrl } from "../../src/photos/urls.ts";

async function picture(seed: number, width = 640, height = 480, quality = 85): Promise<Buffer> {
	const w = 32;
	const h = 24;
	const px = Buffer.alloc(w * h * 3);
	let x = seed * 2654435761;
	for (let i = 0; i < px.length; i++) {
		x = (x * 1103515245 + 12345) >>> 0;
		px[i] = x >>> 24;
	}
	return sharp(px, { raw: { width: w, height: h, channels: 3 } })
		.resize(width, height, { kernel: "cubic" })
		.jpeg({ quality })
		.toBuffer();
}

describe("photo URLs", () => {
	test("ids from sparkplatform URLs at any size; the CDN URL at the configured size", () => {
		assert.equal(
			photoIdOf("https://cdn.photos.sparkplatform.com/az/20250101123456789012345678-t.jpg"),
			"20250101123456789012345678",
		);
		assert.equal(photoIdOf("https://example.com/az/abc_1-o.jpg?x=1"), "abc_1");
		assert.equal(photoIdOf("https://example.com/photo.jpg"), null);
		assert.equal(photoUrl("http://127.0.0.1:9/", "abc", "l"), "http://127.0.0.1:9/az/abc-l.jpg");
	});

	test("a listing's photos keep their order, once each whatever the sizes named", () => {
		const base = "https://cdn.photos.sparkplatform.com/az/";
		const got = listingPhotos(
			[`${base}b-t.jpg`, `${base}a-m.jpg`, `${base}b-l.jpg`, "not a photo"],
			"m",
			null,
		);
		assert.deepEqual(
			got.map((g) => g.id),
			["b", "a"],
		);
		assert.equal(got[0]!.sourceUrl, `${base}b-m.jpg`);
	});
});

describe("image checks and hashes", () => {
	test("a re-encoded or resized copy is within a few bits; another picture is far", async () => {
		const a = await analyzeImage(await picture(1), 10_000_000);
		const aSmall = await analyzeImage(await picture(1, 480, 360, 60), 10_000_000);
		const b = await analyzeImage(await picture(2), 10_000_000);
		assert.match(a.phash, /^[0-9a-f]{16}$/);
		assert.match(a.sha256, /^[0-9a-f]{64}$/);
		assert.equal(a.format, "jpeg");
		assert.equal(a.width, 640);
		assert.notEqual(a.sha256, aSmall.sha256);
		assert.ok(hamming(a.phash, aSmall.phash) <= 4, `near copy distance ${hamming(a.phash, aSmall.phash)}`);
		assert.ok(hamming(a.phash, b.phash) > 10, `other picture distance ${hamming(a.phash, b.phash)}`);
	});

	test("two hashes within distance 7 share a band", () => {
		const a = "0123456789abcdef";
		// Flip one bit in each of 7 bands: the 8th band still agrees.
		const b = a
			.split("")
			.map((c, i) => (i % 2 === 0 && i < 14 ? (Number.parseInt(c, 16) ^ 1).toString(16) : c))
			.join("");
		assert.equal(hamming(a, b), 7);
		const [ba, bb] = [phashBands(a), phashBands(b)];
		assert.ok(ba.some((x, i) => x === bb[i]));
	});

	test("not an image, truncated, oversized, empty: each a PhotoRejectedError with its reason", async () => {
		const jpeg = await picture(3);
		const reasonOf = async (buf: Buffer, max = 10_000_000) => {
			try {
				await analyzeImage(buf, max);
				return "accepted";
			} catch (err) {
				assert.ok(err instanceof PhotoRejectedError);
				return err.reason;
			}
		};
		assert.equal(await reasonOf(Buffer.from("<html>not an image</html>")), "not-an-image");
		assert.equal(await reasonOf(jpeg.subarray(0, Math.floor(jpeg.length * 0.6))), "truncated");
		assert.equal(await reasonOf(jpeg, jpeg.length - 1), "oversized");
		assert.equal(await reasonOf(Buffer.alloc(0)), "empty");
		assert.equal(await reasonOf(jpeg), "accepted");
	});
});

describe("filesystem object store", () => {
	test("writes whole objects under content-addressed keys; stray temporary files are swept", async () => {
		const dir = await mkdtemp(join(tmpdir(), "saguaro-objects-"));
		try {
			const store = new FsObjectStore(dir);
			const key = imageObjectKey("ab".repeat(32), "jpg");
			assert.equal(key, `images/ab/ab/${"ab".repeat(32)}.jpg`);
			assert.equal(await store.exists(key), false);
			await store.put(key, Buffer.from("hello"), "image/jpeg");
			await store.put(key, Buffer.from("hello"), "image/jpeg");
			assert.equal(await store.exists(key), true);
			const obj = await store.get(key);
			assert.equal(obj?.size, 5);
			assert.equal(obj?.contentType, "image/jpeg");
			const chunks: Buffer[] = [];
			for await (const c of obj!.body) chunks.push(c as Buffer);
			assert.equal(Buffer.concat(chunks).toString(), "hello");
			assert.deepEqual(await readdir(join(dir, "images/ab/ab")), [`${"ab".repeat(32)}.jpg`]);
			// What a writer killed mid-write leaves: a temporary file, never the object's name.
			const stray = join(dir, "images/ab/ab", `x.jpg.tmp-123-abcdef`);
			await writeFile(stray, "half");
			const old = new Date(Date.now() - 120_000);
			await utimes(stray, old, old);
			assert.equal(await store.sweepTemporary(), 1);
			assert.deepEqual(await readdir(join(dir, "images/ab/ab")), [`${"ab".repeat(32)}.jpg`]);
			// An object no index entry names (its writer died before indexing it) is swept once old.
			const orphan = imageObjectKey("cd".repeat(32), "jpg");
			await store.put(orphan, Buffer.from("orphan"), "image/jpeg");
			const indexed = async (sha: string) => sha === "ab".repeat(32);
			assert.deepEqual((await sweepUnindexed(store, indexed, 3_600_000)).removed, [], "young objects kept");
			const swept = await sweepUnindexed(store, indexed, 3_600_000, Date.now() + 7_200_000);
			assert.deepEqual(swept, { objects: 2, removed: [orphan] });
			assert.equal(await store.exists(key), true);
			assert.equal(await store.exists(orphan), false);
			await assert.rejects(store.put("../escape.jpg", Buffer.from("x"), "image/jpeg"), RangeError);
			assert.equal(await store.get("images/none.jpg"), null);
		} finally {
			await rm(dir, { recursive: true, force: true });
		}
	});
});

describe("photos in jobs", () => {
	test("photos is never a default source; photos: true adds it", () => {
		const available = ["maricopa", "mls", PHOTOS_SOURCE];
		assert.deepEqual(validateRequest({ zips: ["85031"] }, available, available, false).sources, [
			"maricopa",
			"mls",
		]);
		assert.deepEqual(
			validateRequest({ zips: ["85031"], sources: ["mls"], photos: true }, available, available, false)
				.sources,
			["mls", PHOTOS_SOURCE],
		);
		assert.throws(
			() => validateRequest({ zips: ["85031"], photos: true }, ["mls"], ["mls"], false),
			/photos/,
		);
	});

	test("the REPL's collect --photos asks for the photos", () => {
		assert.deepEqual(parseCollectCommand("collect 85031 --sources mls --photos"), {
			zips: ["85031"],
			sources: ["mls"],
			enrich: false,
			photos: true,
		});
	});

	test("a photos task waits for its ZIP's other collect tasks only", () => {
		const mlsA = newTask("j", "collect", "mls", "85031");
		const mlsB = newTask("j", "collect", "mls", "85033");
		const photosA = newTask("j", "collect", PHOTOS_SOURCE, "85031");
		const tasks = [mlsA, mlsB, photosA];
		assert.equal(phaseOpen(photosA, tasks), false);
		mlsA.state = "done";
		assert.equal(phaseOpen(photosA, tasks), true, "85033 still running does not hold 85031's photos");
		assert.equal(phaseOpen(mlsB, tasks), true);
	});
});
