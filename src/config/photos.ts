import { boolRule, ConfigError, intRule, type SettingGroup, urlRule } from "./define.ts";
import { type HostBreakerConfig, hostBreakerSettings, toHostBreaker } from "./host-policy.ts";

/** Settings of the photos service (listing photos: fetch, dedupe, object storage). */
export const photosSettings = {
	PHOTOS_CDN_URL: {
		rule: urlRule(["http", "https"]),
		default: "https://cdn.photos.sparkplatform.com",
		description:
			"Base URL of the photo CDN; a listing's photo {id} is fetched from {base}/az/{id}-{size}.jpg (the URL on the listing keeps its own host as the photo's source URL).",
	},
	PHOTOS_SIZE: {
		rule: { type: "enum", values: ["t", "m", "l", "o"] },
		default: "m",
		description: "Size fetched: t (thumbnail), m (medium), l (large), o (original).",
	},
	PHOTOS_RATE_PER_MIN: {
		rule: intRule(1, 100_000),
		default: "120",
		description: "Requests per minute to the photo CDN, for the whole cluster (shared budget).",
	},
	PHOTOS_RATE_WINDOW_S: {
		rule: intRule(1, 3600),
		default: "60",
		description:
			"Window of the CDN budget in seconds: PHOTOS_RATE_PER_MIN requests per this window (tests use short windows).",
	},
	PHOTOS_RATE_SLACK_MS: {
		rule: intRule(0, 10_000),
		default: "10",
		description:
			"Clock-skew allowance between nodes of the CDN budget: a request leaves window + slack after the request a budget before it got its answer (timers, proxies and load need no slack).",
	},
	// The photo CDN's breaker was hard-coded with these values before it became a setting.
	...hostBreakerSettings("PHOTOS", "photo CDN", { minRequests: 20, failureRate: 0.8, openS: 30 }),
	PHOTOS_USE_PROXIES: {
		rule: boolRule,
		default: "true",
		description:
			"Fetch photos through proxy-pool's gateway (the CDN sits behind the same per-IP defences as the site).",
	},
	PHOTOS_MAX_BYTES: {
		rule: intRule(1024, 200 * 1024 * 1024),
		default: "10485760",
		description:
			"Largest photo accepted (bytes); a larger answer is a recorded failure of that photo, never stored.",
	},
	PHOTOS_MAX_ATTEMPTS: {
		rule: intRule(1, 20),
		default: "4",
		description:
			"Attempts per photo on transient errors (5xx, timeouts, blocks) before it is recorded as failed.",
	},
	PHOTOS_TIMEOUT_S: {
		rule: intRule(1, 600),
		default: "30",
		description: "Timeout of one photo request.",
	},
	PHOTOS_CONCURRENCY: {
		rule: intRule(1, 64),
		default: "4",
		description: "Photos one collectZip fetches at once (the CDN budget paces them cluster-wide).",
	},
	PHOTOS_NEAR_DISTANCE: {
		rule: intRule(0, 7),
		default: "6",
		description:
			"Largest Hamming distance between two 64-bit perceptual hashes that makes them one picture (near-duplicate); at most 7 (the index finds every pair within 7).",
	},
	PHOTOS_WARN_NEW: {
		rule: intRule(0, 100_000_000),
		default: "5000",
		description:
			"A job whose new photos pass this count raises a warning (event photos.warning and a log line), once per job; 0 = never.",
	},
	PHOTOS_STORAGE: {
		rule: { type: "enum", values: ["fs", "s3"] },
		default: "fs",
		description:
			"Object storage of photo bytes: fs = files under DATA_DIR/photos; s3 = an S3-compatible bucket.",
	},
	PHOTOS_S3_BUCKET: {
		rule: { type: "string", pattern: /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/ },
		description: "S3 bucket of the photos (PHOTOS_STORAGE=s3).",
	},
	PHOTOS_S3_PREFIX: {
		rule: { type: "string", pattern: /^[A-Za-z0-9!_.*'()/-]{0,200}$/ },
		default: "photos/",
		description: "Key prefix of the photo objects in the bucket.",
	},
	PHOTOS_S3_ENDPOINT: {
		rule: urlRule(["http", "https"]),
		description:
			"S3-compatible endpoint (MinIO, SeaweedFS, R2...); unset = AWS. Path-style addressing is used with an endpoint.",
	},
	PHOTOS_S3_REGION: {
		rule: { type: "string", pattern: /^[a-z0-9-]{1,40}$/ },
		default: "us-east-1",
		description: "S3 region.",
	},
	PHOTOS_S3_ACCESS_KEY_ID: {
		rule: { type: "string", min: 1, max: 200 },
		description: "S3 access key id; unset = the AWS SDK's default credential chain.",
		secret: true,
	},
	PHOTOS_S3_SECRET_ACCESS_KEY: {
		rule: { type: "string", min: 1, max: 200 },
		description: "S3 secret access key.",
		secret: true,
	},
} satisfies SettingGroup;

export interface PhotosConfig {
	cdnUrl: string;
	size: "t" | "m" | "l" | "o";
	ratePerWindow: number;
	rateWindowMs: number;
	rateSlackMs: number;
	breaker: HostBreakerConfig;
	useProxies: boolean;
	maxBytes: number;
	maxAttempts: number;
	timeoutMs: number;
	concurrency: number;
	nearDistance: number;
	warnNew: number;
	storage: "fs" | "s3";
	s3: {
		bucket: string | null;
		prefix: string;
		endpoint: string | null;
		region: string;
		accessKeyId: string | null;
		secretAccessKey: string | null;
	};
}

export function toPhotosConfig(v: Record<string, unknown>): PhotosConfig {
	if (v.PHOTOS_STORAGE === "s3" && !v.PHOTOS_S3_BUCKET) {
		throw new ConfigError(["PHOTOS_S3_BUCKET is required with PHOTOS_STORAGE=s3"]);
	}
	return {
		cdnUrl: (v.PHOTOS_CDN_URL as string).replace(/\/+$/, ""),
		size: v.PHOTOS_SIZE as PhotosConfig["size"],
		ratePerWindow: v.PHOTOS_RATE_PER_MIN as number,
		rateWindowMs: (v.PHOTOS_RATE_WINDOW_S as number) * 1000,
		rateSlackMs: v.PHOTOS_RATE_SLACK_MS as number,
		breaker: toHostBreaker(v, "PHOTOS"),
		useProxies: v.PHOTOS_USE_PROXIES as boolean,
		maxBytes: v.PHOTOS_MAX_BYTES as number,
		maxAttempts: v.PHOTOS_MAX_ATTEMPTS as number,
		timeoutMs: (v.PHOTOS_TIMEOUT_S as number) * 1000,
		concurrency: v.PHOTOS_CONCURRENCY as number,
		nearDistance: v.PHOTOS_NEAR_DISTANCE as number,
		warnNew: v.PHOTOS_WARN_NEW as number,
		storage: v.PHOTOS_STORAGE as PhotosConfig["storage"],
		s3: {
			bucket: (v.PHOTOS_S3_BUCKET as string | undefined) ?? null,
			prefix: v.PHOTOS_S3_PREFIX as string,
			endpoint: (v.PHOTOS_S3_ENDPOINT as string | undefined) ?? null,
			region: v.PHOTOS_S3_REGION as string,
			accessKeyId: (v.PHOTOS_S3_ACCESS_KEY_ID as string | undefined) ?? null,
			secretAccessKey: (v.PHOTOS_S3_SECRET_ACCESS_KEY as string | undefined) ?? null,
		},
	};
}
