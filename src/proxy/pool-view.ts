/**
 * The proxies a pool may lease, as last built from its sources and the run-time additions, with the
 * shared-state keys an acquire reads for them ready: an acquire builds neither the list nor its key
 * strings (a string built anew is also hashed anew by every Map lookup). Rebuilt when a source or the
 * run-time additions/removals change.
 */
import type { ProxyEndpoint } from "./proxy-url.ts";
import type { RuntimeAdditions } from "./runtime-additions.ts";

/** Prefix of every key of the pool in the shared state. */
export const P = "proxy:";

export const healthKey = (proxyId: string) => `${P}health:${proxyId}`;
export const banKey = (domain: string, proxyId: string) => `${P}ban:${domain}:${proxyId}`;

/** Domains whose ban keys a view keeps ready (past that, the cache starts over). */
const BAN_KEY_DOMAINS = 256;

interface Snapshot {
	sourcesVersion: number;
	added: ProxyEndpoint[];
	removed: Set<string>;
	list: ProxyEndpoint[];
	healthKeys: string[];
	healthKeyById: Map<string, string>;
	/** Per domain: the health keys of `list`, then its ban keys for that domain. */
	keysByDomain: Map<string, string[]>;
}

/**
 * The proxies an acquire chooses from, and the keys it reads for them in one go: the health record
 * of `list[i]` is `keys[i]`; for an acquire for a domain, its ban is `keys[list.length + i]`.
 */
export interface Candidates {
	list: ProxyEndpoint[];
	keys: string[];
	/** Whether `keys` holds ban keys (the acquire is for a domain). */
	forDomain: boolean;
}

export class PoolView {
	readonly #runtime: RuntimeAdditions;
	/** Country codes (upper case) kept among proxies tagged with one; empty = all. */
	readonly #countries: string[];
	/** Proxies per local source (file, env, provider). */
	readonly #sources = new Map<string, ProxyEndpoint[]>();
	/** Bumped by setSource, so the snapshot knows to rebuild. */
	#sourcesVersion = 0;
	#snapshot: Snapshot | null = null;

	constructor(runtime: RuntimeAdditions, countries: string[]) {
		this.#runtime = runtime;
		this.#countries = countries;
	}

	setSource(name: string, proxies: ProxyEndpoint[]): void {
		this.#sources.set(name, [...proxies]);
		this.#sourcesVersion++;
	}

	/** The snapshot for the sources and run-time additions as they are now. */
	current(): Snapshot {
		const snap = this.#snapshot;
		const added = this.#runtime.added;
		const removed = this.#runtime.removed;
		if (
			snap &&
			snap.sourcesVersion === this.#sourcesVersion &&
			snap.added === added &&
			snap.removed === removed
		) {
			return snap;
		}
		const list = this.#build();
		const healthKeys = list.map((p) => healthKey(p.id));
		this.#snapshot = {
			sourcesVersion: this.#sourcesVersion,
			added,
			removed,
			list,
			healthKeys,
			healthKeyById: new Map(list.map((p, i) => [p.id, healthKeys[i]!])),
			keysByDomain: new Map(),
		};
		return this.#snapshot;
	}

	/** What an acquire for `domain` chooses from, minus the `exclude`d proxy ids. */
	candidates(domain: string | null, exclude: readonly string[] | undefined): Candidates {
		const snap = this.current();
		if (exclude && exclude.length > 0) {
			const skip = new Set(exclude);
			const list: ProxyEndpoint[] = [];
			const keys: string[] = [];
			snap.list.forEach((p, i) => {
				if (skip.has(p.id)) return;
				list.push(p);
				keys.push(snap.healthKeys[i]!);
			});
			if (domain) for (const p of list) keys.push(banKey(domain, p.id));
			return { list, keys, forDomain: domain !== null };
		}
		if (!domain) return { list: snap.list, keys: snap.healthKeys, forDomain: false };
		let keys = snap.keysByDomain.get(domain);
		if (!keys) {
			if (snap.keysByDomain.size >= BAN_KEY_DOMAINS) snap.keysByDomain.clear();
			keys = [...snap.healthKeys, ...snap.list.map((p) => banKey(domain, p.id))];
			snap.keysByDomain.set(domain, keys);
		}
		return { list: snap.list, keys, forDomain: true };
	}

	#build(): ProxyEndpoint[] {
		const byId = new Map<string, ProxyEndpoint>();
		const countries = this.#countries;
		const inScope = (p: ProxyEndpoint) =>
			countries.length === 0 || !p.countryCode || countries.includes(p.countryCode.toUpperCase());
		for (const list of [...this.#sources.values(), this.#runtime.added]) {
			for (const p of list) if (!byId.has(p.id) && inScope(p)) byId.set(p.id, p);
		}
		for (const id of this.#runtime.removed) byId.delete(id);
		return [...byId.values()];
	}
}
