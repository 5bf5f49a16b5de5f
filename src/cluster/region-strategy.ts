/**
 * Region-aware balancing (issue 15): every node carries its REGION in its node metadata
 * (`metadata.region`); a call goes to an endpoint of the caller's region, round robin among them,
 * and crosses to another region only when the caller's region has no available endpoint of the
 * action. A node without a region (or a caller without one) balances over every endpoint.
 *
 * Chosen over Moleculer's Latency strategy (measured by `npm run bench:regions`): Latency samples a
 * few endpoints at random and pings them, so with 50 ms between regions it still sends a share of
 * calls across (more when a region has many nodes: the sample may hold no local one), and it needs
 * ping rounds before it knows anything; the region is known from the first heartbeat, and a
 * region's endpoints are near by construction.
 *
 * Each broker's remote calls are counted by `regionCallsMiddleware` (`regionCallCounts(broker)`):
 * calls kept in the region, calls that crossed, calls made where no region applies.
 */
import moleculer, { type Context, type Endpoint, type Middleware, type ServiceBroker } from "moleculer";

export interface RegionCallCounts {
	/** Calls that went to an endpoint of the caller's region. */
	local: number;
	/** Calls that crossed to another region (none available in the caller's). */
	cross: number;
	/** Calls made by a node without a region, or to endpoints without one. */
	unknown: number;
}

const counts = new WeakMap<object, RegionCallCounts>();

/** The calls `broker` has balanced so far, by where they went (all actions together). */
export function regionCallCounts(broker: ServiceBroker): RegionCallCounts {
	let c = counts.get(broker);
	if (!c) {
		c = { local: 0, cross: 0, unknown: 0 };
		counts.set(broker, c);
	}
	return c;
}

/** The region a node's metadata names, or null. */
export function regionOf(metadata: { region?: unknown } | null | undefined): string | null {
	const r = metadata?.region;
	return typeof r === "string" && r !== "" ? r : null;
}

const Base = moleculer.Strategies.Base;

export class RegionStrategy extends Base {
	#counter = 0;

	select(list: Endpoint[]): Endpoint {
		const own = regionOf(this.broker.metadata as { region?: unknown });
		let pool = list;
		if (own) {
			const same = list.filter((ep) => regionOf(ep.node?.metadata) === own);
			if (same.length > 0) pool = same;
		}
		if (this.#counter >= pool.length) this.#counter = 0;
		return pool[this.#counter++];
	}
}

/**
 * Counts each remote call this broker makes by where it went (whatever chose the endpoint: this
 * strategy, another, or the only endpoint there was): `regionCallCounts(broker)`.
 */
export function regionCallsMiddleware(): Middleware {
	let broker: ServiceBroker | null = null;
	return {
		name: "RegionCalls",
		created(b: ServiceBroker) {
			broker = b;
		},
		remoteAction(next: (ctx: Context) => Promise<unknown>) {
			return (ctx: Context) => {
				if (broker) {
					const c = regionCallCounts(broker);
					const own = regionOf(broker.metadata as { region?: unknown });
					const theirs = regionOf((ctx.endpoint as Endpoint | null)?.node?.metadata);
					if (!own || !theirs) c.unknown++;
					else if (own === theirs) c.local++;
					else c.cross++;
				}
				return next(ctx);
			};
		},
	} as Middleware;
}
