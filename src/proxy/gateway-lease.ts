/**
 * A proxy-pool lease as a caller on any node uses it: the lease and its URL on the rotating gateway
 * (credential-free, the session riding in the username). The one place that asks proxy-pool for it.
 */
import type { ServiceBroker } from "moleculer";

export interface GatewayLease {
	leaseId: string;
	proxyUrl: string;
}

/** Take a lease for `domain`/`session`; with the gateway off the lease is given back at once. */
export async function acquireGatewayLease(
	broker: ServiceBroker,
	req: { domain: string; session: string },
): Promise<GatewayLease> {
	const lease = (await broker.call("proxy-pool.acquire", req)) as {
		leaseId: string;
		proxyUrl: string | null;
	};
	if (!lease.proxyUrl) {
		await broker.call("proxy-pool.release", { leaseId: lease.leaseId, ok: true }).catch(() => undefined);
		throw new Error("proxy-pool gateway is off (PROXY_GATEWAY_PORT)");
	}
	return { leaseId: lease.leaseId, proxyUrl: lease.proxyUrl };
}
