import { hostname } from "node:os";
import { boolRule, intRule, listRule, type SettingGroup, urlRule } from "./define.ts";
import { SERVICE_NAMES, type ServiceName } from "./services.ts";

/** Settings every node reads: identity, roles, infrastructure, logging and fault tolerance. */
export const coreSettings = {
	NODE_ID: {
		rule: { type: "string", pattern: /^[A-Za-z0-9._-]{1,64}$/ },
		description: "Unique node name in the cluster (letters, digits, . _ -). Default: hostname-pid.",
	},
	NAMESPACE: {
		rule: { type: "string", pattern: /^[A-Za-z0-9_-]{0,32}$/ },
		default: "saguaro",
		description: "Moleculer namespace: nodes only see nodes of the same namespace.",
	},
	REGION: {
		rule: { type: "string", pattern: /^[a-z0-9][a-z0-9-]{0,31}$/ },
		description:
			"Region this node runs in (node metadata `region`; lower-case letters, digits, -). Calls prefer endpoints of the same region and cross only when it has none; the orchestrator spreads tasks over regions. Unset = no region (one-region cluster).",
	},
	SERVICES: {
		rule: listRule(SERVICE_NAMES),
		default: SERVICE_NAMES.join(","),
		description: `Comma-separated services this node runs: ${SERVICE_NAMES.join(", ")}. Default: all.`,
	},
	TRANSPORTER: {
		rule: urlRule(["nats", "tls"]),
		description:
			"NATS URL (nats://host:4222, several separated by commas are not supported: use one seed). Unset = embedded single process.",
	},
	REDIS_URL: {
		rule: urlRule(["redis", "rediss"]),
		description: "Redis for cluster-wide state (rate budgets, leases, bans, counters). Unset = in-memory.",
		secret: false,
	},
	MONGO_URI: {
		rule: urlRule(["mongodb", "mongodb+srv"]),
		description: "MongoDB for the store. Unset = NeDB files under DATA_DIR.",
	},
	DATA_DIR: {
		rule: { type: "string", min: 1 },
		default: "./data",
		description: "Directory for the embedded store's NeDB files.",
	},
	LOG_LEVEL: {
		rule: { type: "enum", values: ["fatal", "error", "warn", "info", "debug", "trace"] },
		default: "info",
		description: "Log level.",
	},
	LOG_FORMAT: {
		rule: { type: "enum", values: ["auto", "json", "pretty"] },
		default: "auto",
		description:
			"json = pino JSON lines; pretty = human-readable console; auto = pretty when stdout is a terminal (the REPL), else json. Secrets are redacted in all.",
	},
	METRICS_PORT: {
		rule: intRule(0, 65535),
		default: "3030",
		description: "Port of the Prometheus /metrics endpoint; 0 disables it.",
	},
	HEALTH_PORT: {
		rule: intRule(0, 65535),
		default: "3031",
		description: "Port of the /live and /ready probes of this node; 0 disables it.",
	},
	API_PORT: {
		rule: intRule(0, 65535),
		default: "3000",
		description: "Port of the REST API gateway (api service).",
	},
	API_TOKENS: {
		rule: listRule(null),
		description:
			"Comma-separated bearer tokens accepted by the REST API (Authorization: Bearer <token>). Unset = no auth, unless API_AUTH=on.",
		secret: true,
	},
	API_AUTH: {
		rule: { type: "enum", values: ["auto", "on", "off"] },
		default: "auto",
		description:
			"REST API auth: on = a bearer token is required, and a node running the api refuses to start without API_TOKENS (docker-compose.yml and k8s/ set on); off = no auth even with API_TOKENS (say so explicitly); auto = on when API_TOKENS is set.",
	},
	API_RATE_PER_MIN: {
		rule: intRule(1, 1_000_000),
		default: "600",
		description: "REST API requests per minute per client (token, else address), counted cluster-wide.",
	},
	REQUEST_TIMEOUT_MS: {
		rule: intRule(0, 3_600_000),
		default: "30000",
		description: "Default timeout of a service call; timeouts count as breaker failures.",
	},
	RETRIES: {
		rule: intRule(0, 20),
		default: "3",
		description: "Retries of a service call on retryable errors (e.g. the serving node died).",
	},
	HEARTBEAT_INTERVAL_S: {
		rule: intRule(1, 300),
		default: "5",
		description: "Heartbeat interval.",
	},
	HEARTBEAT_TIMEOUT_S: {
		rule: intRule(2, 3600),
		default: "30",
		description:
			"A node silent this long is dropped. Generous so CPU-heavy browser nodes are not dropped (moleculer #891).",
	},
	BULKHEAD_CONCURRENCY: {
		rule: intRule(1, 10_000),
		default: "20",
		description: "Concurrent executions per action on a node; more are queued.",
	},
	BULKHEAD_MAX_QUEUE: {
		rule: intRule(0, 1_000_000),
		default: "500",
		description: "Queue size per action behind the bulkhead; beyond it calls are refused.",
	},
	BREAKER_THRESHOLD: {
		rule: { type: "number", convert: true, min: 0.01, max: 1 },
		default: "0.5",
		description: "Failure rate that opens the breaker of an endpoint (cluster-wide, see README).",
	},
	BREAKER_MIN_REQUESTS: {
		rule: intRule(1, 100_000),
		default: "20",
		description: "Calls in the window before the failure rate is judged.",
	},
	BREAKER_WINDOW_S: {
		rule: intRule(1, 3600),
		default: "60",
		description: "Breaker measuring window.",
	},
	BREAKER_HALF_OPEN_MS: {
		rule: intRule(100, 3_600_000),
		default: "10000",
		description: "How long an open breaker waits before letting a trial call through.",
	},
	REPL: {
		rule: { type: "enum", values: ["auto", "on", "off"] },
		default: "auto",
		description: "Interactive REPL: auto = when stdin is a terminal.",
	},
	SHUTDOWN_TIMEOUT_MS: {
		rule: intRule(0, 600_000),
		default: "15000",
		description: "Grace period for in-flight work on SIGTERM/SIGINT before the process exits anyway.",
	},
	ENABLE_METRICS: {
		rule: boolRule,
		default: "true",
		description: "Collect Moleculer metrics (needed for METRICS_PORT).",
	},
} satisfies SettingGroup;

export interface CoreConfig {
	nodeId: string;
	namespace: string;
	region: string | null;
	services: ServiceName[];
	transporter: string | null;
	redisUrl: string | null;
	mongoUri: string | null;
	dataDir: string;
	logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace";
	logFormat: "json" | "pretty";
	metricsPort: number;
	healthPort: number;
	apiPort: number;
	apiTokens: string[];
	/** The REST API asks for a bearer token (API_AUTH on, or auto with API_TOKENS set). */
	apiAuth: boolean;
	apiAuthSetting: "auto" | "on" | "off";
	apiRatePerMin: number;
	requestTimeoutMs: number;
	retries: number;
	heartbeatIntervalS: number;
	heartbeatTimeoutS: number;
	bulkheadConcurrency: number;
	bulkheadMaxQueue: number;
	breakerThreshold: number;
	breakerMinRequests: number;
	breakerWindowS: number;
	breakerHalfOpenMs: number;
	repl: "auto" | "on" | "off";
	shutdownTimeoutMs: number;
	enableMetrics: boolean;
}

/** LOG_FORMAT=auto: a person at a terminal reads short lines, a log collector JSON. */
export function resolveLogFormat(setting: string, stdoutIsTty: boolean): CoreConfig["logFormat"] {
	if (setting === "json" || setting === "pretty") return setting;
	return stdoutIsTty ? "pretty" : "json";
}

export function toCoreConfig(v: Record<string, unknown>): CoreConfig {
	return {
		nodeId: (v.NODE_ID as string | undefined) ?? `${hostname()}-${process.pid}`,
		namespace: v.NAMESPACE as string,
		region: (v.REGION as string | undefined) ?? null,
		services: v.SERVICES as ServiceName[],
		transporter: (v.TRANSPORTER as string | undefined) ?? null,
		redisUrl: (v.REDIS_URL as string | undefined) ?? null,
		mongoUri: (v.MONGO_URI as string | undefined) ?? null,
		dataDir: v.DATA_DIR as string,
		logLevel: v.LOG_LEVEL as CoreConfig["logLevel"],
		logFormat: resolveLogFormat(v.LOG_FORMAT as string, Boolean(process.stdout.isTTY)),
		metricsPort: v.METRICS_PORT as number,
		healthPort: v.HEALTH_PORT as number,
		apiPort: v.API_PORT as number,
		apiTokens: (v.API_TOKENS as string[] | undefined) ?? [],
		apiAuth:
			v.API_AUTH === "on" ||
			(v.API_AUTH === "auto" && ((v.API_TOKENS as string[] | undefined) ?? []).length > 0),
		apiAuthSetting: v.API_AUTH as CoreConfig["apiAuthSetting"],
		apiRatePerMin: v.API_RATE_PER_MIN as number,
		requestTimeoutMs: v.REQUEST_TIMEOUT_MS as number,
		retries: v.RETRIES as number,
		heartbeatIntervalS: v.HEARTBEAT_INTERVAL_S as number,
		heartbeatTimeoutS: v.HEARTBEAT_TIMEOUT_S as number,
		bulkheadConcurrency: v.BULKHEAD_CONCURRENCY as number,
		bulkheadMaxQueue: v.BULKHEAD_MAX_QUEUE as number,
		breakerThreshold: v.BREAKER_THRESHOLD as number,
		breakerMinRequests: v.BREAKER_MIN_REQUESTS as number,
		breakerWindowS: v.BREAKER_WINDOW_S as number,
		breakerHalfOpenMs: v.BREAKER_HALF_OPEN_MS as number,
		repl: v.REPL as CoreConfig["repl"],
		shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS as number,
		enableMetrics: v.ENABLE_METRICS as boolean,
	};
}
