/**
 * A local broker running the store service (raw + properties) on NeDB files in a temporary
 * directory or on a MongoDB-protocol server, for the store's contract suite and its writer processes.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import moleculer from "moleculer";
import { createBrokerOptions } from "../../moleculer.config.ts";
import type { Listing, Parcel } from "../../sandbox/generator.ts";
import storeService from "../../services/store.service.ts";
import { loadConfig } from "../../src/config/index.ts";
import type { AssessorParcelRecord, MlsListingRecord } from "../../src/domain/records.ts";
import { MemorySharedState } from "../../src/shared-state/index.ts";

export interface StoreBroker {
	broker: moleculer.ServiceBroker;
	stop(): Promise<void>;
}

/** `mongoUri` unset = NeDB under a fresh temporary DATA_DIR (removed on stop). */
export async function startStoreBroker(mongoUri?: string, nodeId = "store-test"): Promise<StoreBroker> {
	const dataDir = mongoUri ? null : mkdtempSync(join(tmpdir(), "saguaro-store-"));
	const env: NodeJS.ProcessEnv = {
		NODE_ID: nodeId,
		STORE_NEDB_COMPACT_S: "0",
		METRICS_PORT: "0",
		ENABLE_METRICS: "false",
	};
	if (mongoUri) env.MONGO_URI = mongoUri;
	else env.DATA_DIR = dataDir!;
	const config = loadConfig(env);
	const state = new MemorySharedState();
	// The project's own broker options (cacher, validator, middlewares), as a real node has them.
	const broker = new moleculer.ServiceBroker({
		...createBrokerOptions(config),
		logger: process.env.STORE_TEST_LOG ? { type: "Console", options: { level: "warn" } } : false,
	});
	for (const schema of [storeService({ config, state })].flat()) broker.createService(schema);
	await broker.start();
	return {
		broker,
		async stop() {
			await broker.stop();
			await state.close();
			if (dataDir) rmSync(dataDir, { recursive: true, force: true });
		},
	};
}

/** The same server URL with a database of its own, so suites sharing one server do not meet. */
export function withDatabase(url: string, db: string): string {
	const u = new URL(url);
	u.pathname = `/${db}`;
	return u.toString();
}

/** The sandbox's ground-truth parcel as the maricopa collector would hand it to the store. */
export function parcelRecord(p: Parcel): AssessorParcelRecord {
	const r = p.residential;
	const v = p.valuations[0];
	const mmddyyyy = (d: string) => `${d.slice(6, 10)}-${d.slice(0, 2)}-${d.slice(3, 5)}`;
	return {
		apn: p.apnDisplay,
		origin: "parcel",
		address: { street: p.situsAddress, city: p.city, state: "AZ", zip: p.zip },
		propertyType: p.propertyType,
		subdivision: p.subdivision,
		mcr: p.mcr,
		useCode: p.useCode,
		zoning: p.zoning,
		isRental: p.isRental,
		lat: p.lat,
		long: p.long,
		owner: {
			name: p.owner.name,
			mailingAddress: p.owner.mailingAddress1,
			mailingCity: p.owner.mailingCity,
			mailingState: p.owner.mailingState,
			mailingZip: p.owner.mailingZip,
			deedDate: mmddyyyy(p.owner.deedDate),
			deedType: p.owner.deedType,
			salePrice: p.owner.salePrice,
			saleDate: p.owner.saleDate ? `${p.owner.saleDate.slice(3)}-${p.owner.saleDate.slice(0, 2)}` : null,
		},
		valuations: v
			? [
					{
						taxYear: v.taxYear,
						fullCashValue: v.fullCashValue,
						limitedPropertyValue: v.limitedPropertyValue,
						legalClass: v.legalClass,
						assessedFcv: v.assessedFcv,
						assessedLpv: v.assessedLpv,
					},
				]
			: [],
		facts: {
			lotSize: p.lotSize,
			livableSpace: r?.livableSpace ?? null,
			constructionYear: p.constructionYear,
			bathFixtures: r?.bathFixtures ?? null,
			pool: r?.pool ?? null,
			garages: r?.garages ?? null,
			carports: r?.carports ?? null,
			exteriorWalls: r?.exteriorWalls ?? null,
			roofType: r?.roofType ?? null,
		},
	};
}

/** The sandbox's listing as the mls collector would hand it to the store. */
export function listingRecord(l: Listing): MlsListingRecord {
	return {
		mlsId: l.mlsId,
		address: { street: l.address, city: l.city, state: l.state, zip: l.addressZip ?? l.zip },
		price: l.price,
		status: l.status,
		listDate: l.listDate,
		beds: l.beds,
		fullBaths: l.fullBaths,
		halfBaths: l.halfBaths,
		sqft: l.sqft,
		lotSqft: l.lotSqft,
		yearBuilt: l.yearBuilt,
		garageSpaces: l.garageSpaces,
		pool: l.pool,
		hoaFee: l.hoaFee,
		propertyType: l.propertyType,
		description: l.description,
		photos: l.photoIds.map((id) => `https://cdn.photos.sparkplatform.com/az/${id}-m.jpg`),
	};
}
