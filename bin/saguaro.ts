/**
 * `npm start`: one Saguaro node. Embedded (all services, one process, no server) by default;
 * a cluster node when TRANSPORTER is set. Extra service files may follow on the command line.
 * A bad environment stops it with exit code 2 and a message naming each bad variable (a port in use
 * included).
 */
import { ConfigError, loadConfig } from "../src/config/index.ts";
import { busyPortLine, portErrorLine } from "../src/node/ports.ts";
import { type RunningNode, startNode } from "../src/node/start-node.ts";
import { startRepl } from "../src/repl/session.ts";

let config: ReturnType<typeof loadConfig>;
try {
	config = loadConfig();
} catch (err) {
	if (err instanceof ConfigError) {
		console.error(`saguaro: ${err.message}`);
		process.exit(2);
	}
	throw err;
}

// A port another process holds is a bad setting too: one line naming it, exit 2.
const busy = await busyPortLine(config);
if (busy) {
	console.error(`saguaro: ${busy}`);
	process.exit(2);
}
let node: RunningNode;
try {
	node = await startNode(config, { extraServiceFiles: process.argv.slice(2) });
} catch (err) {
	const line = portErrorLine(err, config);
	if (!line) throw err;
	console.error(`saguaro: ${line}`);
	process.exit(2);
}

let shuttingDown = false;
async function shutdown(signal: string) {
	if (shuttingDown) return;
	shuttingDown = true;
	node.broker.logger.info(
		`${signal} received: stopping (in-flight work is given ${config.core.shutdownTimeoutMs} ms).`,
	);
	const force = setTimeout(() => {
		node.broker.logger.error("Graceful stop timed out: exiting.");
		process.exit(1);
	}, config.core.shutdownTimeoutMs);
	force.unref();
	try {
		await node.stop();
		process.exit(0);
	} catch (err) {
		node.broker.logger.error("Error while stopping", err);
		process.exit(1);
	}
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));

if (config.core.repl === "on" || (config.core.repl === "auto" && process.stdin.isTTY)) {
	await startRepl(node.broker, config);
}
