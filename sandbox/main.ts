/**
 * `npm run sandbox`: starts every simulator, prints the environment that points Saguaro at them
 * (one NAME=value a line on stdout; notes go to stderr, so `npm run -s sandbox > .env.sandbox` works),
 * and stays up until SIGINT/SIGTERM.
 *
 * Optional settings (environment):
 *   SANDBOX_SEED             master seed (integer)
 *   SANDBOX_ZIPS             comma-separated ZIPs (default 85031,85033,85008,85301,85379)
 *   SANDBOX_PARCELS_PER_ZIP  parcels per ZIP (default 2000)
 *   SANDBOX_PORT             first of consecutive fixed ports: maricopa, gis, llm, control, mls,
 *                            captcha, proxy provider (the proxies themselves take free ports);
 *                            default: free ports everywhere
 */

import type { SandboxOptions } from "./index.ts";
import { formatEnv, startSandbox } from "./index.ts";

function intEnv(name: string, min: number, max: number): number | undefined {
	const raw = process.env[name];
	if (raw === undefined || raw.trim() === "") return undefined;
	const n = Number(raw);
	if (!Number.isInteger(n) || n < min || n > max) {
		throw new Error(`${name} must be an integer in ${min}..${max}, got ${JSON.stringify(raw)}`);
	}
	return n;
}

function optionsFromEnv(): SandboxOptions {
	const options: SandboxOptions = { world: {} };
	const seed = intEnv("SANDBOX_SEED", 0, 2 ** 32 - 1);
	if (seed !== undefined) options.seed = seed;
	const zips = process.env.SANDBOX_ZIPS?.trim();
	if (zips) {
		const list = zips.split(",").map((z) => z.trim());
		if (!list.every((z) => /^\d{5}$/.test(z)))
			throw new Error(`SANDBOX_ZIPS must be 5-digit ZIPs, got ${zips}`);
		options.world!.zips = list;
	}
	const perZip = intEnv("SANDBOX_PARCELS_PER_ZIP", 1, 200_000);
	if (perZip !== undefined) options.world!.parcelsPerZip = perZip;
	const port = intEnv("SANDBOX_PORT", 1024, 65_000);
	if (port !== undefined) {
		options.maricopa = { port };
		options.gis = { port: port + 1 };
		options.llm = { port: port + 2 };
		options.control = { port: port + 3 };
		options.mls = { port: port + 4 };
		options.captcha = { port: port + 5 };
		options.proxies = { providerPort: port + 6 };
	}
	return options;
}

async function main(): Promise<void> {
	const t0 = performance.now();
	const sandbox = await startSandbox(optionsFromEnv());
	const ms = Math.round(performance.now() - t0);
	process.stderr.write(
		`# sandbox up in ${ms} ms: ${sandbox.world.parcels.length} parcels, ${sandbox.world.listings.length} listings, ` +
			`ZIPs ${sandbox.world.options.zips.join(",")}, seed ${sandbox.world.options.seed}\n` +
			`# ground truth: ${sandbox.urls.control}/truth   counters: ${sandbox.urls.control}/stats\n`,
	);
	process.stdout.write(`${formatEnv(sandbox.env)}\n`);

	let stopping = false;
	const stop = (signal: string) => {
		if (stopping) return;
		stopping = true;
		process.stderr.write(`# ${signal}: stopping the sandbox\n`);
		sandbox.stop().then(
			() => process.exit(0),
			(err: unknown) => {
				process.stderr.write(`# stop failed: ${String(err)}\n`);
				process.exit(1);
			},
		);
	};
	process.on("SIGINT", () => stop("SIGINT"));
	process.on("SIGTERM", () => stop("SIGTERM"));
}

main().catch((err: unknown) => {
	process.stderr.write(`sandbox: ${err instanceof Error ? err.message : String(err)}\n`);
	process.exit(1);
});
