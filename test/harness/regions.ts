/**
 * Two regions on loopback, joined the way README's "Regions" section says (issue 15): each region
 * has its own nats-server, and the two are joined as a NATS supercluster by gateways. Every gateway
 * connection goes through toxiproxy (each server dials the other's proxy, and advertises its own
 * proxy, so gossip never hands out a direct address), and so does region b's link to the one Redis,
 * which lives in region a. `latency(ms)` delays every packet between the regions by `ms` each way,
 * `cut()` partitions them (data held until `heal()`, as a network partition does to TCP).
 *
 *   region a                                  region b
 *   nats-a :client ◄── gateway ── toxiproxy ──► nats-b :client
 *   redis ◄──────────────────────── toxiproxy ── (region b's nodes)
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../../src/utils/net.ts";
import {
	type RestartableServer,
	startRestartable,
	startRestartableRedis,
	startToxiproxy,
	type ToxicProxy,
	type Toxiproxy,
} from "./restartable.ts";
import { findBinary } from "./servers.ts";

export interface Regions {
	/** NATS of each region (nodes of the region connect here). */
	nats: { a: RestartableServer; b: RestartableServer };
	redis: RestartableServer;
	/** Redis as each region reaches it: a directly, b through toxiproxy. */
	redisUrl: { a: string; b: string };
	toxiproxy: Toxiproxy;
	/** The proxies between the regions: both gateway directions and b's link to Redis. */
	links: ToxicProxy[];
	/** Delay every packet between the regions by `ms` each way (replaces the toxics in place). */
	latency(ms: number): Promise<void>;
	/** Partition the regions from each other (gateways and b's Redis link), until heal(). */
	cut(): Promise<void>;
	/** Remove the partition (and any latency). */
	heal(): Promise<void>;
	stop(): Promise<void>;
}

/** A nats-server of region `name` whose gateway dials `remote` through `remoteProxyPort`. */
function startRegionNats(
	name: string,
	gatewayPort: number,
	ownProxyPort: number,
	remote: string,
	remoteProxyPort: number,
): Promise<RestartableServer> {
	return startRestartable({
		name: `nats-${name}`,
		binary: findBinary("nats-server"),
		args: (port, dir) => {
			const conf = join(dir, "nats.conf");
			writeFileSync(
				conf,
				`listen: 127.0.0.1:${port}
server_name: nats-${name}
gateway {
  name: "${name}"
  listen: "127.0.0.1:${gatewayPort}"
  advertise: "127.0.0.1:${ownProxyPort}"
  gateways: [ { name: "${remote}", url: "nats://127.0.0.1:${remoteProxyPort}" } ]
}
`,
			);
			return ["-c", conf];
		},
		url: (port) => `nats://127.0.0.1:${port}`,
	});
}

export async function startRegions(): Promise<Regions> {
	const toxiproxy = await startToxiproxy();
	const [gwA, gwB] = [await freePort(), await freePort()];
	const toA = await toxiproxy.proxy("gateway-to-a", gwA);
	const toB = await toxiproxy.proxy("gateway-to-b", gwB);
	const redis = await startRestartableRedis();
	const redisFromB = await toxiproxy.proxy("redis-from-b", redis.port);
	const a = await startRegionNats("a", gwA, toA.port, "b", toB.port);
	const b = await startRegionNats("b", gwB, toB.port, "a", toA.port);
	const links = [toA, toB, redisFromB];
	const regions: Regions = {
		nats: { a, b },
		redis,
		redisUrl: { a: redis.url, b: `redis://127.0.0.1:${redisFromB.port}` },
		toxiproxy,
		links,
		async latency(ms) {
			for (const l of links) {
				await l.heal();
				await l.latency(ms);
			}
		},
		async cut() {
			for (const l of links) await l.partition();
		},
		async heal() {
			for (const l of links) await l.heal();
		},
		async stop() {
			await Promise.all([a.destroy(), b.destroy(), redis.destroy()]);
			await toxiproxy.destroy();
		},
	};
	return regions;
}
