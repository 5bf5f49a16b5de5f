/**
 * Orchestrator: durable collection jobs (plan ZIPs x sources into tasks, lease them to source nodes,
 * retry, dead-letter, progress, cancel). Any number of nodes may run it: one leads (a lease with
 * expiry in SharedState), the others answer actions and take over when the leader dies. The logic
 * lives in src/jobs/; this file wires it to the broker.
 */
import type { ActionEndpoint, Context, EndpointList, ServiceBroker, ServiceSchema } from "moleculer";
import { nodesReaching } from "../src/cluster/reach.ts";
import { regionOf } from "../src/cluster/region-strategy.ts";
import type { Config } from "../src/config/index.ts";
import type { CollectParams } from "../src/contracts/orchestrator.ts";
import { JobMetrics } from "../src/jobs/metrics.ts";
import { Orchestrator } from "../src/jobs/orchestrator.ts";
import { JOB_ID_SHAPE } from "../src/jobs/plan.ts";
import type { ServiceFactory } from "../src/node/context.ts";

interface RegistryService {
	name: string;
	actions?: Record<string, unknown>;
	available?: boolean;
}

/** Services offering `<name>.collectZip` right now: the sources a job may use. */
function sourcesIn(broker: ServiceBroker): string[] {
	const services = broker.registry.getServiceList({
		onlyAvailable: true,
		withActions: true,
	}) as RegistryService[];
	const names = services
		.filter((s) => Object.keys(s.actions ?? {}).includes(`${s.name}.collectZip`))
		.map((s) => s.name);
	return [...new Set(names)].sort();
}

function endpointsOf(broker: ServiceBroker, action: string): string[] {
	// Moleculer's typings omit it, but an action no node offers has no endpoint list.
	const list: EndpointList<ActionEndpoint> | undefined = broker.registry.getActionEndpoints(action);
	return [...new Set((list?.endpoints ?? []).filter((e) => e.isAvailable).map((e) => e.id))].sort();
}

/** A node as the registry describes it (Moleculer does not export the type by name). */
type RegistryNode = ReturnType<ServiceBroker["registry"]["nodes"]["get"]>;

/** A node of the registry; undefined for one it does not know (Moleculer's typings omit that case). */
function knownNode(broker: ServiceBroker, nodeID: string): RegistryNode | undefined {
	return broker.registry.nodes.get(nodeID);
}

/** The region in a node's metadata (REGION), null when it has none or is unknown. */
function nodeRegion(broker: ServiceBroker, nodeID: string): string | null {
	return regionOf(knownNode(broker, nodeID)?.metadata);
}

/**
 * Whether a node's region suits a source (issue 15): the MLS scraper uses its own region's proxy
 * pool, so an mls task goes only to a region where a proxy-pool runs (when MLS goes through proxies).
 */
function regionSuits(broker: ServiceBroker, config: Config, source: string, nodeID: string): boolean {
	if (source !== "mls" || !config.mls.useProxies) return true;
	const region = nodeRegion(broker, nodeID);
	return endpointsOf(broker, "proxy-pool.acquire").some(
		(n) => region === null || nodeRegion(broker, n) === region,
	);
}

/**
 * Requests per second a source's own host budgets allow, for the ETA when ORCHESTRATOR_SOURCE_RATES
 * does not say: the Assessor's two hosts (GIS and REST) run side by side, so their budgets add up.
 */
function budgetRate(config: Config, source: string): number | null {
	if (source === "maricopa") {
		const m = config.maricopa;
		return (m.ratePerWindow + m.gisRatePerWindow) / (m.rateWindowMs / 1000);
	}
	if (source === "mls") return config.mls.ratePerMin / 60;
	if (source === "llm") return config.llm.ratePerMin / 60;
	return null;
}

/** How often the leader samples the ledger for the job metrics (src/jobs/metrics.ts). */
const METRICS_SAMPLE_MS = 5000;

const orchestratorService: ServiceFactory = ({ config, state }) => {
	const jobs = config.jobs;
	let engine: Orchestrator;
	/**
	 * Nodes that marked Redis as reached (src/cluster/reach.ts) and whose mark has expired: they lost
	 * their link to it. A node that never marked (no Redis of its own) is not judged.
	 */
	const everReached = new Set<string>();
	let lostReach = new Set<string>();
	let reachTimer: NodeJS.Timeout | null = null;
	let jobMetrics: JobMetrics | null = null;
	let sampler: NodeJS.Timeout | null = null;
	const schema: ServiceSchema = {
		name: "orchestrator",
		actions: {
			collect: {
				params: {
					// Items are checked (and never echoed whole) by the planner.
					zips: { type: "array", items: { type: "string", max: 5000 }, min: 1, max: 1000, optional: true },
					county: { type: "boolean", optional: true, convert: true },
					sources: { type: "array", items: { type: "string", pattern: /^[a-z][a-z0-9-]*$/ }, optional: true },
					enrich: { type: "boolean", optional: true },
					photos: { type: "boolean", optional: true },
					priority: { type: "number", integer: true, min: -100, max: 100, optional: true },
					jobId: { type: "string", pattern: JOB_ID_SHAPE, optional: true },
					origin: { type: "string", max: 100, optional: true },
				},
				handler(ctx: Context<CollectParams>) {
					return engine.collect(ctx.params);
				},
			},
			status: {
				params: {
					id: { type: "string", pattern: JOB_ID_SHAPE },
					tasks: { type: "boolean", optional: true, convert: true },
				},
				handler(ctx: Context<{ id: string; tasks?: boolean }>) {
					return engine.status(ctx.params.id, ctx.params.tasks === true);
				},
			},
			list: {
				params: { limit: { type: "number", integer: true, min: 1, max: 500, optional: true, convert: true } },
				handler(ctx: Context<{ limit?: number }>) {
					return engine.list(ctx.params.limit ?? 20);
				},
			},
			cancel: {
				params: { id: { type: "string", pattern: JOB_ID_SHAPE } },
				handler(ctx: Context<{ id: string }>) {
					return engine.cancel(ctx.params.id);
				},
			},
			retry: {
				params: { id: { type: "string", pattern: JOB_ID_SHAPE } },
				handler(ctx: Context<{ id: string }>) {
					return engine.retry(ctx.params.id);
				},
			},
			sources: {
				handler(this: { broker: ServiceBroker }) {
					return sourcesIn(this.broker);
				},
			},
			leader: {
				handler() {
					return { node: config.core.nodeId, leader: engine.isLeader };
				},
			},
		},
		created(this: { broker: ServiceBroker; logger: ServiceBroker["logger"] }) {
			const broker = this.broker;
			engine = new Orchestrator({
				state,
				nodeId: broker.nodeID,
				settings: {
					maxAttempts: jobs.maxAttempts,
					backoffBaseMs: jobs.backoffBaseMs,
					backoffMaxMs: jobs.backoffMaxMs,
					taskLeaseMs: jobs.taskLeaseMs,
					taskTimeoutMs: jobs.taskTimeoutMs,
					leaderTtlMs: jobs.leaderTtlMs,
					tickMs: jobs.tickMs,
					retentionMs: jobs.retentionMs,
					concurrency: (source) => jobs.concurrency[source] ?? jobs.concurrency.default ?? 4,
					countyZips: jobs.countyZips,
					requestsPerSecond: (source) =>
						jobs.sourceRates[source] ?? jobs.sourceRates.default ?? budgetRate(config, source),
				},
				endpoints: (action) => endpointsOf(broker, action),
				call: (action, params, nodeID, timeout) =>
					broker.call(action, params, { nodeID, timeout, retries: 0 }),
				nodeAlive: (nodeID) => Boolean(knownNode(broker, nodeID)?.available),
				regionOf: (nodeID) => nodeRegion(broker, nodeID),
				suits: (source, nodeID) => !lostReach.has(nodeID) && regionSuits(broker, config, source, nodeID),
				availableSources: () => sourcesIn(broker),
				enrichAvailable: () => endpointsOf(broker, "llm.enrichPending").length > 0,
				broadcast: (event, payload) => void broker.broadcast(event, payload),
				logger: this.logger,
			});
		},
		started(this: { broker: ServiceBroker }) {
			const broker = this.broker;
			if (state.kind === "redis" && broker.transit) {
				// Tasks go only to nodes that reach Redis (they could not claim a request slot otherwise).
				let busy = false;
				const refresh = async () => {
					if (busy) return;
					busy = true;
					try {
						const ids = broker.registry.nodes.list({ onlyAvailable: true }).map((n) => n.id);
						const reaching = await nodesReaching(state, ids);
						for (const id of reaching) everReached.add(id);
						lostReach = new Set(ids.filter((id) => everReached.has(id) && !reaching.has(id)));
					} catch {
						// This node does not reach Redis either: it is not leading; nothing to judge.
					} finally {
						busy = false;
					}
				};
				void refresh();
				reachTimer = setInterval(() => void refresh(), Math.max(500, jobs.tickMs));
			}
			engine.start();
			if (!config.core.enableMetrics || !this.broker.isMetricsEnabled()) return;
			jobMetrics = new JobMetrics(this.broker.metrics as never);
			// Every orchestrator samples (its baseline stays current); the leader exports.
			const sample = async () => {
				const leader = engine.isLeader;
				jobMetrics?.sample(await engine.list(500), leader);
			};
			const loop = () => {
				sampler = setTimeout(
					() =>
						void sample()
							.catch(() => {})
							.finally(() => sampler && loop()),
					METRICS_SAMPLE_MS,
				);
				sampler.unref();
			};
			void sample()
				.catch(() => {})
				.finally(loop);
		},
		async stopped() {
			if (reachTimer) clearInterval(reachTimer);
			if (sampler) clearTimeout(sampler);
			sampler = null;
			await engine.stop();
		},
	};
	return schema;
};

export default orchestratorService;
