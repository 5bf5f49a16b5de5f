/**
 * Proxies added and removed at run time (the API's `proxies.add` / `proxies.remove`), shared by every
 * node of a region through the shared state, for the pool (src/proxy/pool.ts) to merge with its
 * sources.
 *
 * Keys (under the pool's scope, `proxy:` or `proxy:<region>:`):
 * - `runtime`       id -> URL, sealed (AES-256-GCM, src/utils/secret-box.ts) when it carries a
 *                   password, so no password is ever stored in clear
 * - `removed:<id>`  proxies removed at run time, whatever their source
 */
import type { SharedState } from "../shared-state/index.ts";
import { SecretBox } from "../utils/secret-box.ts";
import { type ProxyEndpoint, ProxyUrlError, parseProxyUrl } from "./proxy-url.ts";

export class RuntimeAdditions {
	readonly #state: SharedState;
	/** Key prefix of what is the region's own. */
	readonly #scope: string;
	readonly #box: SecretBox | null;
	readonly #now: () => number;
	/** Additions as of the last `sync()`. */
	added: ProxyEndpoint[] = [];
	/** Removals as of the last `sync()`. */
	removed = new Set<string>();
	/** Additions the last sync could not open (sealed under another key) or parse. */
	unreadable = 0;

	constructor(state: SharedState, scope: string, box: SecretBox | null, now: () => number) {
		this.#state = state;
		this.#scope = scope;
		this.#box = box;
		this.#now = now;
	}

	/** Pull run-time additions/removals made on any node. */
	async sync(): Promise<void> {
		const added = (await this.#state.get<Record<string, string>>(`${this.#scope}runtime`)) ?? {};
		const runtime: ProxyEndpoint[] = [];
		let unreadable = 0;
		let inClear = false;
		for (const [id, value] of Object.entries(added)) {
			try {
				if (SecretBox.isSealed(value)) {
					if (!this.#box) throw new Error("no key to open it");
					runtime.push(parseProxyUrl(this.#box.open(value, id), "api"));
				} else {
					// Stored before additions were sealed: usable, and sealed below when it has a password.
					const p = parseProxyUrl(value, "api");
					if (p.password) inClear = true;
					runtime.push(p);
				}
			} catch {
				// Another node's key, or a value that no longer parses: skipped, and counted.
				unreadable++;
			}
		}
		this.added = runtime;
		this.unreadable = unreadable;
		if (inClear && this.#box) await this.#store(added);
		const removedKeys = await this.#state.keys(`${this.#scope}removed:`);
		this.removed = new Set(removedKeys.map((k) => k.slice(`${this.#scope}removed:`.length)));
	}

	/** Write the run-time map back with every credentialed URL sealed (values already sealed stay). */
	async #store(added: Record<string, string>): Promise<void> {
		const out: Record<string, string> = {};
		for (const [id, value] of Object.entries(added)) {
			out[id] = value;
			if (SecretBox.isSealed(value) || !this.#box) continue;
			try {
				if (parseProxyUrl(value, "api").password) out[id] = this.#box.seal(value, id);
			} catch {
				// unparseable: left as it is (it is skipped on read)
			}
		}
		await this.#state.set(`${this.#scope}runtime`, out);
	}

	async add(url: string): Promise<ProxyEndpoint> {
		const p = parseProxyUrl(url, "api");
		if (p.password && !this.#box) {
			throw new ProxyUrlError(
				"a proxy with a password is added at run time only when PROXY_SECRETS_KEY is set (the same on every node): it is stored encrypted, never in clear",
			);
		}
		// Not atomic across nodes: two simultaneous adds may lose one; adds are rare operator actions.
		const added = (await this.#state.get<Record<string, string>>(`${this.#scope}runtime`)) ?? {};
		added[p.id] = p.url;
		await this.#store(added);
		await this.#state.del(`${this.#scope}removed:${p.id}`);
		await this.sync();
		return p;
	}

	async remove(id: string): Promise<void> {
		const added = (await this.#state.get<Record<string, string>>(`${this.#scope}runtime`)) ?? {};
		if (id in added) {
			delete added[id];
			await this.#store(added);
		}
		await this.#state.set(`${this.#scope}removed:${id}`, { at: this.#now() });
		await this.sync();
	}
}
