/**
 * Saguaro node processes for cluster tests: each runs `bin/saguaro.ts` (the real runner) with its
 * own environment, and the test process joins the same NATS as a client broker.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import moleculer from "moleculer";
import { waitFor } from "../../src/utils/time.ts";

const ROOT = resolve(import.meta.dirname, "../..");

export interface NodeProcess {
	nodeId: string;
	process: ChildProcess;
	/** Everything the node printed so far (stdout and stderr). */
	output(): string;
	/** Wait for the node's "started" line. */
	ready(): Promise<void>;
	kill(signal?: NodeJS.Signals): void;
	/** SIGTERM and wait for the exit (SIGKILL after a grace period). Returns the exit code. */
	stop(): Promise<number | null>;
	exited: Promise<number | null>;
}

export interface SpawnNodeOptions {
	nodeId: string;
	env: Record<string, string>;
	/** Service files given to the runner on its command line (test fixtures). */
	extraServiceFiles?: string[];
}

export function spawnNode(opts: SpawnNodeOptions): NodeProcess {
	const child = spawn(
		process.execPath,
		[resolve(ROOT, "bin/saguaro.ts"), ...(opts.extraServiceFiles ?? [])],
		{
			cwd: ROOT,
			env: {
				PATH: process.env.PATH ?? "",
				HOME: process.env.HOME ?? "/tmp",
				NODE_ID: opts.nodeId,
				REPL: "off",
				LOG_LEVEL: "info",
				METRICS_PORT: "0",
				HEALTH_PORT: "0",
				...opts.env,
			},
			stdio: ["ignore", "pipe", "pipe"],
		},
	);
	let out = "";
	const append = (d: Buffer) => {
		out += d.toString();
		if (out.length > 2_000_000) out = out.slice(-1_000_000);
	};
	child.stdout?.on("data", append);
	child.stderr?.on("data", append);
	const exited = new Promise<number | null>((res) => child.once("exit", (code) => res(code)));
	let done = false;
	void exited.then(() => {
		done = true;
	});
	return {
		nodeId: opts.nodeId,
		process: child,
		output: () => out,
		exited,
		async ready() {
			await waitFor(
				() => {
					if (done) throw new Error(`node ${opts.nodeId} exited before starting:\n${out.slice(-3000)}`);
					return out.includes(`Saguaro node '${opts.nodeId}' started`);
				},
				`node ${opts.nodeId} to start`,
				60_000,
			);
		},
		kill(signal = "SIGKILL") {
			if (!done) child.kill(signal);
		},
		async stop() {
			if (done) return exited;
			child.kill("SIGTERM");
			const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
			const code = await exited;
			clearTimeout(timer);
			return code;
		},
	};
}

/** A bare broker in the test process, on the same NATS and namespace as the nodes. */
export function clientBroker(natsUrl: string, nodeId = "test-client", options: moleculer.BrokerOptions = {}) {
	return new moleculer.ServiceBroker({
		namespace: "saguaro",
		nodeID: nodeId,
		transporter: natsUrl as moleculer.BrokerOptions["transporter"],
		logger: false,
		requestTimeout: 10_000,
		heartbeatInterval: 1,
		heartbeatTimeout: 4,
		...options,
	});
}

/**
 * Wait until `broker` has noticed that `nodeId` is gone (heartbeat timeout). Calls made before that
 * may still be routed to the dead node and be rejected when the broker gives up on it.
 */
export async function waitUntilGone(broker: moleculer.ServiceBroker, nodeId: string, timeoutMs = 30_000) {
	await waitFor(
		() => broker.registry.nodes.get(nodeId)?.available !== true,
		`${broker.nodeID} to notice that ${nodeId} is gone`,
		timeoutMs,
		100,
	);
}
