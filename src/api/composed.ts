/**
 * Answers of the api service that compose other services' actions: the nodes with their services,
 * version and uptime; each browser-pool node's stats; the queues; data quality over the stored
 * properties. Each takes a `call` (the broker's or a context's), so they are plain functions.
 */
import { type DataQuality, DataQualityAccumulator, type PropertyRowLike } from "../analytics/data-quality.ts";
import { type QueueProgressLike, type Queues, queuesOf } from "../analytics/queues.ts";

export type Call = <T>(
	action: string,
	params?: object,
	opts?: { nodeID?: string; timeout?: number },
) => Promise<T>;

interface NodeInfo {
	id: string;
	available: boolean;
	local?: boolean;
	hostname?: string;
	metadata?: Record<string, unknown>;
	client?: { type?: string; version?: string; langVersion?: string };
	services?: { name?: string }[] | string[];
}

export interface NodeRow {
	id: string;
	available: boolean;
	services: string[];
	region: string | null;
	hostname: string | null;
	moleculer: string | null;
	runtime: string | null;
	uptimeS: number | null;
}

const SHORT_CALL = { timeout: 3000 };

/** Every node: its services (without the internal `$node`), region when set, versions, uptime. */
export async function nodeRows(call: Call): Promise<NodeRow[]> {
	const nodes = await call<NodeInfo[]>("$node.list", { withServices: true });
	return Promise.all(
		nodes.map(async (n) => {
			let uptimeS: number | null = null;
			if (n.available) {
				try {
					const h = await call<{ process?: { uptime?: number } }>(
						"$node.health",
						{},
						{ ...SHORT_CALL, nodeID: n.id },
					);
					uptimeS = typeof h.process?.uptime === "number" ? Math.round(h.process.uptime) : null;
				} catch {
					uptimeS = null;
				}
			}
			const services = (n.services ?? [])
				.map((s) => (typeof s === "string" ? s : String(s?.name ?? "")))
				.filter((s) => s && !s.startsWith("$"))
				.sort();
			const region = n.metadata?.region;
			return {
				id: n.id,
				available: Boolean(n.available),
				services: [...new Set(services)],
				region: typeof region === "string" && region ? region : null,
				hostname: n.hostname ?? null,
				moleculer: n.client?.version ?? null,
				runtime: n.client?.langVersion ?? null,
				uptimeS,
			};
		}),
	);
}

/** Nodes running a service (from `$node.services`). */
export async function nodesWith(call: Call, service: string): Promise<string[]> {
	const list = await call<{ name: string; nodes?: string[]; available?: boolean }[]>("$node.services", {
		onlyAvailable: true,
		skipInternal: true,
	});
	return [...new Set(list.filter((s) => s.name === service).flatMap((s) => s.nodes ?? []))].sort();
}

/** `browser-pool.stats` of every node running it, with the node's memory ceiling per browser. */
export async function browserRows(call: Call, maxRssMb: number): Promise<Record<string, unknown>[]> {
	const nodes = await nodesWith(call, "browser-pool");
	return Promise.all(
		nodes.map(async (node) => {
			try {
				const stats = await call<Record<string, unknown>>(
					"browser-pool.stats",
					{},
					{ ...SHORT_CALL, nodeID: node },
				);
				return { node, maxRssMb: (stats.maxRssMb as number | undefined) ?? maxRssMb, ...stats };
			} catch (err) {
				return { node, error: (err as Error).message };
			}
		}),
	);
}

/** Tasks by state and source (running jobs, and all listed). */
export async function queues(call: Call, limit = 100): Promise<Queues> {
	return queuesOf(await call<QueueProgressLike[]>("orchestrator.list", { limit }));
}

/** Data quality over the stored properties, paged by key; stops after `maxRows` (then `sampled`). */
export async function dataQuality(call: Call, pageSize: number, maxRows: number): Promise<DataQuality> {
	const acc = new DataQualityAccumulator();
	let afterKey = "";
	let seen = 0;
	for (;;) {
		const page = await call<{ rows: PropertyRowLike[]; nextKey: string | null }>("properties.find", {
			afterKey,
			pageSize,
		});
		acc.add(page.rows);
		seen += page.rows.length;
		if (!page.nextKey || page.rows.length === 0) return acc.result(false);
		if (seen >= maxRows) return acc.result(true);
		afterKey = page.nextKey;
	}
}
