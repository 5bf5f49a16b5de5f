/**
 * The one place configuration is read. Each area declares its settings as a group; `loadConfig`
 * validates them all at once so every bad variable is reported in one message.
 * To add settings: declare a group in `src/config/<area>.ts`, add it to SETTING_GROUPS and map it
 * into `Config`.
 */
import { type BrowserConfig, browserSettings, toBrowserConfig } from "./browser.ts";
import { type CoreConfig, coreSettings, toCoreConfig } from "./core.ts";
import { ConfigError, type SettingGroup, validateEnv } from "./define.ts";
import { type JobsConfig, jobsSettings, toJobsConfig } from "./jobs.ts";
import { type LlmConfig, llmSettings, toLlmConfig } from "./llm.ts";
import { type MaricopaConfig, maricopaSettings, toMaricopaConfig } from "./maricopa.ts";
import { type MlsConfig, mlsSettings, toMlsConfig } from "./mls.ts";
import { type PhotosConfig, photosSettings, toPhotosConfig } from "./photos.ts";
import { type ProxyConfig, proxySettings, toProxyConfig } from "./proxy.ts";
import { type StoreConfig, storeSettings, toStoreConfig } from "./store.ts";

export type { BrowserConfig } from "./browser.ts";
export type { CoreConfig } from "./core.ts";
export { ConfigError } from "./define.ts";
export type { JobsConfig } from "./jobs.ts";
export type { LlmConfig } from "./llm.ts";
export type { MaricopaConfig } from "./maricopa.ts";
export type { MlsConfig } from "./mls.ts";
export type { PhotosConfig } from "./photos.ts";
export type { ProxyConfig } from "./proxy.ts";
export type { StoreConfig } from "./store.ts";

export const SETTING_GROUPS: Record<string, SettingGroup> = {
	core: coreSettings,
	browser: browserSettings,
	mls: mlsSettings,
	jobs: jobsSettings,
	maricopa: maricopaSettings,
	proxy: proxySettings,
	store: storeSettings,
	llm: llmSettings,
	photos: photosSettings,
};

export interface Config {
	core: CoreConfig;
	browser: BrowserConfig;
	mls: MlsConfig;
	jobs: JobsConfig;
	maricopa: MaricopaConfig;
	proxy: ProxyConfig;
	store: StoreConfig;
	llm: LlmConfig;
	photos: PhotosConfig;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
	const values = validateEnv(Object.values(SETTING_GROUPS), env);
	const config: Config = {
		core: toCoreConfig(values),
		browser: toBrowserConfig(values),
		mls: toMlsConfig(values),
		jobs: toJobsConfig(values),
		maricopa: toMaricopaConfig(values),
		proxy: toProxyConfig(values),
		store: toStoreConfig(values),
		llm: toLlmConfig(values),
		photos: toPhotosConfig(values),
	};
	const problems = crossChecks(config);
	if (problems.length > 0) throw new ConfigError(problems);
	return config;
}

/**
 * Settings that are valid alone but wrong together: each would let a node start and then fail
 * quietly (a deployed API open to anyone, a provider key nothing reads).
 */
function crossChecks(config: Config): string[] {
	const problems: string[] = [];
	const { core, proxy } = config;
	if (core.services.includes("api") && core.apiAuthSetting === "on" && core.apiTokens.length === 0) {
		problems.push(
			"API_AUTH=on but API_TOKENS is empty: set API_TOKENS=<token>[,<token>...] (e.g. `openssl rand -hex 24`), or API_AUTH=off to serve the REST API without auth",
		);
	}
	if (proxy.listKey && !proxy.listUrl) {
		problems.push(
			"PROXY_LIST_KEY is set but PROXY_LIST_URL is not: the key only reads a provider's proxy list; set PROXY_LIST_URL (e.g. https://proxy.webshare.io/api/v2/proxy/list/), or give the proxies in PROXIES or PROXY_FILE",
		);
	}
	return problems;
}

/** Every variable name the configuration knows (for docs and deployment-file checks). */
export function knownSettingNames(): string[] {
	return Object.values(SETTING_GROUPS).flatMap((g) => Object.keys(g));
}
