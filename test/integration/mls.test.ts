/**
 * The mls service end to end against the sandbox: the MLS site (datacenter traffic denied, so every
 * request goes through proxy-pool's gateway to the sandbox proxy farm), real Chromium for the pages
 * whose facts are filled by script, and the store, where every listing must land on its parcel.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Sandbox, startSandbox } from "../../sandbox/index.ts";
import { loadConfig } from "../../src/config/index.ts";
import type { CollectResult } from "../../src/mls/scraper.ts";
import { type RunningNode, startNode } from "../../src/node/start-node.ts";
import { freePort } from "../../src/utils/net.ts";
import { type RunningServer, startFerretDb } from "../harness/servers.ts";

const ZIP = "85031";

describe("mls service against the sandbox", () => {
	let sandbox: Sandbox;
	let node: RunningNode;
	let dataDir: string;
	let ferret: RunningServer;

	before(async () => {
		sandbox = await startSandbox({
			seed: 11,
			world: { zips: [ZIP], parcelsPerZip: 160, listingShare: 0.15, relistShare: 0 },
			mls: { pageSize: 8, jsRenderedShare: 0.3 },
			proxies: { count: 4, listed: 4, behaviours: [] },
			captcha: { solveDelayMs: 200, unsolvableRate: 0 },
		});
		ferret = await startFerretDb();
		dataDir = await mkdtemp(join(tmpdir(), "saguaro-mls-"));
		const config = loadConfig({
			...sandbox.env,
			NODE_ID: "mls-test",
			SERVICES: "store,proxy-pool,browser-pool,mls",
			DATA_DIR: dataDir,
			MONGO_URI: ferret.url,
			LOG_LEVEL: "warn",
			METRICS_PORT: "0",
			HEALTH_PORT: "0",
			API_PORT: "0",
			REPL: "off",
			PROXY_GATEWAY_PORT: String(await freePort()),
			PROXY_GATEWAY_HOST: "127.0.0.1",
			MLS_RATE_PER_MIN: "6000",
			BROWSER_COUNT: "1",
			BROWSER_CONTEXTS: "2",
			REQUEST_TIMEOUT_MS: "120000",
		});
		node = await startNode(config);
		// The parcels the maricopa source would have stored: listings must merge onto them.
		for (const parcel of sandbox.world.byZip.get(ZIP) ?? []) {
			await node.broker.call("properties.merge", {
				source: "maricopa",
				sourceId: parcel.apn,
				record: {
					apn: parcel.apn,
					address: { street: parcel.situsAddress, city: parcel.city, state: "AZ", zip: parcel.zip },
					propertyType: parcel.propertyType,
				},
			});
		}
	});

	after(async () => {
		await node?.stop();
		await sandbox?.stop();
		await ferret?.stop();
		if (dataDir) await rm(dataDir, { recursive: true, force: true });
	});

	test("every listing of a ZIP is collected, script-filled pages through the browser, each merged onto its parcel", async () => {
		const expected = sandbox.mls.listingIds(ZIP);
		const jsIds = expected.filter((id) => sandbox.mls.isJsRendered(id));
		assert.ok(expected.length >= 10 && jsIds.length > 0, "the ZIP has listings, some script-filled");

		const result = await node.broker.call<CollectResult, object>(
			"mls.collectZip",
			{ zip: ZIP },
			{ timeout: 240_000 },
		);
		assert.equal(result.failures, 0, JSON.stringify(result.failed));
		assert.equal(result.listings, expected.length);
		assert.equal(result.new + result.updated + result.unchanged, expected.length);
		assert.ok(result.browserPages >= jsIds.length, "script-filled pages were rendered");

		for (const id of expected) {
			const listing = sandbox.world.listingById.get(id)!;
			const apn = sandbox.world.truth.listingApn[id]!;
			const prop = await node.broker.call<Record<string, unknown> | null, object>("properties.byApn", {
				apn,
			});
			assert.ok(prop, `parcel ${apn} exists`);
			assert.ok((prop.mlsIds as string[]).includes(id), `listing ${id} merged onto parcel ${apn}`);
			const raw = await node.broker.call<{ payload: Record<string, unknown> } | null, object>("raw.record", {
				source: "mls",
				sourceId: id,
			});
			assert.ok(raw, `raw record of ${id}`);
			assert.equal(raw.payload.price, listing.price);
			assert.equal(raw.payload.beds, listing.beds, `beds of ${id} (js: ${sandbox.mls.isJsRendered(id)})`);
			assert.equal(raw.payload.yearBuilt, listing.yearBuilt);
		}
		// Nothing reached the site without a proxy: the site denies datacenter traffic.
		assert.equal(sandbox.mls.defenceStats().denied, 0);

		// A second run within MLS_LISTING_MAX_AGE_H (a retried task, say) reads the search pages and
		// fetches no listing again.
		const again = await node.broker.call<CollectResult, object>(
			"mls.collectZip",
			{ zip: ZIP },
			{ timeout: 240_000 },
		);
		assert.equal(again.listings, expected.length);
		assert.equal(again.fresh, expected.length);
		assert.equal(again.unchanged, expected.length);
		assert.equal(again.browserPages, 0);
		assert.ok(again.requests < result.requests / 2, `requests ${again.requests} vs ${result.requests}`);
	});
});
