/**
 * Photos across real node processes (NATS, Redis, FerretDB) with the S3 path against a real
 * S3-compatible server (gofakes3): two photo workers share the CDN budget (checked at the sandbox),
 * one is SIGKILLed mid-job, and the job carried on by the other leaves every picture of the ZIP
 * stored once in the bucket, each object whole (its bytes hash to its key), no photo twice.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import type moleculer from "moleculer";
import sharp from "sharp";
import { maxInSlidingWindow } from "../../sandbox/counters.ts";
import { type Sandbox, startSandbox } from "../../sandbox/index.ts";
import { freePort } from "../../src/utils/net.ts";
import { waitFor } from "../../src/utils/time.ts";
import { clientBroker, type NodeProcess, spawnNode } from "../harness/cluster.ts";
import { type S3Server, startS3 } from "../harness/s3.ts";
import { type RunningServer, startFerretDb, startNats, startRedis } from "../harness/servers.ts";
import { listingRecord, parcelRecord } from "../harness/store.ts";

const ZIP = "85033";
const RATE = 16;
const WINDOW_S = 2;

interface PhotoAnswer {
	items: number;
	new: number;
	updated: number;
	unchanged: number;
	failures: number;
}

describe("photos in a cluster, stored in S3", () => {
	let nats: RunningServer;
	let redis: RunningServer;
	let mongo: RunningServer;
	let s3: S3Server;
	let sb: Sandbox;
	let client: moleculer.ServiceBroker;
	const nodes: NodeProcess[] = [];
	const dataDir = mkdtempSync(join(tmpdir(), "saguaro-photos-cluster-"));
	let keys: string[] = [];

	before(async () => {
		[nats, redis, mongo, s3, sb] = await Promise.all([
			startNats(),
			startRedis(),
			startFerretDb(),
			startS3("saguaro-test"),
			startSandbox({
				seed: 33,
				world: { zips: [ZIP], parcelsPerZip: 120, listingShare: 0.15, relistShare: 0 },
				mls: { defences: { rateLimit: null }, photos: { exactShare: 0.1, nearShare: 0.1 } },
				proxies: { count: 3, listed: 3, behaviours: [] },
			}),
		]);
		const base = {
			...sb.env,
			TRANSPORTER: nats.url,
			REDIS_URL: redis.url,
			API_PORT: "0",
			HEARTBEAT_INTERVAL_S: "1",
			HEARTBEAT_TIMEOUT_S: "6",
			ENABLE_METRICS: "false",
		};
		const photosEnv = {
			...s3.env,
			PHOTOS_S3_PREFIX: "saguaro/",
			PHOTOS_RATE_PER_MIN: String(RATE),
			PHOTOS_RATE_WINDOW_S: String(WINDOW_S),
			PHOTOS_CONCURRENCY: "3",
		};
		nodes.push(
			spawnNode({
				nodeId: "infra-1",
				env: {
					...base,
					SERVICES: "store,proxy-pool",
					MONGO_URI: mongo.url,
					DATA_DIR: dataDir,
					PROXY_GATEWAY_PORT: String(await freePort()),
					PROXY_GATEWAY_HOST: "127.0.0.1",
					PROXY_CHECK_INTERVAL_S: "0",
				},
			}),
		);
		for (const id of ["ph-1", "ph-2"]) {
			nodes.push(spawnNode({ nodeId: id, env: { ...base, ...photosEnv, SERVICES: "photos" } }));
		}
		await Promise.all(nodes.map((n) => n.ready()));
		client = clientBroker(nats.url, "photos-test-client", { requestTimeout: 0 });
		await client.start();
		await client.waitForServices(["photos", "properties", "photo-index", "proxy-pool"], 30_000);
		const records = [
			...(sb.world.byZip.get(ZIP) ?? []).map((p) => ({
				source: "maricopa",
				sourceId: p.apn,
				record: parcelRecord(p),
			})),
			...(sb.world.listingsByZip.get(ZIP) ?? []).map((l) => ({
				source: "mls",
				sourceId: l.mlsId,
				record: listingRecord(l),
			})),
		];
		await client.call("properties.ingest", { records }, { timeout: 120_000 });
		const page = await client.call<{ rows: { key: string; photos?: string[] }[] }, object>(
			"properties.find",
			{
				zip: ZIP,
				afterKey: "",
				pageSize: 500,
			},
		);
		keys = page.rows.filter((r) => (r.photos ?? []).length > 0).map((r) => r.key);
	});

	after(async () => {
		await client?.stop().catch(() => {});
		await Promise.all(nodes.map((n) => n.stop()));
		await Promise.all([nats?.stop(), redis?.stop(), mongo?.stop(), s3?.stop(), sb?.stop()]);
		rmSync(dataDir, { recursive: true, force: true });
	});

	test("a worker SIGKILLed mid-job: the job carried on elsewhere stores each picture once, every object whole, the budget held", async () => {
		const ids: string[] = [];
		for (const key of keys) {
			const p = await client.call<{ photos: string[] }, object>("properties.get", { key });
			for (const u of p.photos) ids.push(/\/az\/(\d+)-/.exec(u)![1]!);
		}
		const pictures = new Set(ids.map((id) => sb.mls.photos.truth(id)!.picture));
		assert.ok(
			ids.length > 60 && pictures.size < ids.length,
			`photos with duplicates (${ids.length}, ${pictures.size})`,
		);
		const started = Date.now();

		// Both workers on the ZIP at once (as two attempts would be), then ph-1 dies mid-way.
		const first = client
			.call("photos.collectZip", { zip: ZIP, jobId: "job-kill" }, { nodeID: "ph-1", timeout: 600_000 })
			.catch((err: Error) => err);
		await waitFor(
			async () =>
				((await client.call<{ images: number }, object>("photo-index.counts", {})).images ?? 0) >= 15,
			"ph-1 to store some images",
			120_000,
			200,
		);
		nodes[1]!.kill("SIGKILL");
		assert.ok((await first) instanceof Error, "the killed worker's call failed");
		const r = await client.call<PhotoAnswer, object>(
			"photos.collectZip",
			{ zip: ZIP, jobId: "job-kill" },
			{ nodeID: "ph-2", timeout: 600_000 },
		);
		assert.equal(r.failures, 0);
		assert.equal(r.items, ids.length);

		// The index: one image per picture, each photo once, folded onto its picture's image.
		const counts = await client.call<{ images: number; photos: number; failed: number }, object>(
			"photo-index.counts",
			{},
		);
		assert.equal(counts.images, pictures.size, "each picture stored once");
		assert.equal(counts.photos, ids.length, "each photo once");
		assert.equal(counts.failed, 0);
		const imageOf = new Map<string, string>();
		const indexed = new Set<string>();
		for (const key of keys) {
			const list = await client.call<{ photos: { photoId: string; image: string }[] }, object>(
				"photos.list",
				{ key },
			);
			assert.equal(new Set(list.photos.map((p) => p.photoId)).size, list.photos.length);
			for (const ph of list.photos) {
				const pic = sb.mls.photos.truth(ph.photoId)!.picture;
				if (imageOf.has(pic)) assert.equal(ph.image, imageOf.get(pic));
				else imageOf.set(pic, ph.image);
				indexed.add(ph.image);
			}
		}

		// The bucket: every indexed image's object is there and whole (its bytes hash to its name and
		// decode); a worker killed between an object and its index entry leaves at most a whole
		// unindexed object, never a partial one.
		const s3c = new S3Client({
			region: "us-east-1",
			endpoint: s3.url,
			forcePathStyle: true,
			credentials: { accessKeyId: "k", secretAccessKey: "s" },
		});
		try {
			const listed = await s3c.send(
				new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: "saguaro/images/" }),
			);
			const objects = (listed.Contents ?? []).map((o) => o.Key!);
			for (const sha of indexed) {
				assert.ok(
					objects.some((k) => k.includes(sha)),
					`object of image ${sha.slice(0, 12)} in the bucket`,
				);
			}
			assert.ok(
				objects.length <= indexed.size + 4,
				`few unindexed objects (${objects.length - indexed.size})`,
			);
			for (const k of objects) {
				const got = await s3c.send(new GetObjectCommand({ Bucket: s3.bucket, Key: k }));
				const bytes = Buffer.from(await got.Body!.transformToByteArray());
				const sha = createHash("sha256").update(bytes).digest("hex");
				assert.ok(k.endsWith(`${sha}.jpg`), `object ${k} is whole`);
				await sharp(bytes, { failOn: "warning" }).raw().toBuffer();
			}
		} finally {
			s3c.destroy();
		}

		// The sweep removes only objects the index does not name (none are old enough to go here).
		const sweep = await client.call<{ objects: number; removed: number }, object>(
			"photos.sweep",
			{ olderThanH: 1 },
			{ nodeID: "ph-2" },
		);
		assert.equal(sweep.removed, 0);
		assert.ok(sweep.objects >= indexed.size);

		// One budget for both workers, at the CDN.
		const times = sb.mls.server.counters
			.records({ kind: "photo" })
			.map((x) => x.t)
			.filter((t) => t >= started - 1000)
			.sort((a, b) => a - b);
		const most = maxInSlidingWindow(times, WINDOW_S * 1000);
		assert.ok(most <= RATE, `at most ${RATE} photo requests in any ${WINDOW_S} s (saw ${most})`);

		// A re-run fetches nothing.
		const again = await client.call<PhotoAnswer & { requests: number }, object>(
			"photos.collectZip",
			{ zip: ZIP },
			{ nodeID: "ph-2", timeout: 600_000 },
		);
		assert.equal(again.new, 0);
		assert.equal(again.requests, 0);
		assert.equal(again.unchanged, ids.length);

		// A photo streamed back from the bucket through the photos service.
		const { photos } = await client.call<{ photos: { photoId: string }[] }, object>("photos.list", {
			key: keys[0],
		});
		const stream = await client.call<NodeJS.ReadableStream, object>("photos.object", {
			key: keys[0],
			photoId: photos[0]!.photoId,
		});
		const chunks: Buffer[] = [];
		for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
		const meta = await sharp(Buffer.concat(chunks)).metadata();
		assert.equal(meta.format, "jpeg");
	});
});
