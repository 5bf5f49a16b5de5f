/**
 * Everything proxy-pool runs on one node, wired from the configuration: the sources (env list,
 * watched file, provider API, run-time additions), the scheduled health checks (one node checks
 * per interval, cluster-wide), the gateway and the captcha solver. The service exposes it.
 */
import type { ProxyConfig } from "../config/proxy.ts";
import type { SharedState } from "../shared-state/index.ts";
import { redactString } from "../utils/redact.ts";
import { SecretBox } from "../utils/secret-box.ts";
import { CaptchaSolver, DEFAULT_CAPTCHA_BASE_URLS, type SolverEvents, TwoCaptchaClient } from "./captcha.ts";
import { type CheckResult, checkAll, probeCheckTarget } from "./checker.ts";
import { type GatewayOptions, ProxyGateway } from "./gateway.ts";
import { ProxyPool } from "./pool.ts";
import { fetchProviderList, loadProxyFile, parseProxyList, watchProxyFile } from "./sources.ts";

export interface RuntimeLogger {
	info(msg: string, extra?: object): void;
	warn(msg: string, extra?: object): void;
}

export interface RuntimeHooks {
	onCheck?(results: CheckResult[]): void;
	onAttempt?: GatewayOptions["onAttempt"];
	captcha?: SolverEvents;
}

export class ProxyRuntime {
	readonly config: ProxyConfig;
	readonly pool: ProxyPool;
	readonly solver: CaptchaSolver | null;
	gateway: ProxyGateway | null = null;
	readonly #log: RuntimeLogger;
	readonly #hooks: RuntimeHooks;
	readonly #timers: NodeJS.Timeout[] = [];
	#watcher: { close(): void } | null = null;
	#checking: Promise<CheckResult[]> | null = null;
	lastCheckAt: number | null = null;

	constructor(
		config: ProxyConfig,
		state: SharedState,
		nodeId: string,
		log: RuntimeLogger,
		hooks: RuntimeHooks = {},
	) {
		this.config = config;
		this.#log = log;
		this.#hooks = hooks;
		this.pool = new ProxyPool(state, {
			strategy: config.rotation,
			maxConcurrency: config.maxConcurrency,
			banCooldownMs: config.banCooldownS * 1000,
			sessionTtlMs: config.sessionTtlS * 1000,
			leaseTtlMs: config.leaseTtlS * 1000,
			health: { deadAfter: config.deadAfter, deadRetryMs: config.deadRetryS * 1000, alpha: 0.3 },
			region: config.region,
			countries: config.countries,
			// Run-time additions live in the shared state: sealed under the cluster's key, or, with no
			// key, under this process's own key while that state is this process's memory.
			secretBox: config.secretsKey
				? SecretBox.fromSecret(config.secretsKey)
				: state.kind === "memory"
					? SecretBox.ephemeral()
					: null,
		});
		const c = config.captcha;
		this.solver = c.key
			? new CaptchaSolver(
					new TwoCaptchaClient({
						baseUrl: c.baseUrl ?? DEFAULT_CAPTCHA_BASE_URLS[c.protocol],
						key: c.key,
						protocol: c.protocol,
						pollIntervalMs: c.pollIntervalMs,
						priceUsd: c.priceUsd,
					}),
					state,
					{ budgetUsdPerDay: c.budgetUsdPerDay, timeoutMs: c.timeoutS * 1000, nodeId },
					hooks.captcha,
				)
			: null;
	}

	async start(): Promise<void> {
		const c = this.config;
		if (c.proxies.length > 0) {
			const parsed = parseProxyList(c.proxies.join("\n"), "env");
			for (const e of parsed.errors) this.#log.warn(`PROXIES item skipped: ${e.reason}`);
			this.pool.setSource("env", parsed.proxies);
		}
		if (c.file) {
			await this.reloadFile();
			this.#watcher = watchProxyFile(c.file, () => void this.reloadFile());
		}
		if (c.listUrl) {
			await this.refreshProvider();
			if (c.listRefreshS > 0) this.#every(c.listRefreshS * 1000, () => this.refreshProvider());
		}
		await this.syncRuntime();
		this.#every(5000, () => this.syncRuntime());
		if (c.checkIntervalS > 0) {
			this.#every(c.checkIntervalS * 1000, () => this.scheduledCheck());
			setImmediate(() => void this.scheduledCheck());
		}
		if (c.gatewayPort !== "off") {
			this.gateway = new ProxyGateway({
				pool: this.pool,
				port: c.gatewayPort === "auto" ? 0 : c.gatewayPort,
				host: c.gatewayHost,
				maxAttempts: c.gatewayAttempts,
				...(this.#hooks.onAttempt ? { onAttempt: this.#hooks.onAttempt } : {}),
			});
			await this.gateway.listen();
			this.#log.info(`proxy gateway listening on ${c.gatewayHost}:${this.gateway.port}`);
		}
		this.#log.info(`proxy pool ready with ${this.pool.proxies().length} proxies`, {
			rotation: c.rotation,
			sources: { env: c.proxies.length > 0, file: Boolean(c.file), provider: Boolean(c.listUrl) },
		});
	}

	async stop(): Promise<void> {
		for (const t of this.#timers) clearInterval(t);
		this.#timers.length = 0;
		this.#watcher?.close();
		this.#watcher = null;
		this.solver?.close();
		await this.gateway?.close();
		this.gateway = null;
		await this.#checking?.catch(() => {});
		// What the last requests taught about health, before the state goes away.
		await this.pool.flushHealth().catch(() => {});
	}

	#unreadableSeen = 0;

	/** Pull run-time additions; say so when some cannot be opened here (a different PROXY_SECRETS_KEY). */
	async syncRuntime(): Promise<void> {
		await this.pool.syncRuntime();
		const n = this.pool.unreadableRuntime;
		if (n > 0 && n !== this.#unreadableSeen) {
			this.#log.warn(
				`${n} proxies added at run time cannot be read on this node (PROXY_SECRETS_KEY differs from the node that added them?)`,
			);
		}
		this.#unreadableSeen = n;
	}

	async reloadFile(): Promise<void> {
		const file = this.config.file;
		if (!file) return;
		try {
			const parsed = await loadProxyFile(file);
			for (const e of parsed.errors) this.#log.warn(`proxy file line ${e.line} skipped: ${e.reason}`);
			this.pool.setSource("file", parsed.proxies);
			this.#log.info(`proxy file loaded: ${parsed.proxies.length} proxies`);
		} catch (err) {
			// A file caught mid-write or briefly missing keeps the previous list.
			this.#log.warn(`proxy file not read: ${redactString((err as Error).message)}`);
		}
	}

	async refreshProvider(): Promise<void> {
		const { listUrl, listKey } = this.config;
		if (!listUrl) return;
		try {
			const proxies = await fetchProviderList(listUrl, listKey ?? "");
			this.pool.setSource("provider", proxies);
			this.#log.info(`provider list loaded: ${proxies.length} proxies`);
		} catch (err) {
			this.#log.warn(`provider list not refreshed: ${redactString((err as Error).message)}`);
		}
	}

	/** The interval's check, run by whichever node takes the interval's lock first. */
	async scheduledCheck(): Promise<void> {
		const lock = await this.pool.state.acquire(
			"proxy:check-lock",
			Math.max(1000, this.config.checkIntervalS * 900),
		);
		if (!lock) return;
		await this.check().catch((err) => this.#log.warn(`health check failed: ${redactString(String(err))}`));
	}

	/** Checks the given proxies (default: all) now; concurrent calls share one run. */
	check(ids?: string[]): Promise<CheckResult[]> {
		if (!ids && this.#checking) return this.#checking;
		const proxies = this.pool.proxies().filter((p) => !ids || ids.includes(p.id));
		const run = (async () => {
			const { checkUrl, checkTimeoutMs } = this.config;
			const results = await checkAll(proxies, checkUrl, {
				timeoutMs: checkTimeoutMs,
				concurrency: this.config.checkConcurrency,
			});
			// Not one proxy passed: if the check URL does not answer directly either, it is the target
			// that is down (or unreachable from here, e.g. offline), not every proxy. Health stays as is.
			const targetDown =
				results.length > 0 && !results.some((r) => r.ok)
					? await probeCheckTarget(checkUrl, checkTimeoutMs)
					: null;
			if (targetDown !== null) {
				this.#log.warn(
					`proxy health check skipped: the check URL (PROXY_CHECK_URL) answers through no proxy and not directly either (${targetDown}); proxy health left as it was`,
					{ checkUrl: redactString(checkUrl) },
				);
				this.lastCheckAt = Date.now();
				const skipped = results.map((r) => ({ ...r, targetDown: true as const }));
				this.#hooks.onCheck?.(skipped);
				return skipped;
			}
			for (const r of results) {
				await this.pool.recordHealth(r.proxyId, {
					ok: r.ok,
					latencyMs: r.latencyMs,
					...(r.error ? { error: r.error } : {}),
				});
			}
			this.lastCheckAt = Date.now();
			this.#hooks.onCheck?.(results);
			return results;
		})();
		if (!ids) {
			this.#checking = run;
			void run
				.finally(() => {
					if (this.#checking === run) this.#checking = null;
				})
				.catch(() => {});
		}
		return run;
	}

	#every(ms: number, fn: () => Promise<void>): void {
		const t = setInterval(() => void fn().catch(() => {}), ms);
		t.unref();
		this.#timers.push(t);
	}
}
