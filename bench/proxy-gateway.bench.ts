/**
 * Gateway overhead, side by side in one run, same upstreams (the sandbox proxy farm), same
 * concurrency: absolute-form HTTP GETs
 *   - direct:  client -> upstream proxy (credentials in the client, rotated client-side)
 *   - gateway: client -> Saguaro gateway (pool lease, failover) -> upstream proxy
 *   - mubeng:  client -> mubeng (rotating every request) -> upstream proxy, when .tools/bin/mubeng
 *              exists (scripts/build-mubeng.sh builds it)
 * Prints p50/p99 latency and throughput per mode and as ratios to direct.
 *
 *   node bench/proxy-gateway.bench.ts [requests=3000] [concurrency=32]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startProxyFarm } from "../sandbox/proxy-farm.ts";
import { ProxyGateway } from "../src/proxy/gateway.ts";
import { ProxyPool } from "../src/proxy/pool.ts";
import { parseProxyUrl, proxyAuthorization } from "../src/proxy/proxy-url.ts";
import { MemorySharedState } from "../src/shared-state/index.ts";
import { freePort } from "../src/utils/net.ts";
import { waitFor } from "../src/utils/time.ts";
import { startExitIpSite } from "../test/harness/exit-ip-site.ts";

const REQUESTS = Number(process.argv[2] ?? 3000);
const CONCURRENCY = Number(process.argv[3] ?? 32);
const MUBENG = resolve(import.meta.dirname, "../.tools/bin/mubeng");

interface Hop {
	host: string;
	port: number;
	auth: string | null;
}

interface Result {
	mode: string;
	p50: number;
	p99: number;
	rps: number;
	errors: number;
}

async function load(mode: string, hops: () => Hop, url: string): Promise<Result> {
	const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
	const latencies: number[] = [];
	let errors = 0;
	let next = 0;
	const one = (): Promise<void> =>
		new Promise((done) => {
			const hop = hops();
			const target = new URL(url);
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
	const worker = async () => {
		while (next < REQUESTS) {
			next++;
			await one();
		}
	};
	const t0 = performance.now();
	await Promise.all(Array.from({ length: CONCURRENCY }, worker));
	const seconds = (performance.now() - t0) / 1000;
	agent.destroy();
	latencies.sort((a, b) => a - b);
	const q = (p: number) =>
		latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
	return { mode, p50: q(0.5), p99: q(0.99), rps: latencies.length / seconds, errors };
}

async function startMubeng(
	proxyUrls: string[],
	dir: string,
): Promise<{ port: number; child: ChildProcess } | null> {
	if (!existsSync(MUBENG)) return null;
	const file = join(dir, "proxies.txt");
	writeFileSync(file, `${proxyUrls.join("\n")}\n`);
	const port = await freePort();
	const child = spawn(MUBENG, ["-a", `127.0.0.1:${port}`, "-f", file, "-r", "1", "-m", "sequent"], {
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
	return { port, child };
}

async function main() {
	const farm = await startProxyFarm({ count: 5, seed: 9 });
	const site = await startExitIpSite();
	const state = new MemorySharedState();
	const endpoints = farm.urls().map((u) => parseProxyUrl(u, "bench"));
	const pool = new ProxyPool(state, { strategy: "round-robin", maxConcurrency: 0 });
	pool.setSource("bench", endpoints);
	const gateway = new ProxyGateway({ pool, port: 0 });
	const gwPort = await gateway.listen();
	const dir = mkdtempSync(join(tmpdir(), "saguaro-bench-"));
	const mubeng = await startMubeng(farm.urls(), dir);
	try {
		let rr = 0;
		const direct = (): Hop => {
			const p = endpoints[rr++ % endpoints.length]!;
			return { host: p.host, port: p.port, auth: proxyAuthorization(p) };
		};
		const url = `${site.url}/bench`;
		// Warm-up so connection set-up is not measured in the first mode only.
		await load("warm-up", direct, url);
		const results: Result[] = [];
		results.push(await load("direct", direct, url));
		results.push(await load("gateway", () => ({ host: "127.0.0.1", port: gwPort, auth: null }), url));
		if (mubeng)
			results.push(await load("mubeng", () => ({ host: "127.0.0.1", port: mubeng.port, auth: null }), url));
		else console.log(`mubeng skipped: ${MUBENG} not found (build it with scripts/build-mubeng.sh)`);

		const base = results[0]!;
		console.log(
			`\n${REQUESTS} requests, concurrency ${CONCURRENCY}, ${endpoints.length} upstream proxies (sandbox farm)\n`,
		);
		console.table(
			results.map((r) => ({
				mode: r.mode,
				"p50 ms": r.p50.toFixed(2),
				"p99 ms": r.p99.toFixed(2),
				"req/s": r.rps.toFixed(0),
				errors: r.errors,
				"p50 x direct": (r.p50 / base.p50).toFixed(2),
				"p99 x direct": (r.p99 / base.p99).toFixed(2),
				"throughput x direct": (r.rps / base.rps).toFixed(2),
			})),
		);
		const gw = results.find((r) => r.mode === "gateway")!;
		const mb = results.find((r) => r.mode === "mubeng");
		console.log(
			`gateway added latency: p50 +${(gw.p50 - base.p50).toFixed(2)} ms, p99 +${(gw.p99 - base.p99).toFixed(2)} ms`,
		);
		if (mb) {
			console.log(
				`gateway vs mubeng: p50 x${(gw.p50 / mb.p50).toFixed(2)}, p99 x${(gw.p99 / mb.p99).toFixed(2)}, throughput x${(gw.rps / mb.rps).toFixed(2)}`,
			);
		}
	} finally {
		mubeng?.child.kill("SIGTERM");
		await gateway.close();
		await farm.close();
		await site.close();
		await state.close();
		rmSync(dir, { recursive: true, force: true });
	}
}

await main();
