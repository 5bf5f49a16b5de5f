/**
 * Per-key mutual exclusion around a property merge's read-modify-write.
 *
 * Why not only a version-checked replace: FerretDB 1.x (SQLite) does not apply a filtered
 * replaceOne/updateOne atomically — 8 concurrent `replaceOne({_id, version: 1}, …)` report up to 4
 * winners — while an insert clashing on `_id` is refused reliably. So the cluster lock is an insert
 * into a lock collection (`_id` = key), released by delete, with an expiry so a holder that died
 * does not block the key forever. Correct on MongoDB too. NeDB is one process: an async mutex.
 */
import { randomUUID } from "node:crypto";
import type { Collection, Document } from "mongodb";
import { sleep } from "../utils/time.ts";

export interface KeyLocks {
	/** Run `fn` holding every key (taken in sorted order, so two callers cannot deadlock). */
	withLocks<T>(keys: string[], fn: () => Promise<T>): Promise<T>;
}

export class LockTimeoutError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "LockTimeoutError";
	}
}

const sortedUnique = (keys: string[]) => [...new Set(keys)].sort();

/** In-process mutex per key (embedded mode). */
export class LocalKeyLocks implements KeyLocks {
	private readonly tails = new Map<string, Promise<void>>();

	async withLocks<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
		const releases: (() => void)[] = [];
		try {
			for (const key of sortedUnique(keys)) releases.push(await this.lock(key));
			return await fn();
		} finally {
			for (const release of releases.reverse()) release();
		}
	}

	private async lock(key: string): Promise<() => void> {
		const previous = this.tails.get(key) ?? Promise.resolve();
		let release!: () => void;
		const current = new Promise<void>((res) => {
			release = res;
		});
		const tail = previous.then(() => current);
		this.tails.set(key, tail);
		await previous;
		return () => {
			release();
			if (this.tails.get(key) === tail) this.tails.delete(key);
		};
	}
}

interface LockDoc {
	_id: string;
	owner: string;
	expiresAt: number;
}

/** Cluster-wide locks in a MongoDB collection (insert = acquire, delete = release). */
export class MongoKeyLocks implements KeyLocks {
	readonly collection: Collection<Document>;
	readonly ttlMs: number;
	readonly waitMs: number;

	constructor(collection: Collection<Document>, options: { ttlMs?: number; waitMs?: number } = {}) {
		this.collection = collection;
		this.ttlMs = options.ttlMs ?? 30_000;
		this.waitMs = options.waitMs ?? 60_000;
	}

	async withLocks<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
		const owner = randomUUID();
		const held: string[] = [];
		try {
			for (const key of sortedUnique(keys)) {
				await this.acquire(key, owner);
				held.push(key);
			}
			return await fn();
		} finally {
			for (const key of held.reverse()) {
				await this.collection.deleteOne({ _id: key, owner } as Document).catch(() => undefined);
			}
		}
	}

	private async acquire(key: string, owner: string): Promise<void> {
		const deadline = Date.now() + this.waitMs;
		for (let attempt = 1; ; attempt++) {
			try {
				await this.collection.insertOne({
					_id: key,
					owner,
					expiresAt: Date.now() + this.ttlMs,
				} as LockDoc as unknown as Document);
				return;
			} catch (err) {
				if ((err as { code?: number }).code !== 11000) throw err;
			}
			const current = (await this.collection.findOne({ _id: key } as Document)) as LockDoc | null;
			if (current && current.expiresAt < Date.now()) {
				// The holder died (or hung past the TTL): break its lock, then compete to insert again.
				await this.collection.deleteOne({ _id: key, owner: current.owner } as Document);
				continue;
			}
			if (Date.now() > deadline) throw new LockTimeoutError(`lock ${key} still held after ${this.waitMs} ms`);
			await sleep(Math.min(25, 1 + attempt) * (0.5 + Math.random()));
		}
	}
}
