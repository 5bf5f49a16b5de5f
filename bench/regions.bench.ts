/**
 * Regions (issue 15), measured on loopback with the real parts: two nats-servers joined as a
 * supercluster by gateways, one Redis in region a, and toxiproxy adding LATENCY ms each way between
 * the regions (gateways and region b's Redis link): test/harness/regions.ts.
 *
 * 1. Calls. Two worker brokers per region offer `echo.who`; one caller per region makes CALLS calls
 *    with each balancing strategy (RoundRobin, Moleculer's Latency, Saguaro's RegionStrategy).
 *    Prints the share of calls that crossed regions and the mean call time, with 1 region (every
 *    node in a) and with 2. The RegionCalls middleware counts where each call went.
 * 2. Budget. HostPolicy callers (CALLERS per region, each keeping one request in flight) share one
 *    host budget of BUDGET requests per second through the one Redis, against a local HTTP server
 *    that logs arrivals, for SECONDS. Prints achieved/allowed (requests per window over the run /
 *    BUDGET) and the busiest sliding window, with 1 region and with 2 (region b 2 x LATENCY ms
 *    from Redis).
 *
 *   node bench/regions.bench.ts [latencyMs=50] [calls=300] [seconds=10]
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import moleculer from "moleculer";
import { maxInSlidingWindow } from "../sandbox/counters.ts";
import { RegionStrategy, regionCallCounts, regionCallsMiddleware } from "../src/cluster/region-strategy.ts";
import { HostPolicy } from "../src/core/host-policy.ts";
import { RedisSharedState } from "../src/shared-state/index.ts";
import { sleep } from "../src/utils/time.ts";
import { startRegions } from "../test/harness/regions.ts";

const LATENCY = Number(process.argv[2] ?? 50);
const CALLS = Number(process.argv[3] ?? 300);
const SECONDS = Number(process.argv[4] ?? 10);
const BUDGET = 20;
const CALLERS = 4;

type Strategy = "RoundRobin" | "Latency" | "Region";

function brokerIn(url: string, nodeID: string, region: string, strategy: Strategy, ns: string) {
	return new moleculer.ServiceBroker({
		namespace: ns,
		nodeID,
		transporter: url as moleculer.BrokerOptions["transporter"],
		logger: false,
		metadata: { region },
		heartbeatInterval: 1,
		heartbeatTimeout: 5,
		requestTimeout: 10_000,
		registry: {
			strategy: strategy === "Region" ? RegionStrategy : strategy,
			strategyOptions: strategy === "Latency" ? { pingInterval: 1, collectCount: 3 } : {},
			preferLocal: true,
		},
		middlewares: [regionCallsMiddleware()],
	});
}

/** Where the workers run: all in a; 2 + 2; 1 in a + 6 in b (more endpoints than Latency samples). */
const LAYOUTS = {
	"1 region": ["a", "a", "a", "a"],
	"2 even": ["a", "a", "b", "b"],
	"2 uneven": ["a", "b", "b", "b", "b", "b", "b"],
} as const;
type Layout = keyof typeof LAYOUTS;

async function measureCalls(urls: { a: string; b: string }, layout: Layout, strategy: Strategy) {
	const ns = `bench-${strategy}-${layout.replace(" ", "-")}-${process.pid}`;
	const placed: readonly ("a" | "b")[] = LAYOUTS[layout];
	const twoRegions = placed.includes("b");
	const workers = placed.map((region, i) => {
		const b = brokerIn(urls[region], `w-${region}-${i}`, region, strategy, ns);
		b.createService({ name: "echo", actions: { who: () => b.nodeID } });
		return b;
	});
	const callers = (twoRegions ? (["a", "b"] as const) : (["a"] as const)).map((r) =>
		brokerIn(urls[r], `caller-${r}`, r, strategy, ns),
	);
	const all = [...workers, ...callers];
	await Promise.all(all.map((b) => b.start()));
	for (const c of callers) {
		await c.waitForServices("echo", 30_000);
		for (let i = 0; i < 200; i++) {
			const list = c.registry.getActionEndpoints("echo.who") as unknown as { endpoints: unknown[] };
			if (list?.endpoints.length === placed.length) break;
			await sleep(50);
		}
	}
	// Latency needs its pings measured before it knows anything.
	if (strategy === "Latency") await sleep(4000);
	let totalMs = 0;
	let n = 0;
	for (const c of callers) {
		for (let i = 0; i < CALLS; i++) {
			const t = performance.now();
			await c.call("echo.who");
			totalMs += performance.now() - t;
			n++;
		}
	}
	const counts = callers.map((c) => regionCallCounts(c));
	const cross = counts.reduce((s, c) => s + c.cross, 0);
	const calls = counts.reduce((s, c) => s + c.local + c.cross + c.unknown, 0);
	await Promise.all(all.map((b) => b.stop()));
	return { crossShare: cross / calls, meanMs: totalMs / n };
}

async function measureBudget(redisUrl: { a: string; b: string }, twoRegions: boolean) {
	const arrivals: number[] = [];
	const server = createServer((_req, res) => {
		arrivals.push(Date.now());
		res.end("ok");
	});
	await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
	const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
	const host = `bench-${twoRegions ? 2 : 1}-${process.pid}`;
	const regions = twoRegions ? (["a", "b"] as const) : (["a"] as const);
	const states = regions.map((r) => new RedisSharedState(redisUrl[r], "bench-regions"));
	const stopAt = Date.now() + SECONDS * 1000;
	const runners: Promise<void>[] = [];
	for (const state of states) {
		// Each region's callers share one policy, as one node's would.
		const policy = new HostPolicy(state, {
			host,
			rate: { points: BUDGET, durationMs: 1000 },
			lateToleranceMs: 250,
		});
		const perRegion = twoRegions ? CALLERS : 2 * CALLERS;
		for (let i = 0; i < perRegion; i++) {
			runners.push(
				(async () => {
					while (Date.now() < stopAt) {
						await policy.run("get", async () => {
							const res = await fetch(url);
							await res.text();
							return { kind: "ok", value: null };
						});
					}
				})(),
			);
		}
	}
	await Promise.all(runners);
	await Promise.all(states.map((s) => s.close()));
	await new Promise<void>((r) => server.close(() => r()));
	arrivals.sort((x, y) => x - y);
	const spanMs = arrivals[arrivals.length - 1] - arrivals[0];
	const perWindow = ((arrivals.length - 1) / spanMs) * 1000;
	return {
		achieved: perWindow / BUDGET,
		busiest: maxInSlidingWindow(arrivals, 1000),
		requests: arrivals.length,
	};
}

const regions = await startRegions();
try {
	await regions.latency(LATENCY);
	const urls = { a: regions.nats.a.url, b: regions.nats.b.url };
	console.log(
		`regions on loopback: 2 nats-servers joined by gateways, ${LATENCY} ms each way between them\n`,
	);
	console.log(
		`calls (${CALLS} per caller, one caller per region; workers: 1 region = 4 in a, 2 even = 2 + 2, 2 uneven = 1 in a + 6 in b)`,
	);
	console.log("strategy     workers    cross-region share  mean call ms");
	for (const strategy of ["RoundRobin", "Latency", "Region"] as const) {
		for (const layout of Object.keys(LAYOUTS) as Layout[]) {
			const r = await measureCalls(urls, layout, strategy);
			console.log(
				`${strategy.padEnd(12)} ${layout.padEnd(10)} ${(r.crossShare * 100).toFixed(1).padStart(17)}%  ${r.meanMs.toFixed(1).padStart(12)}`,
			);
		}
	}
	console.log(`\nbudget (${BUDGET} requests/s for the whole cluster, ${2 * CALLERS} callers, ${SECONDS} s)`);
	// A request leaves a window after the answer of the request a budget before it
	// (src/core/sliding-budget.ts): what is lost per window is one answer time (here plus the 50 ms
	// link to Redis for region b).
	console.log("regions  requests  achieved/allowed  busiest 1 s window");
	for (const two of [false, true]) {
		const r = await measureBudget(regions.redisUrl, two);
		console.log(
			`${String(two ? 2 : 1).padEnd(8)} ${String(r.requests).padStart(8)}  ${r.achieved.toFixed(3).padStart(16)}  ${String(r.busiest).padStart(10)}/${BUDGET}`,
		);
	}
} finally {
	await regions.stop();
}
process.exit(0);
