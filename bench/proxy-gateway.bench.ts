/**
 * Gateway overhead against direct proxying and mubeng, each contender in its own process, the same
 * load generator for all. Absolute-form HTTP GETs through the same upstreams (the sandbox proxy farm):
 *   - direct:  loader -> upstream proxy (credentials in the loader, rotated loader-side)
 *   - gateway: loader -> Saguaro gateway (pool lease, failover on) -> upstream proxy
 *   - mubeng:  loader -> mubeng (rotating every request) -> upstream proxy, when .tools/bin/mubeng
 *              exists (scripts/build-mubeng.sh copies or builds it)
 *   - relay:   loader -> a bare TCP relay (node:net, one port per upstream, bytes piped as they come,
 *              credentials from the loader) -> upstream proxy: no HTTP at all, so the floor of what
 *              one more hop in a third Node process costs on this machine (--no-relay leaves it out)
 * Processes: the world (farm + target site), the gateway, mubeng, and one fresh loader process per
 * measured run. Rounds alternate the order of the modes; the table gives each mode's median over the
 * rounds, and ratios of medians. The CPU the gateway and mubeng processes spent per request comes
 * from /proc (user + system time).
 *
 *   node bench/proxy-gateway.bench.ts [requests=3000] [concurrency=32] [--rounds=3] [--warmup=1]
 *                                     [--loader-warmup=2000] (requests each loader sends before its
 *                                     clock starts) [--gateway-procs=1]
 *                                     [--profile=<dir>] (gateway under node --cpu-prof, written there)
 *                                     [--stub-pool] (adds "gw-stub": the gateway over a bare round-robin
 *                                     instead of the pool, to tell the HTTP path's cost from the leases')
 *                                     [--gateway-x=N] (adds "gw-xN": N gateway processes on one port)
 *                                     [--no-relay] [--only=gateway,mubeng] (direct always runs)
 *                                     [--state=redis] (the gateways' pools keep their state in a
 *                                     redis-server started for the run, as a cluster's do; default memory)
 *                                     [--baseline=<gateway module>] (adds "gw-base": another version of
 *                                     src/proxy/gateway.ts and the pool.ts beside it, e.g. the last
 *                                     commit's copied next to them, to compare a change side by side in
 *                                     the same run)
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { startProxyFarm } from "../sandbox/proxy-farm.ts";
import { parseProxyUrl, proxyAuthorization } from "../src/proxy/proxy-url.ts";
import { freePort } from "../src/utils/net.ts";
import { waitFor } from "../src/utils/time.ts";
import { startExitIpSite } from "../test/harness/exit-ip-site.ts";

const MUBENG = resolve(import.meta.dirname, "../.tools/bin/mubeng");
const flag = (name: string, dflt: string) =>
	process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt;
const positional = process.argv.slice(2).filter((a) => !a.startsWith("--"));

interface Hop {
	host: string;
	port: number;
	auth: string | null;
}

interface Result {
	p50: number;
	p99: number;
	rps: number;
	errors: number;
	/** CPU the loader itself spent per request (user + system). */
	loaderCpuMs: number;
}

// ---------------------------------------------------------------------------------------------
// Child: the load generator (the same for every mode).

async function load(
	hops: Hop[],
	url: string,
	requests: number,
	concurrency: number,
	warmupRequests: number,
): Promise<Result> {
	const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
	const latencies: number[] = [];
	const target = new URL(url);
	let errors = 0;
	let next = 0;
	let rr = 0;
	const one = (): Promise<void> =>
		new Promise((done) => {
			const hop = hops[rr++ % hops.length]!;
			const headers: Record<string, string> = { host: target.host };
			if (hop.auth) headers["proxy-authorization"] = hop.auth;
			const started = performance.now();
			const req = httpRequest({ host: hop.host, port: hop.port, path: url, headers, agent }, (res) => {
				res.resume();
				res.on("end", () => {
					if (res.statusCode === 200) latencies.push(performance.now() - started);
					else errors++;
					done();
				});
			});
			req.on("error", () => {
				errors++;
				done();
			});
			req.end();
		});
	let limit = 0;
	const worker = async () => {
		while (next < limit) {
			next++;
			await one();
		}
	};
	// Warm-up, in every mode alike: connections opened and the loader's own JIT warm (a fresh process
	// spends about twice the CPU per request over its first thousand or so, which on a small host is
	// taken from the contenders) before the clock starts.
	limit = warmupRequests;
	await Promise.all(Array.from({ length: concurrency }, worker));
	latencies.length = 0;
	errors = 0;
	next = 0;
	limit = requests;
	const cpu0 = process.cpuUsage();
	const t0 = performance.now();
	await Promise.all(Array.from({ length: concurrency }, worker));
	const seconds = (performance.now() - t0) / 1000;
	const cpu = process.cpuUsage(cpu0);
	agent.destroy();
	latencies.sort((a, b) => a - b);
	const q = (p: number) =>
		latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
	return {
		p50: q(0.5),
		p99: q(0.99),
		rps: latencies.length / seconds,
		errors,
		loaderCpuMs: (cpu.user + cpu.system) / 1000 / requests,
	};
}

// Child: the world (farm + site); prints its URLs, runs until stdin closes.
async function world(): Promise<void> {
	const farm = await startProxyFarm({ count: 5, seed: 9 });
	const site = await startExitIpSite();
	console.log(`READY ${JSON.stringify({ proxies: farm.urls(), site: site.url })}`);
	await new Promise((r) => process.stdin.once("close", r).resume());
	await farm.close();
	await site.close();
}

// Child: the relay floor, one listening port per upstream proxy, each connection piped to it.
async function relayChild(proxyUrls: string[]): Promise<void> {
	const { createServer, connect } = await import("node:net");
	const servers = proxyUrls.map((u) => {
		const p = parseProxyUrl(u, "bench");
		return createServer({ noDelay: true }, (client) => {
			const up = connect({ host: p.host, port: p.port, noDelay: true });
			client.pipe(up).pipe(client);
			client.on("error", () => up.destroy());
			up.on("error", () => client.destroy());
			client.on("close", () => up.destroy());
			up.on("close", () => client.destroy());
		});
	});
	const ports = await Promise.all(
		servers.map(
			(s) =>
				new Promise<number>((ok) =>
					s.listen(0, "127.0.0.1", () => ok((s.address() as { port: number }).port)),
				),
		),
	);
	console.log(`READY ${JSON.stringify({ ports, pids: [process.pid] })}`);
	await new Promise((r) => process.stdin.once("close", r).resume());
	for (const s of servers) s.close();
	process.exit(0);
}

// Child: the gateway with its pool (as the proxy-pool service runs it); prints its port, runs until
// stdin closes.
// With --stub (the "gw-stub" mode of --stub-pool) its pool is a bare round-robin with no shared
// state, so the difference between the two gateway columns is what the pool's leases cost.
async function gatewayChild(proxyUrls: string[], port: number): Promise<void> {
	// --module: another version of the gateway, with the pool beside it (pool.ts in its folder).
	const module = flag("module", "");
	const dir = module ? dirname(resolve(module)) : resolve(import.meta.dirname, "../src/proxy");
	const { ProxyGateway } = (await import(
		join(dir, "gateway.ts")
	)) as typeof import("../src/proxy/gateway.ts");
	const { ProxyPool } = (await import(join(dir, "pool.ts"))) as typeof import("../src/proxy/pool.ts");
	const { MemorySharedState, RedisSharedState } = await import("../src/shared-state/index.ts");
	const redisUrl = flag("redis", "");
	const state = redisUrl ? new RedisSharedState(redisUrl, `bench-${process.pid}`) : new MemorySharedState();
	const endpoints = proxyUrls.map((u) => parseProxyUrl(u, "bench"));
	const real = new ProxyPool(state, { strategy: "round-robin", maxConcurrency: 0 });
	real.setSource("bench", endpoints);
	let rr = 0;
	const stub = {
		acquireHeld: async () => {
			const proxy = endpoints[rr++ % endpoints.length]!;
			return {
				leaseId: `${proxy.id}.${rr}`,
				proxy,
				domain: null,
				session: null,
				sticky: false,
				slotKey: null,
			};
		},
		releaseHeld: async () => undefined,
		leasedProxy: async () => null,
	};
	const pool = process.argv.includes("--stub") ? stub : real;
	const gateway = new ProxyGateway({ pool, port, reusePort: true });
	const bound = await gateway.listen();
	console.log(`READY ${JSON.stringify({ port: bound, pids: [process.pid] })}`);
	await new Promise((r) => process.stdin.once("close", r).resume());
	await gateway.close();
	await state.close();
}

// ---------------------------------------------------------------------------------------------
// Parent.

function child(args: string[], nodeArgs: string[] = []): Promise<{ proc: ChildProcess; ready: unknown }> {
	const proc = spawn(process.execPath, [...nodeArgs, import.meta.filename, ...args], {
		stdio: ["pipe", "pipe", "inherit"],
	});
	return new Promise((ok, fail) => {
		const lines = createInterface({ input: proc.stdout! });
		lines.on("line", (line) => {
			if (line.startsWith("READY ")) ok({ proc, ready: JSON.parse(line.slice(6)) });
			if (line.startsWith("RESULT ")) ok({ proc, ready: JSON.parse(line.slice(7)) });
		});
		proc.once("exit", (code) => fail(new Error(`${args[0]} exited ${code}`)));
	});
}

/** CPU time (user + system, ms) of a process and its children that have been waited for. */
function cpuMs(pid: number): number {
	try {
		const rest = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
		return ((Number(rest[11]) + Number(rest[12])) * 1000) / 100;
	} catch {
		return 0;
	}
}

async function startMubeng(
	proxyUrls: string[],
	dir: string,
): Promise<{ port: number; child: ChildProcess } | null> {
	if (!existsSync(MUBENG)) return null;
	const file = join(dir, "proxies.txt");
	writeFileSync(file, `${proxyUrls.join("\n")}\n`);
	const port = await freePort();
	const proc = spawn(MUBENG, ["-a", `127.0.0.1:${port}`, "-f", file, "-r", "1", "-m", "sequent"], {
		stdio: "ignore",
	});
	await waitFor(
		() =>
			new Promise<boolean>((ok) => {
				const s = httpRequest({ host: "127.0.0.1", port, method: "HEAD", path: "/" }, () => ok(true));
				s.on("error", () => ok(false));
				s.end();
			}),
		"mubeng to listen",
		10_000,
	);
	return { port, child: proc };
}

const median = (xs: number[]) => {
	const s = [...xs].sort((a, b) => a - b);
	const m = Math.floor(s.length / 2);
	return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function parent(): Promise<void> {
	const requests = Number(positional[0] ?? 3000);
	const concurrency = Number(positional[1] ?? 32);
	const rounds = Number(flag("rounds", "3"));
	const warmup = Number(flag("warmup", "1"));
	const loaderWarmup = Math.max(concurrency * 4, Number(flag("loader-warmup", "2000")));
	const profileDir = flag("profile", "");
	const w = await child(["--role=world"]);
	const world = w.ready as { proxies: string[]; site: string };
	const gwNodeArgs = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
	// --state=redis: the gateways keep their pool's state in a redis-server, as a cluster does.
	const stateKind = flag("state", "memory");
	if (stateKind !== "memory" && stateKind !== "redis")
		throw new Error(`--state is memory or redis, not ${stateKind}`);
	const redis =
		stateKind === "redis" ? await (await import("../test/harness/servers.ts")).startRedis() : null;
	const stateArgs = redis ? [`--redis=${redis.url}`] : [];
	// One gateway process, or several sharing its port (--gateway-procs, SO_REUSEPORT); each has its
	// own in-memory pool here (a cluster's pools share Redis). --gateway-x=N adds a "gw-xN" column:
	// N processes on another port, beside the single one in the same run.
	const startGateways = async (n: number, extra: string[] = []) => {
		const first = await child(
			["--role=gateway", "--port=0", ...stateArgs, ...extra, JSON.stringify(world.proxies)],
			gwNodeArgs,
		);
		const at = first.ready as { port: number; pids: number[] };
		const kids = [first];
		for (let i = 1; i < n; i++) {
			const next = await child(
				["--role=gateway", `--port=${at.port}`, ...stateArgs, ...extra, JSON.stringify(world.proxies)],
				gwNodeArgs,
			);
			at.pids.push(...(next.ready as { pids: number[] }).pids);
			kids.push(next);
		}
		return { port: at.port, pids: at.pids, kids };
	};
	const gatewayProcs = Number(flag("gateway-procs", "1"));
	const gw = await startGateways(gatewayProcs);
	const [g, ...more] = gw.kids;
	const xProcs = Number(flag("gateway-x", "0"));
	const gx = xProcs > 1 ? await startGateways(xProcs) : null;
	if (gx) more.push(...gx.kids);
	const baselineModule = flag("baseline", "");
	const baseline = baselineModule
		? await child(
				[
					"--role=gateway",
					"--port=0",
					...stateArgs,
					`--module=${baselineModule}`,
					JSON.stringify(world.proxies),
				],
				gwNodeArgs,
			)
		: null;
	const stubbed = process.argv.includes("--stub-pool")
		? await child(["--role=gateway", "--port=0", "--stub", JSON.stringify(world.proxies)], gwNodeArgs)
		: null;
	const dir = mkdtempSync(join(tmpdir(), "saguaro-bench-"));
	const mubeng = await startMubeng(world.proxies, dir);
	const relay = process.argv.includes("--no-relay")
		? null
		: await child(["--role=relay", JSON.stringify(world.proxies)]);
	const url = `${world.site}/bench`;
	const hopsOf: Record<string, Hop[]> = {
		direct: world.proxies.map((u) => {
			const p = parseProxyUrl(u, "bench");
			return { host: p.host, port: p.port, auth: proxyAuthorization(p) };
		}),
		gateway: [{ host: "127.0.0.1", port: gw.port, auth: null }],
	};
	const pidsOf: Record<string, number[]> = { direct: [], gateway: gw.pids };
	if (mubeng) {
		hopsOf.mubeng = [{ host: "127.0.0.1", port: mubeng.port, auth: null }];
		pidsOf.mubeng = [mubeng.child.pid!];
	}
	if (gx) {
		hopsOf[`gw-x${xProcs}`] = [{ host: "127.0.0.1", port: gx.port, auth: null }];
		pidsOf[`gw-x${xProcs}`] = gx.pids;
	}
	if (baseline) {
		const b = baseline.ready as { port: number; pids: number[] };
		hopsOf["gw-base"] = [{ host: "127.0.0.1", port: b.port, auth: null }];
		pidsOf["gw-base"] = b.pids;
	}
	if (stubbed) {
		const st = stubbed.ready as { port: number; pids: number[] };
		hopsOf["gw-stub"] = [{ host: "127.0.0.1", port: st.port, auth: null }];
		pidsOf["gw-stub"] = st.pids;
	}
	if (relay) {
		const r = relay.ready as { ports: number[]; pids: number[] };
		hopsOf.relay = hopsOf.direct!.map((h, i) => ({ ...h, host: "127.0.0.1", port: r.ports[i]! }));
		pidsOf.relay = r.pids;
	}
	if (!mubeng)
		console.log(`mubeng skipped: ${MUBENG} not found (scripts/build-mubeng.sh copies or builds it)`);
	const only = flag("only", "");
	const modes = Object.keys(hopsOf).filter((m) => m === "direct" || !only || only.split(",").includes(m));
	const runs: Record<string, (Result & { cpuMsPerReq: number; worldCpuMs: number; stateCpuMs: number })[]> =
		Object.fromEntries(modes.map((m) => [m, []]));
	try {
		// Warm-up rounds first, unmeasured: the JIT of the farm and of each proxy process compiles its
		// hot path there, so the measured rounds compare steady states rather than who warmed up first.
		for (let round = -warmup; round < rounds; round++) {
			// Rotate the order (round r starts with mode r mod n, so no mode always runs first) and reverse
			// it every other round, so no mode always runs right after the same other one either.
			const rotated = modes.map(
				(_, i) => modes[(((i + round) % modes.length) + modes.length) % modes.length]!,
			);
			const order = Math.abs(round) % 2 === 1 ? rotated.reverse() : rotated;
			for (const mode of order) {
				const cpu0 = pidsOf[mode]!.reduce((s, p) => s + cpuMs(p), 0);
				const world0 = cpuMs(w.proc.pid!);
				const state0 = redis ? cpuMs(redis.process.pid!) : 0;
				const { ready } = await child([
					"--role=load",
					JSON.stringify(hopsOf[mode]),
					url,
					String(requests),
					String(concurrency),
					String(loaderWarmup),
				]);
				const cpu1 = pidsOf[mode]!.reduce((s, p) => s + cpuMs(p), 0);
				const world1 = cpuMs(w.proc.pid!);
				const state1 = redis ? cpuMs(redis.process.pid!) : 0;
				const r = ready as Result;
				if (round < 0) {
					console.log(`warm-up ${mode.padEnd(7)} ${r.rps.toFixed(0).padStart(6)} req/s (not counted)`);
					continue;
				}
				const sent = requests + loaderWarmup;
				runs[mode]!.push({
					...r,
					cpuMsPerReq: (cpu1 - cpu0) / sent,
					worldCpuMs: (world1 - world0) / sent,
					stateCpuMs: (state1 - state0) / sent,
				});
				console.log(
					`round ${round + 1} ${mode.padEnd(7)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  errors ${r.errors}`,
				);
			}
		}
	} finally {
		mubeng?.child.kill("SIGTERM");
		const kids = [
			g,
			...more,
			w,
			...(relay ? [relay] : []),
			...(stubbed ? [stubbed] : []),
			...(baseline ? [baseline] : []),
		];
		for (const c of kids) c.proc.stdin!.end();
		await Promise.all(kids.map((c) => new Promise((r) => c.proc.once("exit", r))));
		rmSync(dir, { recursive: true, force: true });
		await redis?.stop();
	}
	const med = Object.fromEntries(
		modes.map((m) => {
			const rs = runs[m]!;
			return [
				m,
				{
					p50: median(rs.map((r) => r.p50)),
					p99: median(rs.map((r) => r.p99)),
					rps: median(rs.map((r) => r.rps)),
					errors: rs.reduce((s, r) => s + r.errors, 0),
					cpu: median(rs.map((r) => r.cpuMsPerReq)),
					world: median(rs.map((r) => r.worldCpuMs)),
					state: median(rs.map((r) => r.stateCpuMs)),
					loader: median(rs.map((r) => r.loaderCpuMs)),
				},
			];
		}),
	);
	console.log(
		`\n${requests} requests x ${rounds} rounds, concurrency ${concurrency}, ${world.proxies.length} upstream proxies (sandbox farm), ${gatewayProcs} gateway process(es); medians over rounds\n`,
	);
	const base = med.direct!;
	console.table(
		modes.map((m) => ({
			mode: m,
			"p50 ms": med[m]!.p50.toFixed(2),
			"p99 ms": med[m]!.p99.toFixed(2),
			"req/s": med[m]!.rps.toFixed(0),
			errors: med[m]!.errors,
			"CPU ms/req: proxy": m === "direct" ? "-" : med[m]!.cpu.toFixed(3),
			"farm+site": med[m]!.world.toFixed(3),
			...(redis ? { redis: m === "direct" ? "-" : med[m]!.state.toFixed(3) } : {}),
			loader: med[m]!.loader.toFixed(3),
			"throughput x direct": (med[m]!.rps / base.rps).toFixed(2),
			"p50 x direct": (med[m]!.p50 / base.p50).toFixed(2),
		})),
	);
	const g1 = med.gateway!;
	const mb = med.mubeng;
	const floor = med.relay;
	if (floor)
		console.log(
			`relay (the floor of one more Node hop) vs direct: throughput x${(floor.rps / base.rps).toFixed(2)}, p50 x${(floor.p50 / base.p50).toFixed(2)}; gateway vs relay: throughput x${(g1.rps / floor.rps).toFixed(2)}`,
		);
	console.log(
		`gateway vs direct: throughput x${(g1.rps / base.rps).toFixed(2)}, p50 x${(g1.p50 / base.p50).toFixed(2)}`,
	);
	if (mb)
		console.log(
			`gateway vs mubeng: throughput x${(g1.rps / mb.rps).toFixed(2)}, p50 x${(g1.p50 / mb.p50).toFixed(2)}, p99 x${(g1.p99 / mb.p99).toFixed(2)}`,
		);
}

const role = flag("role", "");
if (role === "world") await world();
else if (role === "relay") await relayChild(JSON.parse(positional[0]!));
else if (role === "gateway") await gatewayChild(JSON.parse(positional[0]!), Number(flag("port", "0")));
else if (role === "load") {
	const [hops, url, requests, concurrency, warmupRequests] = positional;
	const r = await load(
		JSON.parse(hops!),
		url!,
		Number(requests),
		Number(concurrency),
		Number(warmupRequests),
	);
	console.log(`RESULT ${JSON.stringify(r)}`);
} else await parent();
