/**
 * Adapter selection: NeDB files under DATA_DIR (moleculer-db's MemoryAdapter, embedded mode, one
 * process) unless MONGO_URI is set, then MongoDB through the v6 driver (cluster mode).
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import DbService, { type DbAdapter } from "moleculer-db";
import type { Config } from "../config/index.ts";
import { type Datastore, type DocCollection, MongoCollection, NedbCollection } from "./collection.ts";
import { type KeyLocks, LocalKeyLocks, type LockDoc, MongoKeyLocks } from "./key-lock.ts";
import { MongoV6Adapter } from "./mongo-adapter.ts";

export interface StoreAdapter<T extends { _id: string }> {
	adapter: DbAdapter;
	kind: "nedb" | "mongo";
	/**
	 * The store's view of the service's connected adapter. Pass the service's own `this.adapter`:
	 * Moleculer's schema merge may hand the service a copy of the adapter given in the schema.
	 */
	collection(connected: DbAdapter): DocCollection<T>;
	/** Locks for merges: a lock collection beside the data on MongoDB, an in-process mutex on NeDB. */
	locks(connected: DbAdapter): KeyLocks;
}

export function createStoreAdapter<T extends { _id: string }>(config: Config, name: string): StoreAdapter<T> {
	if (config.core.mongoUri) {
		const adapter = new MongoV6Adapter(config.core.mongoUri, name);
		return {
			adapter,
			kind: "mongo",
			collection: (connected) =>
				new MongoCollection<T>((connected as MongoV6Adapter).collection, {
					bulkMaxOps: config.store.bulkMaxOps,
					scansIn: (connected as MongoV6Adapter).scansIn,
				}),
			locks: (connected) => {
				const db = (connected as MongoV6Adapter).db;
				if (!db) throw new Error(`${name}: MongoDB adapter is not connected`);
				return new MongoKeyLocks(
					new MongoCollection<LockDoc>(db.collection(`${name}_locks`), {
						bulkMaxOps: config.store.bulkMaxOps,
						scansIn: (connected as MongoV6Adapter).scansIn,
					}),
				);
			},
		};
	}
	const dir = resolve(config.core.dataDir);
	mkdirSync(dir, { recursive: true });
	const adapter = new NedbAdapter({ filename: join(dir, `${name}.db`) });
	return {
		adapter,
		kind: "nedb",
		locks: () => new LocalKeyLocks(),
		collection: (connected) => {
			const db = nedbOf(connected);
			if (!db) throw new Error(`${name}: NeDB adapter is not connected`);
			if (config.store.nedbCompactS > 0) db.setAutocompactionInterval(config.store.nedbCompactS * 1000);
			return new NedbCollection<T>(db);
		},
	};
}

/**
 * moleculer-db's MemoryAdapter whose disconnect also stops NeDB's autocompaction timer, which would
 * otherwise keep the process alive after the broker stopped.
 */
class NedbAdapter extends DbService.MemoryAdapter {
	disconnect(): Promise<void> {
		nedbOf(this)?.stopAutocompaction();
		return super.disconnect();
	}
}

function isDatastore(value: unknown): value is Datastore {
	return typeof value === "object" && value !== null && "findAsync" in value && "stopAutocompaction" in value;
}

/** The NeDB Datastore a connected MemoryAdapter holds as `db` (moleculer-db's typings leave it out). */
function nedbOf(adapter: object): Datastore | undefined {
	return "db" in adapter && isDatastore(adapter.db) ? adapter.db : undefined;
}
