/**
 * Builds and starts one Saguaro node: validated config -> shared state -> broker -> the services
 * named in SERVICES (+ extra service files, as moleculer-runner accepts) -> probes.
 */
import type { Server } from "node:http";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import moleculer, { type ServiceSchema } from "moleculer";
import { createBrokerOptions } from "../../moleculer.config.ts";
import { startReachBeacon } from "../cluster/reach.ts";
import type { Config } from "../config/index.ts";
import { createSharedState } from "../shared-state/index.ts";
import type { NodeContext, ServiceFactory } from "./context.ts";
import { startHealthServer } from "./health.ts";
import { formatFindings, preflight } from "./preflight.ts";

const ROOT = resolve(import.meta.dirname, "../..");

export interface RunningNode {
	broker: moleculer.ServiceBroker;
	context: NodeContext;
	stop(): Promise<void>;
}

export interface StartNodeOptions {
	/** Extra service modules (path to a file default-exporting a ServiceFactory or a ServiceSchema). */
	extraServiceFiles?: string[];
}

/** A service file's default export when it is a function: a ServiceFactory, as the file's contract says. */
function isServiceFactory(value: unknown): value is ServiceFactory {
	return typeof value === "function";
}

/** A service file's default export when it is a schema (an object with a service name). */
function isServiceSchema(value: unknown): value is ServiceSchema {
	return typeof value === "object" && value !== null && "name" in value && typeof value.name === "string";
}

export async function loadServiceModule(file: string, ctx: NodeContext): Promise<ServiceSchema[]> {
	const mod: unknown = await import(pathToFileURL(resolve(file)).href);
	const exported = typeof mod === "object" && mod !== null && "default" in mod ? mod.default : undefined;
	if (isServiceFactory(exported)) {
		const built = exported(ctx);
		return Array.isArray(built) ? built : [built];
	}
	if (isServiceSchema(exported)) return [exported];
	throw new Error(`${file} has no default export (a ServiceFactory or ServiceSchema)`);
}

export async function startNode(config: Config, opts: StartNodeOptions = {}): Promise<RunningNode> {
	const state = createSharedState(config.core.redisUrl, config.core.namespace);
	const context: NodeContext = { config, state };
	const broker = new moleculer.ServiceBroker(createBrokerOptions(config));

	const files = [
		...config.core.services.map((name) => resolve(ROOT, "services", `${name}.service.ts`)),
		...(opts.extraServiceFiles ?? []),
	];
	for (const file of files) {
		for (const schema of await loadServiceModule(file, context)) broker.createService(schema);
	}

	let stopping = false;
	let health: Server | null = null;
	// Clustered on Redis: mark this node as reaching it, so tasks go only to nodes that can claim slots.
	const stopBeacon =
		config.core.transporter && state.kind === "redis"
			? startReachBeacon(
					state,
					broker.nodeID,
					config.core.heartbeatIntervalS * 1000,
					config.core.heartbeatTimeoutS * 1000,
				)
			: () => {};
	await broker.start();
	if (config.core.healthPort > 0) {
		health = await startHealthServer(
			config.core.healthPort,
			() => !stopping && broker.started && (!broker.transit || broker.transit.connected),
		);
	}
	broker.logger.info(
		`Saguaro node '${broker.nodeID}' started: services ${config.core.services.join(", ")}.`,
		{
			transporter: config.core.transporter ? "nats" : "none (embedded)",
			sharedState: state.kind,
		},
	);
	// What the enabled services need and lack (Chromium, proxies, tokens): said once, clearly.
	for (const line of formatFindings(preflight(config))) broker.logger.warn(`Start-up check: ${line}`);

	return {
		broker,
		context,
		async stop() {
			if (stopping) return;
			stopping = true;
			stopBeacon();
			await broker.stop();
			await state.close();
			await new Promise((r) => (health ? health.close(r) : r(undefined)));
		},
	};
}
