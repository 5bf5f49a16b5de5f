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
 * `GET /truth[?properties=1]` ground truth, `GET /stats` every simulator's counters, `GET /env`.
 * Each simulator also has its own `/__sandbox/*` routes (stats, faults; see http.ts).
 *
 * Adding a simulator (part B: MLS site, proxy farm, captcha): add its section to SandboxConfig and
 * defaultSandboxConfig, its handle to Sandbox, and start it in startSandbox at the marked place with
 * `track(...)` so stop() and start-up failures clean it up; put its env variables in `env`.
 */

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
	// PART B: mls / proxies / captcha sections go here.
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
	// PART B: mls, proxyList, captcha
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
	// PART B: mls?: ...; proxies?: ...; captcha?: ...
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

		// PART B: start the captcha simulator, the proxy farm and the MLS site here, each with track(...).

		const urls: SandboxUrls = {
			maricopa: maricopa.url,
			gis: `${gis.url}${GIS_QUERY_PATH}`,
			llm: `${llm.url}/v1`,
			control: "",
		};
		const env: Record<string, string> = {
			MARICOPA_BASE_URL: urls.maricopa,
			MARICOPA_TOKEN: config.maricopa.token,
			MARICOPA_GIS_URL: urls.gis,
			// PART B: MLS_BASE_URL, PROXY_LIST_URL, PROXY_LIST_KEY, CAPTCHA_BASE_URL, CAPTCHA_KEY
			LLM_BASE_URL: urls.llm,
			...(config.llm.apiKey !== null ? { LLM_API_KEY: config.llm.apiKey } : {}),
		};
		const sims: SimServer[] = [maricopa, gis, llm];

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
					if (path === "/stats") {
						const windowMs = Number(ctx.url.searchParams.get("windowMs") ?? 60_000);
						if (!(windowMs > 0)) throw new HttpError(400, "windowMs must be > 0");
						const stats: Record<string, unknown> = {};
						for (const s of sims) stats[s.name] = { url: s.url, ...s.counters.stats(windowMs) };
						return ctx.json(200, stats);
					}
					throw new HttpError(404, "control routes: GET /truth[?properties=1], /stats[?windowMs=], /env");
				},
			}),
		);
		urls.control = control.url;
		env.SANDBOX_CONTROL_URL = control.url;

		return { config, world, urls, env, maricopa, gis, llm, control, stop: stopAll };
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
