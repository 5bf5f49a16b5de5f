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
import type { Middleware, ServiceBroker } from "moleculer";

interface BreakerEvent {
	nodeID: string;
	action: string;
	service?: string;
}

interface Endpoint {
	state: boolean;
}

export interface ClusterBreakerOptions {
	/** How long a peer's verdict holds here without a `closed` event. Default: the broker's halfOpenTime. */
	holdMs?: number;
}

export function clusterBreakerMiddleware(opts: ClusterBreakerOptions = {}): Middleware {
	return ((broker: ServiceBroker) => {
		const held = new Map<string, NodeJS.Timeout>();
		const holdMs = () =>
			opts.holdMs ??
			(broker.options.circuitBreaker as { halfOpenTime?: number } | undefined)?.halfOpenTime ??
			10_000;

		// Not registry.getActionEndpointByNodeId: it hides unavailable endpoints, which are the ones to restore.
		const endpointOf = (ev: BreakerEvent): Endpoint | null => {
			const list = broker.registry.getActionEndpoints(ev.action) as unknown as
				| { endpoints: (Endpoint & { id: string })[] }
				| undefined;
			return list?.endpoints.find((ep) => ep.id === ev.nodeID) ?? null;
		};

		const localBreakerOpen = (ev: BreakerEvent): boolean => {
			const store = (broker as unknown as { CircuitBreakerStore?: Map<string, { state: string }> })
				.CircuitBreakerStore;
			return store?.get(`${ev.nodeID}:${ev.action}`)?.state === "open";
		};

		const restore = (key: string, ev: BreakerEvent) => {
			const timer = held.get(key);
			if (timer) clearTimeout(timer);
			held.delete(key);
			const ep = endpointOf(ev);
			if (ep && !localBreakerOpen(ev)) ep.state = true;
		};

		return {
			name: "ClusterBreaker",
			created() {
				broker.createService({
					name: "$cluster-breaker",
					events: {
						"$circuit-breaker.opened"(ctx) {
							const ev = ctx.params as BreakerEvent;
							// Never this node's own endpoint: it would refuse every call sent to it ("not available
							// locally"), which keeps the callers' breakers open: a node taken out for good.
							if (ctx.nodeID === broker.nodeID || ev.nodeID === broker.nodeID || !ev?.action || !ev.nodeID)
								return;
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
							const ev = ctx.params as BreakerEvent;
							// Never this node's own endpoint: it would refuse every call sent to it ("not available
							// locally"), which keeps the callers' breakers open: a node taken out for good.
							if (ctx.nodeID === broker.nodeID || ev.nodeID === broker.nodeID || !ev?.action || !ev.nodeID)
								return;
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
			stopped() {
				for (const t of held.values()) clearTimeout(t);
				held.clear();
			},
		};
	}) as unknown as Middleware;
}
