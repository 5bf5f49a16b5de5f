import { intRule, type SettingGroup } from "./define.ts";

/** Store settings (raw records, canonical properties). MONGO_URI and DATA_DIR are core settings. */
export const storeSettings = {
	STORE_RAW_MAX_BYTES: {
		rule: intRule(1024, 16 * 1024 * 1024),
		default: "1048576",
		description:
			"Largest raw record payload (JSON bytes) the store accepts; larger ones are rejected and counted.",
	},
	STORE_PAGE_SIZE_MAX: {
		rule: intRule(1, 10_000),
		default: "500",
		description: "Largest page size of property queries.",
	},
	STORE_NEDB_COMPACT_S: {
		rule: intRule(0, 86_400),
		default: "600",
		description:
			"Embedded store: compact the NeDB files this often (append-only files grow with every update); 0 = only at start.",
	},
} satisfies SettingGroup;

export interface StoreConfig {
	rawMaxBytes: number;
	pageSizeMax: number;
	nedbCompactS: number;
}

export function toStoreConfig(v: Record<string, unknown>): StoreConfig {
	return {
		rawMaxBytes: v.STORE_RAW_MAX_BYTES as number,
		pageSizeMax: v.STORE_PAGE_SIZE_MAX as number,
		nedbCompactS: v.STORE_NEDB_COMPACT_S as number,
	};
}
