/**
 * A tiny target site for proxy tests: answers with the exit IP the sandbox proxy stamped on the
 * request, and refuses (403) the exit IPs it was told to ban, as a site that blocked a proxy does.
 */
import { createServer, type Server } from "node:http";

export interface ExitIpSite {
	url: string;
	host: string;
	/** Exit IPs that get 403. */
	banned: Set<string>;
	/** Requests seen per exit IP. */
	hits: Map<string, number>;
	close(): Promise<void>;
}

export async function startExitIpSite(): Promise<ExitIpSite> {
	const banned = new Set<string>();
	const hits = new Map<string, number>();
	const server: Server = createServer((req, res) => {
		const ip = String(req.headers["x-sandbox-exit-ip"] ?? "direct");
		hits.set(ip, (hits.get(ip) ?? 0) + 1);
		req.resume();
		req.once("end", () => {
			const status = banned.has(ip) ? 403 : 200;
			const body = JSON.stringify({ ip, path: req.url, method: req.method });
			res.writeHead(status, {
				"content-type": "application/json",
				"content-length": Buffer.byteLength(body),
			});
			res.end(body);
		});
	});
	server.keepAliveTimeout = 2000;
	await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
	const addr = server.address();
	const port = typeof addr === "object" && addr ? addr.port : 0;
	return {
		url: `http://127.0.0.1:${port}`,
		host: `127.0.0.1:${port}`,
		banned,
		hits,
		async close() {
			server.closeAllConnections();
			await new Promise<void>((r) => server.close(() => r()));
		},
	};
}
