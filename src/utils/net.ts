import { createServer } from "node:net";

/** A free TCP port on loopback (the OS picks it; tiny race until the caller binds it). */
export function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const srv = createServer();
		srv.unref();
		srv.on("error", reject);
		srv.listen(0, "127.0.0.1", () => {
			const addr = srv.address();
			const port = typeof addr === "object" && addr ? addr.port : 0;
			srv.close(() => resolve(port));
		});
	});
}

/** Whether something already listens on `port` (checked by trying to listen on `host` there). */
export function portInUse(port: number, host = "0.0.0.0"): Promise<boolean> {
	return new Promise((resolve, reject) => {
		const srv = createServer();
		srv.unref();
		srv.once("error", (err: NodeJS.ErrnoException) => {
			if (err.code === "EADDRINUSE" || err.code === "EACCES") resolve(true);
			else reject(err);
		});
		srv.listen(port, host, () => srv.close(() => resolve(false)));
	});
}
