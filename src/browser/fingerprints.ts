/**
 * One browser fingerprint per proxy session, kept for the session's life: a site that sees the same
 * cookies from the same IP with a different user agent each visit has reason to be suspicious.
 * Locale and time zone are pinned to the Phoenix area the traffic pretends to come from.
 */
import { type BrowserFingerprintWithHeaders, FingerprintGenerator } from "fingerprint-generator";

export const LOCALE = "en-US";
export const TIMEZONE = "America/Phoenix";

export class FingerprintStore {
	readonly #generator = new FingerprintGenerator({
		devices: ["desktop"],
		operatingSystems: ["windows", "macos"],
		browsers: [{ name: "chrome", minVersion: 120 }],
		locales: [LOCALE],
	});
	readonly #bySession = new Map<string, BrowserFingerprintWithHeaders>();
	readonly #max: number;

	constructor(maxSessions = 1000) {
		this.#max = maxSessions;
	}

	for(session: string): BrowserFingerprintWithHeaders {
		let fp = this.#bySession.get(session);
		if (fp) {
			// Refresh its place so the least recently used session is the one forgotten.
			this.#bySession.delete(session);
			this.#bySession.set(session, fp);
			return fp;
		}
		fp = this.#generator.getFingerprint();
		this.#bySession.set(session, fp);
		if (this.#bySession.size > this.#max)
			this.#bySession.delete(this.#bySession.keys().next().value as string);
		return fp;
	}

	forget(session: string): void {
		this.#bySession.delete(session);
	}

	get size(): number {
		return this.#bySession.size;
	}
}
