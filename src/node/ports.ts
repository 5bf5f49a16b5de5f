/**
 * The TCP ports a node listens on, by the setting that names each, so a port another process holds
 * is reported as one line naming the setting (and the node exits 2, as for any bad setting) instead
 * of a stack trace from deep inside a server's start.
 */
import type { Config } from "../config/index.ts";
import { portInUse } from "../utils/net.ts";

export interface NodePort {
	setting: string;
	port: number;
	host: string;
	/** What the setting's 0 means, for the message. */
	zero: string;
}

export function nodePorts(config: Config): NodePort[] {
	const { core, proxy } = config;
	const ports: NodePort[] = [];
	if (core.services.includes("api") && core.apiPort > 0)
		ports.push({ setting: "API_PORT", port: core.apiPort, host: "0.0.0.0", zero: "any free port" });
	if (core.enableMetrics && core.metricsPort > 0)
		ports.push({
			setting: "METRICS_PORT",
			port: core.metricsPort,
			host: "0.0.0.0",
			zero: "no metrics endpoint",
		});
	if (core.healthPort > 0)
		ports.push({ setting: "HEALTH_PORT", port: core.healthPort, host: "0.0.0.0", zero: "no probes" });
	if (core.services.includes("proxy-pool") && typeof proxy.gatewayPort === "number" && proxy.gatewayPort > 0)
		ports.push({
			setting: "PROXY_GATEWAY_PORT",
			port: proxy.gatewayPort,
			host: proxy.gatewayHost,
			zero: "no gateway; auto = a free port",
		});
	return ports;
}

function busyLine(p: NodePort): string {
	return `port ${p.port} (${p.setting}) is already in use: stop what listens there, or set ${p.setting} to a free port (0 = ${p.zero})`;
}

/** The line for the first configured port something else holds, or null when all are free. */
export async function busyPortLine(config: Config): Promise<string | null> {
	for (const p of nodePorts(config)) {
		if (await portInUse(p.port, p.host)) return busyLine(p);
	}
	return null;
}

/** The line for a start that failed on a port taken meanwhile (EADDRINUSE), or null for other errors. */
export function portErrorLine(err: unknown, config: Config): string | null {
	const e = err as NodeJS.ErrnoException & { port?: number };
	if (e?.code !== "EADDRINUSE") return null;
	const p = nodePorts(config).find((n) => n.port === e.port);
	return p ? busyLine(p) : `port ${e.port ?? "?"} is already in use`;
}
