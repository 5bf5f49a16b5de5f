/**
 * Cluster-wide circuit breaker for service-to-service calls.
 *
 * Moleculer's breaker keeps its state per calling node: when node A finds that the endpoint
 * `maricopa.parcel@worker-3` keeps failing it stops calling it, but nodes B and C keep sending it
 * traffic until they fail enough themselves. Moleculer broadcasts `$circuit-breaker.opened|closed`,
 * so every node can act on a peer's verdict: this middleware listens to those events and takes the
 * named endpoint out of its own balancer for the breaker's half-open time (or until the peer reports it
 * closed). After that its own breaker judges again, so one node's mistake is bounded in time.
 */
import type { ActionEndpoint, EndpointList, Middleware, ServiceBroker } from "moleculer";

interface BreakerEvent {
	nodeID: string;
	action: string;
}

/** A `$circuit-breaker.*` event's payload, when it names an endpoint (a node and an action). */
function breakerEvent(params: unknown): BreakerEvent | null {
	if (typeof params !== "object" || params === null) return null;
	if (!("nodeID" in params) || typeof params.nodeID !== "string" || !params.nodeID) return null;
	if (!("action" in params) || typeof params.action !== "string" || !params.action) return null;
	return { nodeID: params.nodeID, action: params.action };
}

/** Whether this node's own breaker holds the endpoint open (Moleculer's breaker keeps its store on the broker). */
function localBreakerOpen(broker: ServiceBroker, ev: BreakerEvent): boolean {
	const store: unknown = Reflect.get(broker, "CircuitBreakerStore");
	if (!(store instanceof Map)) return false;
	const entry: unknown = store.get(`${ev.nodeID}:${ev.action}`);
	return typeof entry === "object" && entry !== null && "state" in entry && entry.state === "open";
}

export interface ClusterBreakerOptions {
	/** How long a peer's verdict holds here without a `closed` event. Default: the broker's halfOpenTime. */
	holdMs?: number;
}

export function clusterBreakerMiddleware(opts: ClusterBreakerOptions = {}): Middleware {
	const held = new Map<string, NodeJS.Timeout>();
	return {
		name: "ClusterBreaker",
		created(broker: ServiceBroker) {
			const holdMs = () => opts.holdMs ?? broker.options.circuitBreaker?.halfOpenTime ?? 10_000;

			// Not registry.getActionEndpointByNodeId: it hides unavailable endpoints, which are the ones to restore.
			const endpointOf = (ev: BreakerEvent): ActionEndpoint | null => {
				// Moleculer's typings omit it, but an action no node offers has no endpoint list.
				const list: EndpointList<ActionEndpoint> | undefined = broker.registry.getActionEndpoints(ev.action);
				return list?.endpoints.find((ep) => ep.id === ev.nodeID) ?? null;
			};

			const restore = (key: string, ev: BreakerEvent) => {
				const timer = held.get(key);
				if (timer) clearTimeout(timer);
				held.delete(key);
				const ep = endpointOf(ev);
				if (ep && !localBreakerOpen(broker, ev)) ep.state = true;
			};

			broker.createService({
				name: "$cluster-breaker",
				events: {
					"$circuit-breaker.opened"(ctx) {
						const ev = breakerEvent(ctx.params);
						// Never this node's own endpoint: it would refuse every call sent to it ("not available
						// locally"), which keeps the callers' breakers open: a node taken out for good.
						if (!ev || ctx.nodeID === broker.nodeID || ev.nodeID === broker.nodeID) return;
						const ep = endpointOf(ev);
						if (!ep) return;
						const key = `${ev.nodeID}:${ev.action}`;
						ep.state = false;
						const prev = held.get(key);
						if (prev) clearTimeout(prev);
						const timer = setTimeout(() => restore(key, ev), holdMs());
						timer.unref();
						held.set(key, timer);
						broker.logger.warn(`Breaker opened by ${ctx.nodeID} on ${key}: endpoint held open here too.`);
					},
					"$circuit-breaker.closed"(ctx) {
						const ev = breakerEvent(ctx.params);
						// Never this node's own endpoint: it would refuse every call sent to it ("not available
						// locally"), which keeps the callers' breakers open: a node taken out for good.
						if (!ev || ctx.nodeID === broker.nodeID || ev.nodeID === broker.nodeID) return;
						const key = `${ev.nodeID}:${ev.action}`;
						if (held.has(key)) restore(key, ev);
					},
				},
				actions: {
					/** Endpoints this node holds open on a peer's verdict. */
					held: { visibility: "public", handler: () => [...held.keys()] },
				},
			});
		},
		async stopped() {
			for (const t of held.values()) clearTimeout(t);
			held.clear();
		},
	};
}
