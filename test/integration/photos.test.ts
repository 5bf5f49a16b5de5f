/**
 * The photos service end to end on the sandbox, embedded (NeDB store, photos on the filesystem):
 * the MLS simulator's photo CDN behind its per-IP defences (direct traffic denied, so every photo
 * goes through proxy-pool's gateway to the proxy farm), generated images with true and near
 * duplicates across listings and some bad input, ground truth from the sandbox.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { maxInSlidingWindow } from "../../sandbox/counters.ts";
import { type Sandbox, startSandbox } from "../../sandbox/index.ts";
import { loadConfig } from "../../src/config/index.ts";
import { type RunningNode, startNode } from "../../src/node/start-node.ts";
import type { PhotoDoc } from "../../src/store/photo-index.ts";
import { freePort } from "../../src/utils/net.ts";
import { waitFor } from "../../src/utils/time.ts";
import { listingRecord, parcelRecord } from "../harness/store.ts";

const ZIP = "85031";
const RATE = 30;
const WINDOW_S = 2;

interface PhotoAnswer {
	items: number;
	new: number;
	updated: number;
	unchanged: number;
	requests: number;
	failures: number;
	failed: { id: string; reason: string }[];
	photos: {
		seen: number;
		new: number;
		duplicate: number;
		exact: number;
		near: number;
		failed: number;
		bytes: number;
	};
}

async function walk(dir: string): Promise<string[]> {
	const out: string[] = [];
	for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
		const p = join(dir, e.name);
		if (e.isDirectory()) out.push(...(await walk(p)));
		else out.push(p);
	}
	return out;
}

describe("photos service on the sandbox (embedded, filesystem storage)", () => {
	let sandbox: Sandbox;
	let node: RunningNode;
	let dataDir: string;
	let apiPort: number;
	let keys: string[] = [];

	before(async () => {
		sandbox = await startSandbox({
			seed: 18,
			world: { zips: [ZIP], parcelsPerZip: 160, listingShare: 0.15, relistShare: 0 },
			// No rate limit on the proxies' IPs here: this test is about photos, not bans.
			mls: {
				defences: { rateLimit: null },
				photos: { exactShare: 0.1, nearShare: 0.1, badShare: 0.04, oversizedBytes: 3 * 1024 * 1024 },
			},
			proxies: { count: 3, listed: 3, behaviours: [] },
		});
		dataDir = await mkdtemp(join(tmpdir(), "saguaro-photos-"));
		apiPort = await freePort();
		const config = loadConfig({
			...sandbox.env,
			NODE_ID: "photos-test",
			SERVICES: "store,proxy-pool,photos,api",
			DATA_DIR: dataDir,
			LOG_LEVEL: "warn",
			METRICS_PORT: "0",
			HEALTH_PORT: "0",
			API_PORT: String(apiPort),
			REPL: "off",
			PROXY_GATEWAY_PORT: String(await freePort()),
			PROXY_GATEWAY_HOST: "127.0.0.1",
			PROXY_CHECK_INTERVAL_S: "0",
			PHOTOS_RATE_PER_MIN: String(RATE),
			PHOTOS_RATE_WINDOW_S: String(WINDOW_S),
			PHOTOS_MAX_BYTES: String(2 * 1024 * 1024),
			PHOTOS_WARN_NEW: "20",
			REQUEST_TIMEOUT_MS: "300000",
		});
		node = await startNode(config);
		const records = [
			...(sandbox.world.byZip.get(ZIP) ?? []).map((p) => ({
				source: "maricopa",
				sourceId: p.apn,
				record: parcelRecord(p),
			})),
			...(sandbox.world.listingsByZip.get(ZIP) ?? []).map((l) => ({
				source: "mls",
				sourceId: l.mlsId,
				record: listingRecord(l),
			})),
		];
		await node.broker.call("properties.ingest", { records });
		const page = await node.broker.call<{ rows: { key: string; photos?: string[] }[] }, object>(
			"properties.find",
			{ zip: ZIP, afterKey: "", pageSize: 500 },
		);
		keys = page.rows.filter((r) => (r.photos ?? []).length > 0).map((r) => r.key);
	});

	after(async () => {
		await node?.stop();
		await sandbox?.stop();
		if (dataDir) await rm(dataDir, { recursive: true, force: true });
	});

	/** Ground truth of the photos the stored properties name. */
	async function truthOfStored() {
		const ids: string[] = [];
		for (const key of keys) {
			const p = await node.broker.call<{ photos: string[] }, object>("properties.get", { key });
			for (const u of p.photos) ids.push(/\/az\/(\d+)-/.exec(u)![1]!);
		}
		const truth = ids.map((id) => sandbox.mls.photos.truth(id)!);
		const good = truth.filter((t) => !t.bad);
		return { truth, good, bad: truth.filter((t) => t.bad), pictures: new Set(good.map((t) => t.picture)) };
	}

	test("every ground-truth picture of the ZIP is stored once; exact and near copies folded; bad input recorded", async () => {
		const warnings: unknown[] = [];
		node.broker.createService({
			name: "photo-warnings",
			events: {
				"photos.warning"(ctx: { params: unknown }) {
					warnings.push(ctx.params);
				},
			},
		});
		const { truth, good, bad, pictures } = await truthOfStored();
		assert.ok(
			keys.length >= 5 && truth.length > 60,
			`a ZIP with listings and photos (${keys.length}, ${truth.length})`,
		);
		assert.ok(good.some((t) => t.kind === "exact") && good.some((t) => t.kind === "near") && bad.length >= 2);

		const started = Date.now();
		const r = await node.broker.call<PhotoAnswer, object>(
			"photos.collectZip",
			{ zip: ZIP, jobId: "job-photos-1" },
			{ timeout: 300_000 },
		);
		assert.equal(r.items, truth.length, "every photo seen");
		assert.equal(r.new, pictures.size, "one new image per picture");
		assert.equal(r.updated, good.length - pictures.size, "every other good photo folded onto its picture");
		assert.equal(r.failures, bad.length, "bad input recorded as failures");
		for (const reason of ["not-an-image", "truncated", "oversized"]) {
			assert.ok(
				r.failed.some((f) => f.reason.startsWith(reason)),
				`a '${reason}' failure: ${JSON.stringify(r.failed)}`,
			);
		}

		// The index: each property's photos in its listing's order; one image per picture.
		const imageOfPicture = new Map<string, string>();
		for (const key of keys) {
			const list = await node.broker.call<{ photos: (PhotoDoc & { image: string | null })[] }, object>(
				"photos.list",
				{ key },
			);
			const p = await node.broker.call<{ photos: string[] }, object>("properties.get", { key });
			assert.deepEqual(
				list.photos.map((x) => x.photoId),
				p.photos.map((u) => /\/az\/(\d+)-/.exec(u)![1]!),
				"the listing's order",
			);
			for (const ph of list.photos) {
				const t = sandbox.mls.photos.truth(ph.photoId)!;
				if (t.bad) {
					assert.equal(ph.status, "failed");
					continue;
				}
				assert.equal(ph.status, "ok");
				assert.ok(
					ph.sha256 &&
						ph.phash &&
						ph.bytes &&
						ph.firstSeen &&
						ph.lastSeen &&
						ph.sourceUrl.includes(ph.photoId),
				);
				const seen = imageOfPicture.get(t.picture);
				if (seen) assert.equal(ph.image, seen, `photo ${ph.photoId} folded onto its picture's image`);
				else imageOfPicture.set(t.picture, ph.image!);
			}
		}
		assert.equal(new Set(imageOfPicture.values()).size, pictures.size, "distinct pictures, distinct images");

		// The object store: one whole file per picture, nothing temporary, nothing for bad input.
		const files = await walk(join(dataDir, "photos"));
		assert.equal(files.filter((f) => f.endsWith(".jpg")).length, pictures.size);
		assert.equal(files.filter((f) => f.includes(".tmp-")).length, 0);

		// The CDN budget held in every sliding window (all proxies' requests together).
		const times = sandbox.mls.server.counters
			.records({ kind: "photo" })
			.map((x) => x.t)
			.filter((t) => t >= started - 1000)
			.sort((a, b) => a - b);
		assert.ok(times.length >= truth.length);
		assert.ok(
			maxInSlidingWindow(times, WINDOW_S * 1000) <= RATE,
			`at most ${RATE} photo requests in any ${WINDOW_S} s (saw ${maxInSlidingWindow(times, WINDOW_S * 1000)})`,
		);

		// The job's counts, and the warning past PHOTOS_WARN_NEW (20), once.
		const job = await node.broker.call<Record<string, unknown>, object>("photos.job", {
			jobId: "job-photos-1",
		});
		assert.equal(job.new, pictures.size);
		assert.equal(job.seen, truth.length);
		assert.equal(job.warned, true);
		assert.equal(warnings.length, 1);
	});

	test("the sandbox CDN: defended like the site (direct traffic denied), ground truth on its control route", async () => {
		const t = sandbox.mls.photos.truthOfZip(ZIP)[0]!;
		const direct = await fetch(`${sandbox.env.PHOTOS_CDN_URL}/az/${t.photoId}-m.jpg`);
		assert.equal(direct.status, 403);
		await direct.arrayBuffer();
		const truth = (await (await fetch(`${sandbox.mls.url}/__sandbox/mls/photos?zip=${ZIP}`)).json()) as {
			photoId: string;
			picture: string;
		}[];
		assert.equal(truth.length, sandbox.mls.photos.truthOfZip(ZIP).length);
		assert.equal(truth[0]!.picture, t.picture);
	});

	test("a re-run fetches nothing new", async () => {
		const before = sandbox.mls.server.counters.records({ kind: "photo" }).length;
		const r = await node.broker.call<PhotoAnswer, object>(
			"photos.collectZip",
			{ zip: ZIP },
			{ timeout: 300_000 },
		);
		const { bad, good } = await truthOfStored();
		assert.equal(r.new, 0);
		assert.equal(r.unchanged, good.length);
		// Only the failed (bad) photos are asked for again; none is stored.
		assert.equal(r.failures, bad.length);
		assert.equal(sandbox.mls.server.counters.records({ kind: "photo" }).length - before, r.requests);
		assert.ok(r.requests <= bad.length * 4, `only failed photos retried (${r.requests})`);
	});

	test("REST: the ordered list as JSON and one photo streamed", async () => {
		const key = keys[0]!;
		const res = await fetch(`http://127.0.0.1:${apiPort}/api/properties/${encodeURIComponent(key)}/photos`);
		assert.equal(res.status, 200);
		const body = (await res.json()) as {
			key: string;
			photos: { photoId: string; href: string | null; bytes: number }[];
		};
		const first = body.photos.find((p) => p.href)!;
		const img = await fetch(`http://127.0.0.1:${apiPort}${first.href}`);
		assert.equal(img.status, 200);
		assert.equal(img.headers.get("content-type"), "image/jpeg");
		const bytes = Buffer.from(await img.arrayBuffer());
		assert.equal(bytes[0], 0xff);
		assert.equal(bytes[1], 0xd8);
		const missing = await fetch(
			`http://127.0.0.1:${apiPort}/api/properties/${encodeURIComponent(key)}/photos/123`,
		);
		assert.equal(missing.status, 404);
		await missing.arrayBuffer();

		// The dashboard shows the property's thumbnails (its CSP allows blob: images only from itself).
		const browser = await chromium.launch({
			executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
			args: ["--no-sandbox", "--headless=new"],
		});
		try {
			const page = await browser.newPage();
			const errors: string[] = [];
			page.on("console", (msg) => {
				// Other panels ask for services this node does not run (404/503): only CSP and script errors count.
				if (msg.type() === "error" && !msg.text().startsWith("Failed to load resource"))
					errors.push(msg.text());
			});
			page.on("pageerror", (err) => errors.push(err.message));
			await page.goto(`http://127.0.0.1:${apiPort}/`);
			await page.fill("#photos-form input[name=key]", key);
			await page.click("#photos-form button");
			await page.waitForFunction(
				(n) => {
					const imgs = Array.from(document.querySelectorAll("#thumbs img")) as HTMLImageElement[];
					return imgs.length === n && imgs.every((i) => i.complete && i.naturalWidth > 0);
				},
				body.photos.filter((p) => p.href).length,
				{ timeout: 30_000 },
			);
			assert.deepEqual(errors, []);
		} finally {
			await browser.close();
		}
	});
});

describe("a job collecting listings and their photos: collect({sources: ['mls'], photos: true})", () => {
	let sandbox: Sandbox;
	let node: RunningNode;
	let dataDir: string;
	const zips = ["85008", "85301"];

	before(async () => {
		sandbox = await startSandbox({
			seed: 21,
			world: { zips, parcelsPerZip: 60, listingShare: 0.12, relistShare: 0 },
			mls: { jsRenderedShare: 0, defences: { rateLimit: null } },
			proxies: { count: 3, listed: 3, behaviours: [] },
		});
		dataDir = await mkdtemp(join(tmpdir(), "saguaro-photos-job-"));
		node = await startNode(
			loadConfig({
				...sandbox.env,
				NODE_ID: "photos-job-test",
				SERVICES: "store,proxy-pool,orchestrator,mls,photos",
				DATA_DIR: dataDir,
				LOG_LEVEL: "warn",
				METRICS_PORT: "0",
				HEALTH_PORT: "0",
				API_PORT: "0",
				REPL: "off",
				PROXY_GATEWAY_PORT: String(await freePort()),
				PROXY_GATEWAY_HOST: "127.0.0.1",
				PROXY_CHECK_INTERVAL_S: "0",
				MLS_USE_BROWSER: "false",
				MLS_RATE_PER_MIN: "6000",
				PHOTOS_RATE_PER_MIN: "600",
				ORCHESTRATOR_TICK_MS: "100",
			}),
		);
	});

	after(async () => {
		await node?.stop();
		await sandbox?.stop();
		if (dataDir) await rm(dataDir, { recursive: true, force: true });
	});

	test("the photos tasks run after their ZIP's listings and store every picture of them", async () => {
		interface View {
			job: { id: string; status: string; spec: { sources: string[] } };
			progress: { bySource: Record<string, { counts: { items: number; new: number } }> };
			tasks?: { source: string; zip: string; startedAt: number | null; finishedAt: number | null }[];
		}
		const started = await node.broker.call<View, object>("orchestrator.collect", {
			zips,
			sources: ["mls"],
			photos: true,
		});
		assert.deepEqual(started.job.spec.sources, ["mls", "photos"]);
		const done = await waitFor(
			async () => {
				const s = await node.broker.call<View, object>("orchestrator.status", {
					id: started.job.id,
					tasks: true,
				});
				return ["running", "cancelling"].includes(s.job.status) ? null : s;
			},
			"the job to finish",
			240_000,
			200,
		);
		assert.equal(done.job.status, "completed");
		for (const zip of zips) {
			const mls = done.tasks!.find((t) => t.source === "mls" && t.zip === zip)!;
			const photos = done.tasks!.find((t) => t.source === "photos" && t.zip === zip)!;
			assert.ok(photos.startedAt! >= mls.finishedAt!, `${zip}: photos after the listings`);
		}
		const pictures = new Set<string>();
		let photoCount = 0;
		for (const zip of zips) {
			for (const l of sandbox.world.listingsByZip.get(zip) ?? []) {
				for (const id of l.photoIds) {
					photoCount++;
					pictures.add(sandbox.mls.photos.truth(id)!.picture);
				}
			}
		}
		const p = done.progress.bySource.photos!.counts;
		assert.equal(p.items, photoCount, "every photo of the collected listings seen");
		assert.equal(p.new, pictures.size, "each picture stored once");
		const job = await node.broker.call<{ seen: number; new: number; bytes: number }, object>("photos.job", {
			jobId: started.job.id,
		});
		assert.equal(job.seen, photoCount);
		assert.equal(job.new, pictures.size);
		assert.ok(job.bytes > 0);
	});
});
