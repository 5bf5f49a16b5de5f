/**
 * The MLS scraper's HTTP sessions (src/mls/scraper.ts): each a cookie jar and an agent bound to one
 * sticky proxy, taken for one request and given back, leased from the proxy pool per request and
 * released with the request's outcome (so the pool learns bans and health from it). A session that
 * met a defence or failed is discarded; the next request starts a fresh one.
 */
import type { LeaseOutcome, ProxyLease } from "../contracts/proxy-pool.ts";
import { closeHttpSession, type HttpSession, newHttpSession } from "./http-fetcher.ts";

export interface ProxyProvider {
	/** A proxy for `session` (sticky: the same one while it works). */
	acquire(req: { domain: string; session: string }): Promise<ProxyLease>;
	release(lease: ProxyLease, outcome: LeaseOutcome): Promise<void>;
}

export interface Session extends HttpSession {
	lease: ProxyLease | null;
}

let sessionSeq = 0;
export const newSessionId = (prefix: string) =>
	`${prefix}-${process.pid}-${++sessionSeq}-${Math.random().toString(36).slice(2, 8)}`;

export class SessionPool {
	readonly #proxies: ProxyProvider | null;
	readonly #domain: string;
	readonly #idle: Session[] = [];
	readonly #all = new Set<Session>();
	#closed = false;

	/** `proxies` null = direct connections (a site that admits them, or a test). */
	constructor(proxies: ProxyProvider | null, domain: string) {
		this.#proxies = proxies;
		this.#domain = domain;
	}

	/** An idle session, or a new one without cookies. */
	take(): Session {
		const idle = this.#idle.pop();
		if (idle) return idle;
		const s: Session = { ...newHttpSession(newSessionId("mls"), null), lease: null };
		this.#all.add(s);
		return s;
	}

	/** The session given back last (its cookies go with a page rendered in the browser), if any. */
	latestIdle(): Session | undefined {
		return this.#idle[this.#idle.length - 1];
	}

	/** Leases the session's (sticky) proxy for one request and points the session's agent at it. */
	async lease(s: Session): Promise<void> {
		if (!this.#proxies) return;
		const lease = await this.#proxies.acquire({ domain: this.#domain, session: s.id });
		if (lease.proxyUrl !== s.proxyUrl) {
			await closeHttpSession(s);
			const fresh = newHttpSession(s.id, lease.proxyUrl);
			s.proxyUrl = fresh.proxyUrl;
			s.dispatcher = fresh.dispatcher;
		}
		s.lease = lease;
	}

	async unlease(s: Session, outcome: LeaseOutcome): Promise<void> {
		const lease = s.lease;
		s.lease = null;
		if (lease && this.#proxies) await this.#proxies.release(lease, outcome).catch(() => undefined);
	}

	giveBack(s: Session) {
		if (this.#closed) void this.discard(s);
		else this.#idle.push(s);
	}

	async discard(s: Session): Promise<void> {
		this.#all.delete(s);
		await closeHttpSession(s);
	}

	async close(): Promise<void> {
		this.#closed = true;
		this.#idle.length = 0;
		await Promise.all([...this.#all].map((s) => this.discard(s)));
	}
}
