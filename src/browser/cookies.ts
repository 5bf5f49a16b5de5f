/**
 * Storage state (cookies, local storage) per proxy session: saved when a session's context closes,
 * restored into its next context. Bounded: the oldest sessions are forgotten first.
 */
import type { BrowserContext } from "playwright-core";

export type StorageState = Awaited<ReturnType<BrowserContext["storageState"]>>;

export class SessionStorage {
	readonly #bySession = new Map<string, StorageState>();
	readonly #max: number;

	constructor(max = 1000) {
		this.#max = max;
	}

	get size(): number {
		return this.#bySession.size;
	}

	get(session: string): StorageState | undefined {
		return this.#bySession.get(session);
	}

	remember(session: string, state: StorageState): void {
		this.#bySession.delete(session);
		this.#bySession.set(session, state);
		if (this.#bySession.size > this.#max)
			this.#bySession.delete(this.#bySession.keys().next().value as string);
	}
}
