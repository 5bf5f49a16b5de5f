/**
 * The proxy pool: the proxies known to this node (from its sources) plus the cluster's view of
 * them, kept in the shared state so every node sees the same bans, failures and leases at once
 * (successes within `healthFlushMs`: src/proxy/health-writer.ts).
 *
 * Keys (all under `proxy:`):
 * - `health:<id>`          HealthRecord (read-modify-write: another node's concurrent update may drop
 *                          a sample or a batch of successes, which a moving average tolerates)
 * - `ban:<domain>:<id>`    a ban of one proxy by one site, expiring with the cooldown
 * - `slot:<id>:<n>`        the n-th concurrency slot of a proxy, held by a lease id (expires if the
 *                          holder dies, so a crashed node never leaks capacity)
 * - `lease:<leaseId>`      what a lease is for (proxy, domain, session): release works on any node
 *                          (none for the gateway's held leases, which their own process releases)
 * - `session:<key>`        sticky session -> proxy id
 * - `runtime`, `removed:<id>` proxies added and removed at run time (src/proxy/runtime-additions.ts)
 * - `uses`, `inflight`     counter maps per proxy id (for least-used and stats)
 * - `rr`                   round-robin cursor
 */
import type { AcquireParams, LeaseOutcome } from "../contracts/proxy-pool.ts";
import { TransientError } from "../core/errors.ts";
import type { SharedState } from "../shared-state/index.ts";
import { SecretBox } from "../utils/secret-box.ts";
import {
	defaultHealthOptions,
	type HealthOptions,
	type HealthRecord,
	type HealthState,
	healthState,
	healthWeight,
	isUsable,
} from "./health.ts";
import { HealthWriter } from "./health-writer.ts";
import { randomLeaseHex } from "./lease-ids.ts";
import { banKey, healthKey, P, PoolView } from "./pool-view.ts";
import { type ProxyEndpoint, type PublicProxy, toPublic } from "./proxy-url.ts";
import { type Candidate, orderCandidates, type RotationStrategy } from "./rotation.ts";
import { RuntimeAdditions } from "./runtime-additions.ts";

export interface PoolOptions {
	strategy: RotationStrategy;
	/** Leases at once per proxy across the cluster; 0 = unlimited. */
	maxConcurrency: number;
	banCooldownMs: number;
	sessionTtlMs: number;
	/** A lease not released by then frees its slot anyway (the holder is presumed dead). */
	leaseTtlMs: number;
	health: HealthOptions;
	/** Statuses that mean "this site refuses this proxy". */
	banStatuses: number[];
	/**
	 * Successes are written to the health records at most this late, gathered per proxy (failures are
	 * written at once); 0 = every outcome at once.
	 */
	healthFlushMs: number;
	random?: () => number;
	now?: () => number;
	/**
	 * Seals run-time additions with a password before they are stored. Absent = a per-process key
	 * (fine while the state is this process's memory); null = such additions are refused.
	 */
	secretBox?: SecretBox | null;
	/**
	 * The node's REGION (issue 15): run-time additions, removals and sticky sessions are kept per
	 * region, so a region's pool is its own; health and bans stay shared (a proxy is one proxy).
	 */
	region?: string | null;
	/** Country codes (upper case) the pool keeps among proxies tagged with one; empty = all. */
	countries?: string[];
}

export const defaultPoolOptions: PoolOptions = {
	strategy: "weighted",
	maxConcurrency: 10,
	banCooldownMs: 600_000,
	sessionTtlMs: 600_000,
	leaseTtlMs: 300_000,
	health: defaultHealthOptions,
	banStatuses: [403, 429],
	healthFlushMs: 100,
};

/** A lease inside the pool's process: the endpoint with its credentials (ProxyLease is the bus's view). */
export interface Acquired {
	leaseId: string;
	proxy: ProxyEndpoint;
	domain: string | null;
	session: string | null;
	/** True when the session already had this proxy. */
	sticky: boolean;
}

/** A lease held in the process that took it (`acquireHeld`), with what its release needs. */
export interface HeldLease extends Acquired {
	/** The concurrency slot it holds (null without a cap). */
	slotKey: string | null;
}

export interface ProxyStatus extends PublicProxy {
	state: HealthState;
	health: HealthRecord | null;
	inFlight: number;
	uses: number;
	/** Domains that ban this proxy now, with seconds left. */
	bans: { domain: string; remainingS: number; reason: string }[];
}

interface LeaseRecord {
	proxyId: string;
	slotKey: string | null;
	domain: string | null;
	session: string | null;
	at: number;
}

interface BanRecord {
	reason: string;
	at: number;
}

const noCounts: Readonly<Record<string, number>> = Object.freeze({});

export function normalizeDomain(domain: string | undefined | null): string | null {
	if (!domain) return null;
	const d = domain.trim().toLowerCase().replace(/\.$/, "");
	return d === "" ? null : d;
}

/** No proxy can take a lease now (all busy, cooling down or banned): try later (429, retryable kind). */
export class NoProxyAvailableError extends TransientError {
	readonly reason: string;
	constructor(reason: string, data?: Record<string, unknown>) {
		super(`no proxy available: ${reason}`, {
			type: "NO_PROXY_AVAILABLE",
			code: 429,
			...(data ? { data } : {}),
		});
		this.reason = reason;
	}
}

export class ProxyPool {
	readonly state: SharedState;
	readonly options: PoolOptions;
	/** Run-time additions and removals, refreshed from the shared state. */
	readonly #runtime: RuntimeAdditions;
	readonly #now: () => number;
	readonly #random: () => number;
	/** Key prefix of what is the region's own: run-time additions, removals, sticky sessions. */
	readonly #scope: string;
	/** The proxies of the sources and run-time additions, with their state keys ready. */
	readonly #view: PoolView;
	readonly #health: HealthWriter;

	constructor(state: SharedState, options: Partial<PoolOptions> = {}) {
		this.state = state;
		this.options = { ...defaultPoolOptions, ...options };
		this.#now = this.options.now ?? Date.now;
		this.#random = this.options.random ?? Math.random;
		const box = options.secretBox === undefined ? SecretBox.ephemeral() : options.secretBox;
		this.#scope = this.options.region ? `${P}${this.options.region}:` : P;
		this.#runtime = new RuntimeAdditions(state, this.#scope, box, this.#now);
		this.#view = new PoolView(this.#runtime, this.options.countries ?? []);
		this.#health = new HealthWriter(state, {
			alpha: this.options.health.alpha,
			now: this.#now,
			flushMs: this.options.healthFlushMs,
		});
	}

	/** Run-time additions the last sync could not open (sealed under another key) or parse. */
	get unreadableRuntime(): number {
		return this.#runtime.unreadable;
	}

	/** Replace the proxies of one source (a reload of the file, a refresh of the provider list). */
	setSource(name: string, proxies: ProxyEndpoint[]): void {
		this.#view.setSource(name, proxies);
	}

	/** Every proxy this node may use, deduplicated by id, minus the removed ones and other countries'. */
	proxies(): ProxyEndpoint[] {
		return [...this.#view.current().list];
	}

	get(id: string): ProxyEndpoint | undefined {
		return this.#view.current().list.find((p) => p.id === id);
	}

	/** Pull run-time additions/removals made on any node. */
	async syncRuntime(): Promise<void> {
		await this.#runtime.sync();
	}

	/** Add a proxy for every node of the region (sealed when it has a password). */
	async add(url: string): Promise<ProxyEndpoint> {
		return this.#runtime.add(url);
	}

	/** Remove a proxy for every node of the region, whatever its source; false if it was unknown. */
	async remove(id: string): Promise<boolean> {
		const known = this.get(id) !== undefined;
		await this.#runtime.remove(id);
		return known;
	}

	/** A lease for `proxy-pool.acquire` callers: released by id, from any node (`release`). */
	async acquire(req: AcquireParams = {}): Promise<Acquired> {
		return this.#acquire(req, true);
	}

	/**
	 * A lease its taker holds in this process and gives back itself (`releaseHeld`): the gateway's
	 * lease per request. Its slot and counters are the cluster's as for any lease, but no record of it
	 * is stored, since no other node ever releases or looks it up (two fewer writes per request).
	 */
	async acquireHeld(req: AcquireParams = {}): Promise<HeldLease> {
		return this.#acquire(req, false);
	}

	async #acquire(req: AcquireParams, keepRecord: boolean): Promise<HeldLease> {
		const domain = normalizeDomain(req.domain);
		const session = req.session?.trim() || null;
		const { list: all, keys, forDomain } = this.#view.candidates(domain, req.exclude);
		if (all.length === 0) throw new NoProxyAvailableError("the pool is empty");
		const now = this.#now();
		const strategy = req.strategy ?? this.options.strategy;

		// One read for every health record and ban (one MGET on Redis), beside the round-robin cursor.
		const [records, cursor] = await Promise.all([
			this.state.getMany<HealthRecord | BanRecord>(keys),
			strategy === "round-robin" ? this.state.incr(`${P}rr`) : 0,
		]);
		const usable: ProxyEndpoint[] = [];
		const usableHealths: (HealthRecord | undefined)[] = [];
		const n = all.length;
		let banned = 0;
		for (let i = 0; i < n; i++) {
			const health = records[i] as HealthRecord | undefined;
			if (forDomain && records[n + i] !== undefined) banned++;
			else if (isUsable(health, now, this.options.health)) {
				usable.push(all[i]!);
				usableHealths.push(health);
			}
		}
		if (usable.length === 0) {
			throw new NoProxyAvailableError(
				banned > 0
					? `all ${all.length} proxies are dead or banned by ${domain}`
					: `all ${all.length} proxies are dead`,
			);
		}

		if (session) {
			const stickyId = await this.state.get<string>(`${this.#scope}session:${session}`);
			const sticky = stickyId ? usable.find((p) => p.id === stickyId) : undefined;
			if (sticky) {
				const lease = await this.#take(sticky, domain, session, now, keepRecord);
				if (lease) {
					await this.state.set(`${this.#scope}session:${session}`, sticky.id, this.options.sessionTtlMs);
					return { ...lease, sticky: true };
				}
			}
		}

		// Only least-used orders by the counters: the other strategies do not read them.
		const [uses, inflight] =
			strategy === "least-used"
				? await Promise.all([this.state.hgetall(`${P}uses`), this.state.hgetall(`${P}inflight`)])
				: [noCounts, noCounts];
		const candidates: Candidate[] = usable.map((p, i) => ({
			id: p.id,
			weight: healthWeight(usableHealths[i]),
			inFlight: inflight[p.id] ?? 0,
			uses: uses[p.id] ?? 0,
		}));
		const byId = new Map(usable.map((p) => [p.id, p]));
		for (const c of orderCandidates(candidates, strategy, cursor - 1, this.#random)) {
			const lease = await this.#take(byId.get(c.id)!, domain, session, now, keepRecord);
			if (!lease) continue;
			if (session) await this.state.set(`${this.#scope}session:${session}`, c.id, this.options.sessionTtlMs);
			return { ...lease, sticky: false };
		}
		throw new NoProxyAvailableError(
			`all usable proxies are at their concurrency cap (${this.options.maxConcurrency})`,
		);
	}

	/** Takes a free concurrency slot of `proxy`, or null when all its slots are held. */
	async #take(
		proxy: ProxyEndpoint,
		domain: string | null,
		session: string | null,
		now: number,
		keepRecord: boolean,
	): Promise<Omit<HeldLease, "sticky"> | null> {
		const leaseId = `${proxy.id}.${randomLeaseHex()}`;
		let slotKey: string | null = null;
		const cap = this.options.maxConcurrency;
		if (cap > 0) {
			// Start at a random slot so concurrent acquirers rarely race for the same key.
			const start = Math.floor(this.#random() * cap);
			for (let i = 0; i < cap && slotKey === null; i++) {
				const key = `${P}slot:${proxy.id}:${(start + i) % cap}`;
				if (await this.state.setIfAbsent(key, leaseId, this.options.leaseTtlMs)) slotKey = key;
			}
			if (slotKey === null) return null;
		}
		const counted = Promise.all([
			this.state.hincr(`${P}uses`, proxy.id, 1),
			this.state.hincr(`${P}inflight`, proxy.id, 1),
		]);
		if (keepRecord) {
			const record: LeaseRecord = { proxyId: proxy.id, slotKey, domain, session, at: now };
			await Promise.all([counted, this.state.set(`${P}lease:${leaseId}`, record, this.options.leaseTtlMs)]);
		} else await counted;
		return { leaseId, proxy, domain, session, slotKey };
	}

	/** The proxy a live lease is for (the gateway serves `acquire` callers through it). */
	async leasedProxy(leaseId: string): Promise<ProxyEndpoint | null> {
		const record = await this.state.get<LeaseRecord>(`${P}lease:${leaseId}`);
		return record ? (this.get(record.proxyId) ?? null) : null;
	}

	/**
	 * Ends a lease and learns from its outcome: proxy failures count against its health (and end a
	 * sticky session); a refusal by the site (403/429/captcha) bans the proxy for that domain.
	 * Returns false for an unknown or expired lease (its slot has already been freed).
	 */
	async release(leaseId: string, outcome: LeaseOutcome): Promise<{ known: boolean; banned: boolean }> {
		// Taken and deleted at once: of two releases of one lease (a retry after a lost reply), one counts.
		const record = await this.state.getAndDelete<LeaseRecord>(`${P}lease:${leaseId}`);
		if (!record) return { known: false, banned: false };
		const banned = await this.#end(
			leaseId,
			record.proxyId,
			record.slotKey,
			record.domain,
			record.session,
			outcome,
		);
		return { known: true, banned };
	}

	/** Gives back a lease taken with `acquireHeld`, and learns from its outcome as `release` does. */
	async releaseHeld(lease: HeldLease, outcome: LeaseOutcome): Promise<{ banned: boolean }> {
		const banned = await this.#end(
			lease.leaseId,
			lease.proxy.id,
			lease.slotKey,
			lease.domain,
			lease.session,
			outcome,
		);
		return { banned };
	}

	/** Frees a lease's slot and in-flight count, and learns from its outcome; true when it banned. */
	async #end(
		leaseId: string,
		proxyId: string,
		slotKey: string | null,
		domain: string | null,
		session: string | null,
		outcome: LeaseOutcome,
	): Promise<boolean> {
		// The writes below are independent, so they go out together (one pipeline on Redis).
		const freed = Promise.all([
			// Free the slot only if it is still ours (after an expiry it may belong to someone else).
			slotKey ? this.state.deleteIfEquals(slotKey, leaseId) : false,
			this.state.hincr(`${P}inflight`, proxyId, -1),
		]);
		if (outcome.unused) {
			await freed;
			return false;
		}
		const [, banned] = await Promise.all([freed, this.learn(proxyId, outcome, domain, session)]);
		return banned;
	}

	/** Passive health and bans from an outcome. Returns true when the outcome banned the proxy. */
	async learn(
		proxyId: string,
		outcome: LeaseOutcome,
		domain: string | null,
		session: string | null = null,
	): Promise<boolean> {
		const refused =
			outcome.ok &&
			(outcome.blocked === true ||
				(outcome.status !== undefined && this.options.banStatuses.includes(outcome.status)));
		if (outcome.ok && !refused) {
			// The common case: gathered and written within healthFlushMs (src/proxy/health-writer.ts).
			this.#health.success(this.#healthKeyOf(proxyId), outcome.latencyMs);
			return false;
		}
		await this.recordHealth(proxyId, {
			ok: outcome.ok,
			...(outcome.latencyMs !== undefined ? { latencyMs: outcome.latencyMs } : {}),
			...(outcome.error !== undefined ? { error: outcome.error } : {}),
		});
		if (session) {
			const current = await this.state.get<string>(`${this.#scope}session:${session}`);
			if (current === proxyId) await this.state.del(`${this.#scope}session:${session}`);
		}
		if (refused && domain) {
			await this.ban(proxyId, domain, outcome.blocked ? "blocked" : `HTTP ${outcome.status}`);
			return true;
		}
		return false;
	}

	/** Records one outcome in the proxy's health at once (active checks, failures, refusals). */
	async recordHealth(
		proxyId: string,
		outcome: { ok: boolean; latencyMs?: number; error?: string },
	): Promise<HealthRecord> {
		return this.#health.record(this.#healthKeyOf(proxyId), outcome);
	}

	/** Writes the successes gathered for health now (status reads them; call before shutdown). */
	async flushHealth(): Promise<void> {
		await this.#health.flush();
	}

	#healthKeyOf(proxyId: string): string {
		return this.#view.current().healthKeyById.get(proxyId) ?? healthKey(proxyId);
	}

	async ban(
		proxyId: string,
		domain: string,
		reason: string,
		cooldownMs = this.options.banCooldownMs,
	): Promise<void> {
		const d = normalizeDomain(domain);
		if (!d) return;
		const record: BanRecord = { reason, at: this.#now() };
		await this.state.set(banKey(d, proxyId), record, cooldownMs);
	}

	async unban(proxyId: string, domain: string): Promise<void> {
		const d = normalizeDomain(domain);
		if (d) await this.state.del(banKey(d, proxyId));
	}

	/** Current view of every proxy: health, in-flight leases, bans (optionally for one domain). */
	async status(domain?: string): Promise<ProxyStatus[]> {
		await this.#health.flush();
		const proxies = this.proxies();
		const ids = proxies.map((p) => p.id);
		const d = normalizeDomain(domain);
		const [healths, uses, inflight, banKeys] = await Promise.all([
			this.state.getMany<HealthRecord>(ids.map(healthKey)),
			this.state.hgetall(`${P}uses`),
			this.state.hgetall(`${P}inflight`),
			this.state.keys(d ? `${P}ban:${d}:` : `${P}ban:`),
		]);
		const banRecords = await this.state.getMany<BanRecord>(banKeys);
		const ttls = await Promise.all(banKeys.map((k) => this.state.ttl(k)));
		const bansById = new Map<string, ProxyStatus["bans"]>();
		banKeys.forEach((k, i) => {
			const rest = k.slice(`${P}ban:`.length);
			const cut = rest.lastIndexOf(":");
			const id = rest.slice(cut + 1);
			const rec = banRecords[i];
			const ttl = ttls[i] ?? -2;
			if (!rec || ttl === -2) return;
			const list = bansById.get(id) ?? [];
			list.push({
				domain: rest.slice(0, cut),
				remainingS: ttl < 0 ? -1 : Math.ceil(ttl / 1000),
				reason: rec.reason,
			});
			bansById.set(id, list);
		});
		return proxies.map((p, i) => ({
			...toPublic(p),
			state: healthState(healths[i], this.options.health),
			health: healths[i] ?? null,
			inFlight: Math.max(0, inflight[p.id] ?? 0),
			uses: uses[p.id] ?? 0,
			bans: bansById.get(p.id) ?? [],
		}));
	}
}
