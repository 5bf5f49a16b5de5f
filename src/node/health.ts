import { createServer, type Server } from "node:http";

/**
 * Liveness and readiness probes of a node (Kubernetes httpGet probes, compose healthchecks).
 * /live answers while the event loop turns; /ready only while the node has started, is connected
 * to the cluster (when it has a transporter) and is not shutting down.
 */
export function startHealthServer(port: number, isReady: () => boolean): Promise<Server> {
	const server = createServer((req, res) => {
		const path = (req.url ?? "/").split("?")[0];
		if (path === "/live") return send(200, { status: "live" });
		if (path === "/ready")
			return isReady() ? send(200, { status: "ready" }) : send(503, { status: "not ready" });
		send(404, { error: "not found" });
		function send(code: number, body: unknown) {
			res.writeHead(code, { "content-type": "application/json" });
			res.end(JSON.stringify(body));
		}
	});
	return new Promise((resolve, reject) => {
		server.once("error", reject);
		server.listen(port, "0.0.0.0", () => resolve(server));
	});
}
