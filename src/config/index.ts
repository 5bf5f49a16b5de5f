/**
 * The one place configuration is read. Each area declares its settings as a group; `loadConfig`
 * validates them all at once so every bad variable is reported in one message.
 * To add settings: declare a group in `src/config/<area>.ts`, add it to SETTING_GROUPS and map it
 * into `Config`.
 */
import { type CoreConfig, coreSettings, toCoreConfig } from "./core.ts";
import { type SettingGroup, validateEnv } from "./define.ts";
import { type MaricopaConfig, maricopaSettings, toMaricopaConfig } from "./maricopa.ts";
import { type ProxyConfig, proxySettings, toProxyConfig } from "./proxy.ts";
import { type StoreConfig, storeSettings, toStoreConfig } from "./store.ts";

export type { CoreConfig } from "./core.ts";
export { ConfigError } from "./define.ts";
export type { StoreConfig } from "./store.ts";
export type { ProxyConfig } from "./proxy.ts";
export type { MaricopaConfig } from "./maricopa.ts";

export const SETTING_GROUPS: Record<string, SettingGroup> = {
	core: coreSettings,
	store: storeSettings,
	proxy: proxySettings,
	maricopa: maricopaSettings,
};

export interface Config {
	core: CoreConfig;
	store: StoreConfig;
	proxy: ProxyConfig;
	maricopa: MaricopaConfig;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
	const values = validateEnv(Object.values(SETTING_GROUPS), env);
	return {
		core: toCoreConfig(values),
		store: toStoreConfig(values),
		proxy: toProxyConfig(values),
		maricopa: toMaricopaConfig(values),
	};
}

/** Every variable name the configuration knows (for docs and deployment-file checks). */
export function knownSettingNames(): string[] {
	return Object.values(SETTING_GROUPS).flatMap((g) => Object.keys(g));
}
