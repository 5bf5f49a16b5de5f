/**
 * The sandbox: every simulator of the outside world, in-process, on loopback, over one World.
 *
 *   const sb = await startSandbox({ world: { parcelsPerZip: 500 }, maricopa: { faults: { errorRate: 0.1 } } });
 *   // point Saguaro at sb.env (MARICOPA_BASE_URL=..., ...), read sb.world for the ground truth
 *   await sb.stop();
 *
 * One config object (SandboxConfig) holds every simulator's settings; `startSandbox` takes any
 * subset, merged section by section over `defaultSandboxConfig()`. Ports default to 0 (free ports).
 *
 * A control server (env SANDBOX_CONTROL_URL) lets other processes read the sandbox:
 * `GET /truth[?properties=1]` ground truth, `GET /stats` every simulator's counters, `GET /env`,
 * `GET /generate_204` (the proxies' health-check target, PROXY_CHECK_URL).
 * Each simulator also has its own `/__sandbox/*` routes (stats, faults; see http.ts).
 *
 * Adding a simulator: add its section to SandboxConfig and
 * defaultSandboxConfig, its handle to Sandbox, and start it in startSandbox at the marked place with
 * `track(...)` so stop() and start-up failures clean it up; put its env variables in `env`.
 */

import type { CaptchaHandle } from "./captcha.ts";
import { startCaptcha } from "./captcha.ts";
import { RequestCounters } from "./counters.ts";
import type { FaultKnobs } from "./faults.ts";
import { FaultInjector } from "./faults.ts";
import type { GeneratorOptions, World } from "./generator.ts";
import { generateWorld, truthSnapshot } from "./generator.ts";
import type { SimServer } from "./http.ts";
import { HttpError, startSimServer } from "./http.ts";
import type { LlmHandle } from "./llm.ts";
import { startLlm } from "./llm.ts";
import type { MaricopaApiHandle } from "./maricopa-api.ts";
import { startMaricopaApi } from "./maricopa-api.ts";
import type { MaricopaGisHandle } from "./maricopa-gis.ts";
import { GIS_QUERY_PATH, startMaricopaGis } from "./maricopa-gis.ts";
import type { MlsDefences, MlsSite } from "./mls-site.ts";
import { MLS_SITEKEY, startMlsSite } from "./mls-site.ts";
import type { PhotoCatalogOptions } from "./photos.ts";
import type { FailMode, ProxyBehaviour, ProxyFarm } from "./proxy-farm.ts";
import { startProxyFarm } from "./proxy-farm.ts";

export interface SandboxConfig {
	/** Interface every simulator listens on. */
	host: string;
	/** Master seed: the world (unless world.seed is set) and every fault RNG derive from it. */
	seed: number;
	/** World generator options (ZIPs, parcels per ZIP, listing share, ...). */
	world: Partial<GeneratorOptions>;
	maricopa: {
		port: number;
		/** The token the simulator accepts (`AUTHORIZATION: <token>`). */
		token: string;
		pageSize: number;
		faults: Partial<FaultKnobs>;
	};
	gis: {
		port: number;
		maxRecordCount: number;
		faults: Partial<FaultKnobs>;
	};
	llm: {
		port: number;
		/** Bearer key required by the endpoint; null = none (like a local Ollama). */
		apiKey: string | null;
		model: string;
		faults: Partial<FaultKnobs>;
	};
	control: {
		port: number;
	};
	/** Phoenix MLS site (mls-site.ts). */
	mls: {
		port: number;
		/** Listing cards per search page. */
		pageSize: number;
		/** Share of detail pages whose facts table is filled by script from inline JSON. */
		jsRenderedShare: number;
		/** hCaptcha sitekey of the interstitial. */
		sitekey: string;
		/** Per-IP defences, merged field by field over defaultMlsDefences() (mls-site.ts). */
		defences: Partial<MlsDefences>;
		faults: Partial<FaultKnobs>;
		/** The photo CDN's duplicates and bad input (photos.ts; served by the MLS site at /az/...). */
		photos?: Partial<PhotoCatalogOptions>;
	};
	/** Upstream proxy farm and its WebShare-shaped provider (proxy-farm.ts). */
	proxies: {
		/** Proxies in the farm (exit IPs 203.0.113.1..N). */
		count: number;
		/** How many the provider lists; the rest stand by for rotation. null = all. */
		listed: number | null;
		/** Behaviour of proxy i; missing entries are healthy. */
		behaviours: ProxyBehaviour[];
		slowMs: number;
		flakyRate: number;
		failMode: FailMode;
		/** Provider API key (`Authorization: Token <key>`). */
		providerKey: string;
		/** Port of the provider list API. */
		providerPort: number;
		providerFaults: Partial<FaultKnobs>;
	};
	/** 2captcha simulator, both protocols (captcha.ts). */
	captcha: {
		port: number;
		/** API key: 32 letters or digits. */
		key: string;
		balance: number;
		price: number;
		solveDelayMs: number;
		unsolvableRate: number;
		maxPending: number;
		tokenTtlMs: number;
		faults: Partial<FaultKnobs>;
	};
}

/** What startSandbox accepts: any subset, each section merged over its defaults. */
export type SandboxOptions = {
	[K in keyof SandboxConfig]?: SandboxConfig[K] extends object ? Partial<SandboxConfig[K]> : SandboxConfig[K];
};

export function defaultSandboxConfig(): SandboxConfig {
	return {
		host: "127.0.0.1",
		seed: 20260,
		world: {},
		maricopa: { port: 0, token: "sandbox-maricopa-token", pageSize: 25, faults: {} },
		gis: { port: 0, maxRecordCount: 1000, faults: {} },
		llm: { port: 0, apiKey: "sk-sandbox-llm-key", model: "sandbox-llm", faults: {} },
		control: { port: 0 },
		mls: { port: 0, pageSize: 20, jsRenderedShare: 0.15, sitekey: MLS_SITEKEY, defences: {}, faults: {} },
		proxies: {
			count: 8,
			listed: 6,
			// Like a real list: most fine, one slow, one flaky, one dead; two spares for rotation.
			behaviours: ["healthy", "healthy", "healthy", "slow", "flaky", "dead"],
			slowMs: 1500,
			flakyRate: 0.3,
			failMode: "mixed",
			providerKey: "sbx-webshare-3f9c2a7d51e84b06",
			providerPort: 0,
			providerFaults: {},
		},
		captcha: {
			port: 0,
			key: "5b1e7c0d5a9d4c2e8f3a6b7c9d0e1f2a",
			balance: 5,
			price: 0.00299,
			solveDelayMs: 3000,
			unsolvableRate: 0.05,
			maxPending: 100,
			tokenTtlMs: 120_000,
			faults: {},
		},
	};
}

export function resolveSandboxConfig(options: SandboxOptions = {}): SandboxConfig {
	const base = defaultSandboxConfig();
	const out = { ...base } as Record<string, unknown>;
	for (const [key, value] of Object.entries(options)) {
		if (value === undefined) continue;
		const def = (base as unknown as Record<string, unknown>)[key];
		out[key] =
			def !== null && typeof def === "object" && !Array.isArray(def)
				? { ...def, ...(value as object) }
				: value;
	}
	return out as unknown as SandboxConfig;
}

export interface SandboxUrls {
	/** Assessor API base (real: https://mcassessor.maricopa.gov). */
	maricopa: string;
	/** Full ArcGIS query endpoint (…/MapServer/3/query). */
	gis: string;
	/** OpenAI-compatible base, with /v1 (real: e.g. http://localhost:11434/v1). */
	llm: string;
	control: string;
	/** MLS site base (real: https://www.phoenixmlssearch.com). */
	mls: string;
	/** WebShare-shaped proxy list (real: https://proxy.webshare.io/api/v2/proxy/list/). */
	proxyList: string;
	/** Plain-text proxy list, one URL a line (key in the path). */
	proxyListText: string;
	/** 2captcha base for in.php/res.php and the v2 JSON API (real: https://2captcha.com, https://api.2captcha.com). */
	captcha: string;
}

export interface Sandbox {
	config: SandboxConfig;
	world: World;
	urls: SandboxUrls;
	/** NAME=value pairs that point Saguaro at the sandbox. */
	env: Record<string, string>;
	maricopa: MaricopaApiHandle;
	gis: MaricopaGisHandle;
	llm: LlmHandle;
	control: SimServer;
	mls: MlsSite;
	proxies: ProxyFarm;
	captcha: CaptchaHandle;
	/** Stops every simulator (idempotent). */
	stop(): Promise<void>;
}

/** Seeds per simulator, so one master seed gives each its own reproducible fault sequence. */
function subSeed(seed: number, n: number): number {
	return (Math.imul(seed ^ 0x9e3779b9, 2654435761) + n * 0x85ebca6b) >>> 0;
}

export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
	const config = resolveSandboxConfig(options);
	const world = generateWorld({ seed: config.seed, ...config.world });
	const { host } = config;
	const stops: (() => Promise<void>)[] = [];
	const track = <T extends { stop(): Promise<void> } | { close(): Promise<void> }>(h: T): T => {
		stops.push(() => ("stop" in h ? h.stop() : h.close()));
		return h;
	};
	let stopped: Promise<void> | undefined;
	const stopAll = () => {
		stopped ??= (async () => {
			// Reverse order: dependents (e.g. a site that verifies captchas) go first.
			for (const stop of stops.reverse()) await stop().catch(() => {});
		})();
		return stopped;
	};

	try {
		const maricopa = track(
			await startMaricopaApi({
				world,
				host,
				port: config.maricopa.port,
				tokens: [config.maricopa.token],
				pageSize: config.maricopa.pageSize,
				faults: config.maricopa.faults,
				seed: subSeed(config.seed, 1),
			}),
		);
		const gis = track(
			await startMaricopaGis({
				world,
				host,
				port: config.gis.port,
				maxRecordCount: config.gis.maxRecordCount,
				faults: config.gis.faults,
				seed: subSeed(config.seed, 2),
			}),
		);
		const llm = track(
			await startLlm({
				host,
				port: config.llm.port,
				apiKey: config.llm.apiKey,
				model: config.llm.model,
				faults: config.llm.faults,
				seed: subSeed(config.seed, 3),
			}),
		);

		const captcha = track(
			await startCaptcha({
				host,
				port: config.captcha.port,
				keys: [config.captcha.key],
				balance: config.captcha.balance,
				price: config.captcha.price,
				solveDelayMs: config.captcha.solveDelayMs,
				unsolvableRate: config.captcha.unsolvableRate,
				maxPending: config.captcha.maxPending,
				tokenTtlMs: config.captcha.tokenTtlMs,
				faults: config.captcha.faults,
				seed: subSeed(config.seed, 4),
			}),
		);
		const proxies = track(
			await startProxyFarm({
				host,
				count: config.proxies.count,
				...(config.proxies.listed !== null ? { listed: config.proxies.listed } : {}),
				behaviours: config.proxies.behaviours,
				slowMs: config.proxies.slowMs,
				flakyRate: config.proxies.flakyRate,
				failMode: config.proxies.failMode,
				providerKey: config.proxies.providerKey,
				providerPort: config.proxies.providerPort,
				providerFaults: config.proxies.providerFaults,
				seed: subSeed(config.seed, 5),
			}),
		);
		const mls = track(
			await startMlsSite({
				world,
				host,
				port: config.mls.port,
				pageSize: config.mls.pageSize,
				jsRenderedShare: config.mls.jsRenderedShare,
				sitekey: config.mls.sitekey,
				defences: config.mls.defences,
				faults: config.mls.faults,
				...(config.mls.photos ? { photos: config.mls.photos } : {}),
				// Only this sandbox's captcha simulator vouches for tokens (not another sandbox in the process).
				verify: (sitekey, token) => captcha.verifyToken(sitekey, token),
				seed: subSeed(config.seed, 6),
			}),
		);

		const urls: SandboxUrls = {
			maricopa: maricopa.url,
			gis: `${gis.url}${GIS_QUERY_PATH}`,
			llm: `${llm.url}/v1`,
			control: "",
			mls: mls.url,
			proxyList: proxies.listUrl,
			proxyListText: proxies.textListUrl,
			captcha: captcha.url,
		};
		const env: Record<string, string> = {
			MARICOPA_BASE_URL: urls.maricopa,
			MARICOPA_TOKEN: config.maricopa.token,
			MARICOPA_GIS_URL: urls.gis,
			MLS_BASE_URL: urls.mls,
			PHOTOS_CDN_URL: urls.mls,
			PROXY_LIST_URL: urls.proxyList,
			PROXY_LIST_KEY: config.proxies.providerKey,
			PROXY_LIST_TEXT_URL: urls.proxyListText,
			// The sandbox's own fake credentials: the proxies the provider lists right now.
			PROXIES: proxies.urls().join(","),
			CAPTCHA_BASE_URL: urls.captcha,
			CAPTCHA_KEY: config.captcha.key,
			LLM_BASE_URL: urls.llm,
			...(config.llm.apiKey !== null ? { LLM_API_KEY: config.llm.apiKey } : {}),
		};
		const sims: SimServer[] = [maricopa, gis, llm, mls.server, captcha.server, proxies.provider];

		const control = track(
			await startSimServer({
				name: "control",
				host,
				port: config.control.port,
				faults: new FaultInjector(),
				counters: new RequestCounters(),
				classify: (url) => url.pathname.replace(/^\/+/, "") || "root",
				handle: (ctx) => {
					const path = ctx.url.pathname.replace(/\/+$/, "");
					if (ctx.req.method !== "GET") throw new HttpError(405, "GET only");
					if (path === "/truth") {
						return ctx.json(200, truthSnapshot(world, ctx.url.searchParams.get("properties") === "1"));
					}
					if (path === "/env") return ctx.json(200, env);
					// The proxies' health-check target (PROXY_CHECK_URL): answers 204 as gstatic's does.
					if (path === "/generate_204") return ctx.send(204, "");
					if (path === "/stats") {
						const windowMs = Number(ctx.url.searchParams.get("windowMs") ?? 60_000);
						if (!(windowMs > 0)) throw new HttpError(400, "windowMs must be > 0");
						const stats: Record<string, unknown> = {};
						for (const s of sims) stats[s.name] = { url: s.url, ...s.counters.stats(windowMs) };
						return ctx.json(200, stats);
					}
					throw new HttpError(
						404,
						"control routes: GET /truth[?properties=1], /stats[?windowMs=], /env, /generate_204",
					);
				},
			}),
		);
		urls.control = control.url;
		env.SANDBOX_CONTROL_URL = control.url;
		// Offline, the default check URL (gstatic) is unreachable and every proxy would look dead.
		env.PROXY_CHECK_URL = `${control.url}/generate_204`;

		return { config, world, urls, env, maricopa, gis, llm, control, mls, proxies, captcha, stop: stopAll };
	} catch (err) {
		await stopAll();
		throw err;
	}
}

/** `NAME=value` lines, in a stable order, for shells and .env files. */
export function formatEnv(env: Record<string, string>): string {
	return Object.entries(env)
		.map(([k, v]) => `${k}=${v}`)
		.join("\n");
}
