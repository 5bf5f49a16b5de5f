/**
 * Budget to the last request: several worker processes share one host budget through Redis
 * (HostPolicy, as the maricopa/mls/llm services use it) and send as fast as it lets them, against a
 * host that stamps every request on arrival (sandbox/counters.ts, as the sandbox sites do) and
 * answers after a random 0..latency ms. The workers could send far more than the budget. Prints, on
 * the host's clock: requests, achieved / allowed over the run, and the most requests seen in any
 * sliding window (must not exceed the budget).
 *
 *   node bench/budget.bench.ts [--workers=3] [--concurrency=8] [--points=20] [--window-ms=1000]
 *                              [--windows=10] [--latency-ms=20] [--slack-ms=10]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:http";
import { createInterface } from "node:readline";
import { maxInSlidingWindow, RequestCounters } from "../sandbox/counters.ts";
import { HostPolicy } from "../src/core/host-policy.ts";
import { createSharedState } from "../src/shared-state/index.ts";
import { startRedis } from "../test/harness/servers.ts";

const flag = (name: string, dflt: number) =>
	Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt);

async function worker(): Promise<void> {
	const [redisUrl, hostUrl, id] = process.argv.slice(process.argv.indexOf("--worker") + 1);
	const points = flag("points", 20);
	const windowMs = flag("window-ms", 1000);
	const concurrency = flag("concurrency", 8);
	const state = createSharedState(redisUrl!, "bench");
	const policy = new HostPolicy(state, {
		host: "budget-bench",
		rate: { points, durationMs: windowMs },
		lateToleranceMs: flag("slack-ms", 10),
		nodeId: `w${id}`,
	});
	let stop = false;
	let sent = 0;
	process.stdin.once("data", () => {
		stop = true;
	});
	process.stdin.resume();
	console.log("READY");
	const loop = async () => {
		while (!stop) {
			await policy.run("get", async () => {
				const r = await fetch(`${hostUrl}/r?w=${id}`);
				await r.arrayBuffer();
				sent++;
				return r.ok ? { kind: "ok", value: 1 } : { kind: "transient", reason: String(r.status) };
			});
		}
	};
	await Promise.all(Array.from({ length: concurrency }, loop));
	policy.close();
	await state.close();
	console.log(`RESULT ${JSON.stringify({ sent })}`);
}

async function parent(): Promise<void> {
	const workers = flag("workers", 3);
	const points = flag("points", 20);
	const windowMs = flag("window-ms", 1000);
	const windows = flag("windows", 10);
	const latencyMs = flag("latency-ms", 20);
	const counters = new RequestCounters();
	const host = createServer((_req, res) => {
		counters.record("bench", "r");
		setTimeout(() => res.end("ok"), Math.random() * latencyMs);
	});
	await new Promise<void>((r) => host.listen(0, "127.0.0.1", r));
	const addr = host.address();
	const hostUrl = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
	const redis = await startRedis();
	const procs: ChildProcess[] = [];
	try {
		const ready = await Promise.all(
			Array.from({ length: workers }, (_, i) => {
				const proc = spawn(
					process.execPath,
					[import.meta.filename, ...process.argv.slice(2), "--worker", redis.url, hostUrl, String(i)],
					{ stdio: ["pipe", "pipe", "inherit"] },
				);
				procs.push(proc);
				const lines = createInterface({ input: proc.stdout! });
				const result = new Promise<{ sent: number }>((ok) =>
					lines.on("line", (l) => {
						if (l.startsWith("RESULT ")) ok(JSON.parse(l.slice(7)));
					}),
				);
				// Wrapped: a promise resolved with a promise would wait for it.
				return new Promise<{ result: Promise<{ sent: number }> }>((ok) =>
					lines.on("line", (l) => {
						if (l === "READY") ok({ result });
					}),
				);
			}),
		);
		const runMs = windows * windowMs;
		await new Promise((r) => setTimeout(r, runMs));
		for (const p of procs) p.stdin!.write("stop\n");
		const results = await Promise.all(ready.map((r) => r.result));
		const times = counters
			.records()
			.map((r) => r.t)
			.sort((a, b) => a - b);
		// On the host's clock. A sliding budget lets a window start with the whole budget at once, so
		// the flow comes in bursts, and "(n-1)/span" (what the cluster test computes) counts one burst
		// too many. The long-run rate is measured over whole cycles instead: from the first arrival to
		// the arrival m x points later, m x points requests were sent.
		const span = times.at(-1)! - times[0]!;
		const whole = ((times.length - 1) / span) * windowMs;
		const m = Math.floor((times.length - 1) / points);
		const steady = ((m * points) / (times[m * points]! - times[0]!)) * windowMs;
		const maxIn = maxInSlidingWindow(times, windowMs);
		console.log(
			`\nbudget ${points} requests per sliding ${windowMs} ms; ${workers} worker processes x ${flag("concurrency", 8)} in flight; host answers in 0..${latencyMs} ms; ${windows} windows; slack ${flag("slack-ms", 10)} ms\n`,
		);
		console.table([
			{
				requests: times.length,
				"span s": Number((span / 1000).toFixed(2)),
				"achieved / window": Number(steady.toFixed(2)),
				"achieved / allowed": Number((steady / points).toFixed(3)),
				"(n-1)/span (flattered)": Number((whole / points).toFixed(3)),
				"max in any window": maxIn,
				"over budget": maxIn > points ? "YES" : "no",
				"per worker": results.map((r) => r.sent).join(" / "),
			},
		]);
	} finally {
		for (const p of procs) p.kill();
		await redis.stop();
		host.closeAllConnections();
		host.close();
	}
}

if (process.argv.includes("--worker")) await worker();
else await parent();
