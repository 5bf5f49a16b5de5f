/**
 * A proxy-pool lease as a caller on any node uses it: the lease and its URL on the rotating gateway
 * (credential-free, the session riding in the username). The one place that asks proxy-pool for it.
 */
import type { ServiceBroker } from "moleculer";
import { callProxyPool, type ProxyLease } from "../contracts/proxy-pool.ts";
import { NotConfiguredError, notConfiguredOf } from "../core/errors.ts";

/**
 * Take a lease for `domain`/`session`. With no proxy configured in the cluster, or the gateway off,
 * throws a NotConfiguredError (permanent: no retry helps) naming what to set.
 */
export async function acquireGatewayLease(
	broker: ServiceBroker,
	req: { domain: string; session: string },
): Promise<ProxyLease> {
	const lease = await callProxyPool(broker, "proxy-pool.acquire", req).catch((err: unknown) => {
		throw notConfiguredOf(err) ?? err;
	});
	if (!lease.proxyUrl) {
		await callProxyPool(broker, "proxy-pool.release", {
			leaseId: lease.leaseId,
			ok: true,
			unused: true,
		}).catch(() => undefined);
		throw new NotConfiguredError(
			"proxy",
			"no proxy gateway: proxy-pool runs with PROXY_GATEWAY_PORT=off; set it to auto (the default) or a port, or MLS_USE_PROXIES=false",
		);
	}
	return { leaseId: lease.leaseId, proxyUrl: lease.proxyUrl };
}
