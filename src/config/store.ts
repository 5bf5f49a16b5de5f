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
	STORE_BULK_MAX_OPS: {
		rule: intRule(1, 100_000),
		default: "40",
		description:
			"Most conditional replaces sent in one bulk write (MongoDB); more are sent in several. FerretDB 1.24 hangs on a bulk of as many operations as its connection pool (50 by default), so keep it below that there.",
	},
	STORE_CALL_TIMEOUT_S: {
		rule: intRule(1, 3600),
		default: "60",
		description:
			"Time limit of one store call a collector makes (a batch of up to 500 records): a call lost to a NATS restart or a store node's death fails after this long and its page is retried.",
	},
} satisfies SettingGroup;

export interface StoreConfig {
	rawMaxBytes: number;
	pageSizeMax: number;
	nedbCompactS: number;
	bulkMaxOps: number;
	callTimeoutMs: number;
}

export function toStoreConfig(v: Record<string, unknown>): StoreConfig {
	return {
		rawMaxBytes: v.STORE_RAW_MAX_BYTES as number,
		pageSizeMax: v.STORE_PAGE_SIZE_MAX as number,
		nedbCompactS: v.STORE_NEDB_COMPACT_S as number,
		bulkMaxOps: v.STORE_BULK_MAX_OPS as number,
		callTimeoutMs: (v.STORE_CALL_TIMEOUT_S as number) * 1000,
	};
}
