/**
 * Per-key mutual exclusion around a property merge's read-modify-write.
 *
 * Why not only a version-checked replace: FerretDB 1.x (SQLite) does not apply a filtered
 * replaceOne/updateOne atomically — 8 concurrent `replaceOne({_id, version: 1}, …)` report up to 4
 * winners — while an insert clashing on `_id` is refused reliably. So the cluster lock is an insert
 * into a lock collection (`_id` = key), released by delete, with an expiry so a holder that died
 * does not block the key forever. Correct on MongoDB too. NeDB is one process: an async mutex.
 *
 * Batches (`tryLockMany`) take what is free in one request (an unordered insert of every lock
 * document) and never wait: the caller merges the records whose keys it got and sends the others
 * down the per-record path, which waits.
 */
import { randomUUID } from "node:crypto";
import { TransientError } from "../core/errors.ts";
import { contentionMs, LOCK_CONTENTION } from "../utils/backoff.ts";
import { sleep } from "../utils/time.ts";
import { CountingCollection, type DocCollection, DuplicateKeyError, type Tally } from "./collection.ts";

export interface HeldLocks {
	/** The keys obtained (a subset of those asked for). */
	acquired: Set<string>;
	release(): Promise<void>;
}

export interface KeyLocks {
	/** Run `fn` holding every key (taken in sorted order, so two callers cannot deadlock). */
	withLocks<T>(keys: string[], fn: () => Promise<T>): Promise<T>;
	/** Take every key that is free now, without waiting for the others. */
	tryLockMany(keys: string[]): Promise<HeldLocks>;
	/** The same locks, their round trips counted in `tallies` too. */
	counting(tallies: Tally[]): KeyLocks;
}

/** A key's lock was not had in time: retried later (LOCK_TIMEOUT, 503). */
export class LockTimeoutError extends TransientError {
	constructor(message: string) {
		super(message, { type: "LOCK_TIMEOUT" });
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

	async tryLockMany(keys: string[]): Promise<HeldLocks> {
		const acquired = new Set<string>();
		const releases: (() => void)[] = [];
		for (const key of sortedUnique(keys)) {
			if (this.tails.has(key)) continue;
			// Free: lock() takes it at once (its wait is on an already settled promise).
			releases.push(this.take(key));
			acquired.add(key);
		}
		return {
			acquired,
			release: async () => {
				for (const release of releases.splice(0).reverse()) release();
			},
		};
	}

	counting(): KeyLocks {
		return this;
	}

	private async lock(key: string): Promise<() => void> {
		const previous = this.tails.get(key) ?? Promise.resolve();
		const release = this.take(key, previous);
		await previous;
		return release;
	}

	/** Queue behind `previous` (nothing: the key is free) and return the release. */
	private take(key: string, previous: Promise<void> = Promise.resolve()): () => void {
		let release!: () => void;
		const current = new Promise<void>((res) => {
			release = res;
		});
		const tail = previous.then(() => current);
		this.tails.set(key, tail);
		return () => {
			release();
			if (this.tails.get(key) === tail) this.tails.delete(key);
		};
	}
}

export interface LockDoc {
	_id: string;
	owner: string;
	expiresAt: number;
}

/** Cluster-wide locks in a MongoDB collection (insert = acquire, delete = release). */
export class MongoKeyLocks implements KeyLocks {
	readonly collection: DocCollection<LockDoc>;
	readonly ttlMs: number;
	readonly waitMs: number;

	constructor(collection: DocCollection<LockDoc>, options: { ttlMs?: number; waitMs?: number } = {}) {
		this.collection = collection;
		this.ttlMs = options.ttlMs ?? 30_000;
		this.waitMs = options.waitMs ?? 60_000;
	}

	counting(tallies: Tally[]): KeyLocks {
		return new MongoKeyLocks(new CountingCollection(this.collection, tallies), {
			ttlMs: this.ttlMs,
			waitMs: this.waitMs,
		});
	}

	/** Delete the locks whose holder died (or hung past the TTL); the number deleted. */
	async deleteExpired(ids?: string[]): Promise<number> {
		const query: Record<string, unknown> = { expiresAt: { $lt: Date.now() } };
		if (ids) query._id = { $in: ids };
		return await this.collection.deleteMany(query);
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
				await this.collection.deleteIf({ _id: key, owner }).catch(() => undefined);
			}
		}
	}

	async tryLockMany(keys: string[]): Promise<HeldLocks> {
		const owner = randomUUID();
		const lockDoc = (key: string): LockDoc => ({ _id: key, owner, expiresAt: Date.now() + this.ttlMs });
		const wanted = sortedUnique(keys);
		const acquired = new Set(wanted);
		let { duplicates } = await this.collection.insertMany(wanted.map(lockDoc));
		// Some are held: those held past their expiry belong to a dead holder; clear them and try once more.
		if (duplicates.length > 0 && (await this.deleteExpired(duplicates)) > 0) {
			({ duplicates } = await this.collection.insertMany(duplicates.map(lockDoc)));
		}
		for (const key of duplicates) acquired.delete(key);
		let held = [...acquired];
		return {
			acquired,
			release: async () => {
				if (held.length === 0) return;
				const ids = held;
				held = [];
				await this.collection.deleteMany({ _id: { $in: ids }, owner });
			},
		};
	}

	private async acquire(key: string, owner: string): Promise<void> {
		const deadline = Date.now() + this.waitMs;
		for (let attempt = 1; ; attempt++) {
			try {
				await this.collection.insert({ _id: key, owner, expiresAt: Date.now() + this.ttlMs });
				return;
			} catch (err) {
				if (!(err instanceof DuplicateKeyError)) throw err;
			}
			const current = await this.collection.findOne({ _id: key });
			if (current && current.expiresAt < Date.now()) {
				// The holder died (or hung past the TTL): break its lock, then compete to insert again.
				await this.collection.deleteIf({ _id: key, owner: current.owner });
				continue;
			}
			if (Date.now() > deadline) throw new LockTimeoutError(`lock ${key} still held after ${this.waitMs} ms`);
			await sleep(contentionMs(attempt, LOCK_CONTENTION));
		}
	}
}
