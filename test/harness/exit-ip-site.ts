/**
 * A tiny target site for proxy tests: answers with the exit IP the sandbox proxy stamped on the
 * request (and the method, path and request body size it saw), and refuses (403) the exit IPs it was
 * told to ban, as a site that blocked a proxy does. `/big/<n>` answers n bytes.
 */
import { createServer, type Server } from "node:http";

export interface ExitIpSite {
	url: string;
	host: string;
	/** Exit IPs that get 403. */
	banned: Set<string>;
	/** Requests seen per exit IP. */
	hits: Map<string, number>;
	/** `/big/<n>` answers whose connection closed before they were written whole. */
	cut: { count: number };
	close(): Promise<void>;
}

export async function startExitIpSite(): Promise<ExitIpSite> {
	const banned = new Set<string>();
	const hits = new Map<string, number>();
	const cut = { count: 0 };
	const server: Server = createServer((req, res) => {
		const ip = String(req.headers["x-sandbox-exit-ip"] ?? "direct");
		hits.set(ip, (hits.get(ip) ?? 0) + 1);
		let bytes = 0;
		req.on("data", (chunk: Buffer) => {
			bytes += chunk.length;
		});
		req.once("end", () => {
			const status = banned.has(ip) ? 403 : 200;
			const big = /^\/big\/(\d+)$/.exec(req.url ?? "");
			if (big && status === 200) {
				// A large answer, written in 64 KB pieces as the client takes them.
				const size = Number(big[1]);
				res.writeHead(200, { "content-type": "application/octet-stream", "content-length": size });
				res.once("close", () => {
					if (!res.writableFinished) cut.count++;
				});
				const piece = Buffer.alloc(65_536, 0x61);
				let sent = 0;
				const more = () => {
					while (sent < size) {
						const n = Math.min(piece.length, size - sent);
						sent += n;
						if (!res.write(n === piece.length ? piece : piece.subarray(0, n)))
							return void res.once("drain", more);
					}
					res.end();
				};
				more();
				return;
			}
			const body = JSON.stringify({ ip, path: req.url, method: req.method, bytes });
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
		cut,
		async close() {
			server.closeAllConnections();
			await new Promise<void>((r) => server.close(() => r()));
		},
	};
}
