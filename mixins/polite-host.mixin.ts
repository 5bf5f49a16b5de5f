/**
 * Mixin for services that call an outside host (maricopa, mls): builds their cluster-wide
 * HostPolicy objects (src/core/host-policy.ts) with one set of metrics and logs for every host, and
 * gives the service `status` (budget, pause, breaker, fatal stop of each host) and `resume` (clear a
 * fatal stop and the breakers, e.g. after a token was replaced) actions. When the service stops,
 * every call still waiting on a host (budget, pause, breaker) ends at once.
 */
import type { Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { HostPolicy, type HostPolicyEvent, type HostPolicyOptions } from "../src/core/host-policy.ts";
import type { SharedState } from "../src/shared-state/index.ts";
import { redact } from "../src/utils/redact.ts";

const M = {
	waitMs: "saguaro_host_budget_wait_ms_total",
	waits: "saguaro_host_budget_waits_total",
	breaker: "saguaro_host_breaker_state",
	fatal: "saguaro_host_fatal",
	requests: "saguaro_host_requests_total",
} as const;

const BREAKER_VALUE = { closed: 0, "half-open": 1, open: 2 } as const;

export interface PoliteHostMethods {
	/** A policy for one host, its events wired to the metrics and logs (nodeId and onEvent are set here). */
	createHostPolicy(options: Omit<HostPolicyOptions, "nodeId" | "onEvent">): HostPolicy;
}

export interface PoliteHostVars {
	hostPolicies: HostPolicy[];
}

/** `this` of a service with the mixin. */
export type PoliteHostService = Service & PoliteHostMethods & PoliteHostVars;

/** The schema of a service with the mixin: `this.createHostPolicy`, `this.hostPolicies` are typed. */
export type PoliteHostSchema<S = ServiceSettingSchema> = ServiceSchema<S, PoliteHostMethods, PoliteHostVars>;

export function politeHostMixin(state: SharedState): Partial<ServiceSchema> {
	const mixin: Partial<PoliteHostSchema> = {
		created() {
			this.hostPolicies = [];
			const metrics = this.broker.isMetricsEnabled() ? this.broker.metrics : null;
			// Several such services may share a node: the metrics are registered once.
			if (metrics && !metrics.getMetric(M.waits)) {
				metrics.register({
					type: "counter",
					name: M.waitMs,
					labelNames: ["host"],
					description: "Time requests waited for the cluster-wide budget, a pause or a breaker (ms)",
				});
				metrics.register({
					type: "counter",
					name: M.waits,
					labelNames: ["host"],
					description: "Requests that went through a host's budget",
				});
				metrics.register({
					type: "gauge",
					name: M.breaker,
					labelNames: ["host"],
					description: "Host breaker as this node last saw it: 0 closed, 1 half-open, 2 open",
				});
				metrics.register({
					type: "gauge",
					name: M.fatal,
					labelNames: ["host"],
					description: "1 when the host is stopped",
				});
				metrics.register({
					type: "counter",
					name: M.requests,
					labelNames: ["host", "source", "outcome"],
					description:
						"Requests sent to a host by this node, by the source (service) that sent them and what came back (ok, rate-limited, rotate, transient, failed, fatal)",
				});
			}
		},
		stopped() {
			// Calls waiting on a budget, a pause or an open breaker end now, not after the wait.
			for (const p of this.hostPolicies) p.close();
		},
		methods: {
			createHostPolicy(options: Omit<HostPolicyOptions, "nodeId" | "onEvent">) {
				const { broker } = this;
				const metrics = broker.isMetricsEnabled() ? broker.metrics : null;
				const source = this.name;
				const onEvent = (e: HostPolicyEvent) => {
					if (e.type === "request") {
						metrics?.increment(M.requests, { host: e.host, source, outcome: e.outcome });
					} else if (e.type === "wait") {
						metrics?.increment(M.waitMs, { host: e.host }, e.ms);
						metrics?.increment(M.waits, { host: e.host });
					} else if (e.type === "breaker") {
						metrics?.set(M.breaker, BREAKER_VALUE[e.state], { host: e.host });
						if (e.state !== "closed") broker.logger.warn(`Host ${e.host}: breaker ${e.state}.`);
					} else if (e.type === "fatal") {
						metrics?.set(M.fatal, 1, { host: e.host });
						broker.logger.error(`Host ${e.host} stopped for the whole cluster: ${redact(e.reason)}`);
					} else if (e.type === "pause") {
						broker.logger.warn(
							`Host ${e.host} paused until ${new Date(e.untilMs).toISOString()} (Retry-After).`,
						);
					}
				};
				const policy = new HostPolicy(state, { ...options, nodeId: broker.nodeID, onEvent });
				this.hostPolicies.push(policy);
				return policy;
			},
		},
		actions: {
			status: {
				handler() {
					return Promise.all(this.hostPolicies.map((p) => p.status()));
				},
			},
			resume: {
				async handler() {
					const { hostPolicies, broker } = this;
					await Promise.all(hostPolicies.map((p) => p.resume()));
					if (broker.isMetricsEnabled()) {
						for (const p of hostPolicies) broker.metrics.set(M.fatal, 0, { host: p.host });
					}
					return Promise.all(hostPolicies.map((p) => p.status()));
				},
			},
		},
	};
	// A schema typed for its own `this` is a plain mixin to the service that takes it.
	// A schema typed for its own `this` is a plain mixin to the service that takes it.
	return mixin as Partial<ServiceSchema>;
}
