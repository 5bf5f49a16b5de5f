/**
 * Broker options, all derived from the validated environment (src/config). The runner
 * (bin/saguaro.ts) and the tests build brokers from here, so there is one way to configure a node.
 */
import type { BrokerOptions, Errors } from "moleculer";

type MaybeMoleculerError = Error & Partial<Errors.MoleculerError>;

import { callerCircuitBreakerMiddleware } from "./src/cluster/caller-circuit-breaker.ts";
import { clusterBreakerMiddleware } from "./src/cluster/cluster-breaker.ts";
import { expiredRequestsMiddleware } from "./src/cluster/expired-requests.ts";
import { RegionStrategy, regionCallsMiddleware } from "./src/cluster/region-strategy.ts";
import type { Config } from "./src/config/index.ts";
import { busSafeErrorsMiddleware } from "./src/core/bus-errors.ts";
import { createReplCommands } from "./src/repl/commands.ts";
import { moleculerLogger } from "./src/utils/logger.ts";

/**
 * What the circuit breaker counts against an endpoint: server-side faults and timeouts. A caller's bad
 * input (4xx) does not count, nor does a fault the endpoint only reports from upstream (`data.upstream`:
 * a site or proxy that failed a render), so one bad site never makes a healthy node look broken.
 */
export function countsAsBreakerFailure(err: MaybeMoleculerError | null | undefined): boolean {
	if (!err) return false;
	if ((err.data as { upstream?: unknown } | undefined)?.upstream === true) return false;
	return (err.code ?? 500) >= 500 || err.name === "RequestTimeoutError";
}

export function createBrokerOptions(config: Config): BrokerOptions {
	const c = config.core;
	return {
		namespace: c.namespace,
		nodeID: c.nodeId,
		// A nats:// URL; Moleculer resolves the transporter from the scheme.
		transporter: (c.transporter ?? null) as BrokerOptions["transporter"],
		logger: moleculerLogger(c.logLevel, c.logFormat),
		logLevel: c.logLevel,

		requestTimeout: c.requestTimeoutMs,
		retryPolicy: {
			enabled: c.retries > 0,
			retries: c.retries,
			delay: 200,
			maxDelay: 3000,
			factor: 2,
			// Retry what another node could serve: the serving node died, or is not reachable.
			check: (err: MaybeMoleculerError) => Boolean(err?.retryable),
		},
		bulkhead: {
			enabled: true,
			concurrency: c.bulkheadConcurrency,
			maxQueueSize: c.bulkheadMaxQueue,
		},
		circuitBreaker: {
			enabled: true,
			threshold: c.breakerThreshold,
			minRequestCount: c.breakerMinRequests,
			windowTime: c.breakerWindowS,
			halfOpenTime: c.breakerHalfOpenMs,
			check: countsAsBreakerFailure,
		},
		// Heartbeats: CPU-heavy browser nodes must not be dropped for a busy event loop (moleculer #891).
		heartbeatInterval: c.heartbeatIntervalS,
		heartbeatTimeout: c.heartbeatTimeoutS,
		// REGION: in the node metadata, and calls kept in the region while it has endpoints (issue 15).
		metadata: c.region ? { region: c.region } : {},
		registry: { strategy: c.region ? RegionStrategy : "RoundRobin", preferLocal: true },
		transit: { maxQueueSize: 50_000, disableReconnect: false },
		// NATS caps a message at 1 MB by default: services never ship unbounded payloads.
		cacher: (c.redisUrl
			? { type: "Redis", options: { redis: c.redisUrl, prefix: `${c.namespace}-cache` } }
			: "Memory") as BrokerOptions["cacher"],

		metrics: {
			enabled: c.enableMetrics,
			reporter:
				c.metricsPort > 0 ? [{ type: "Prometheus", options: { port: c.metricsPort, path: "/metrics" } }] : [],
		},
		tracing: { enabled: false },

		// Internal middlewares in Moleculer's order, except that Timeout sits inside CircuitBreaker so
		// timeouts count as breaker failures (by default Timeout wraps the breaker: moleculer #1202).
		internalMiddlewares: false,
		middlewares: [
			clusterBreakerMiddleware(),
			regionCallsMiddleware(),
			"ActionHook",
			"Validator",
			// Inside the bulkhead: a queued call whose caller has given up is not started.
			expiredRequestsMiddleware(),
			"Bulkhead",
			"Cacher",
			"ContextTracker",
			"Timeout",
			// Judged by callers only: a serving node never refuses requests on its own breaker's verdict.
			callerCircuitBreakerMiddleware(),
			"Retry",
			"Fallback",
			"ErrorHandler",
			// Outside ErrorHandler: every error a local action answers (validation included) is cut to a
			// size the bus carries, and an answer the transport refuses becomes a small error answer.
			busSafeErrorsMiddleware(),
			"Tracing",
			"Metrics",
			"Debounce",
			"Throttle",
		],
		// The runner owns signal handling, to shut down the shared state and HTTP probes too.
		skipProcessEventRegistration: true,
		replOptions: { customCommands: createReplCommands(config) },
	};
}
