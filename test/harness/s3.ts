/**
 * A real S3-compatible server for tests and benches: gofakes3 (in memory), built by scripts/setup.sh
 * into .tools/bin, on a free loopback port, with `bucket` created at start. Any access key is
 * accepted (gofakes3 does not check signatures), so tests pass made-up credentials.
 */
import { findBinary, type RunningServer, startProcess } from "./servers.ts";

export interface S3Server extends RunningServer {
	bucket: string;
	/** PHOTOS_* settings pointing the photos service at this server. */
	env: Record<string, string>;
}

export async function startS3(bucket = "saguaro-photos"): Promise<S3Server> {
	const server = await startProcess({
		name: "gofakes3",
		binary: findBinary("gofakes3"),
		args: (port) => ["-addr", `127.0.0.1:${port}`, "-bucket", bucket],
		url: (port) => `http://127.0.0.1:${port}`,
	});
	return {
		...server,
		bucket,
		env: {
			PHOTOS_STORAGE: "s3",
			PHOTOS_S3_BUCKET: bucket,
			PHOTOS_S3_ENDPOINT: server.url,
			PHOTOS_S3_REGION: "us-east-1",
			PHOTOS_S3_ACCESS_KEY_ID: "test-access-key",
			PHOTOS_S3_SECRET_ACCESS_KEY: "test-secret-key-0123456789",
		},
	};
}
