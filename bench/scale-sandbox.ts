/**
 * The sandbox of `npm run bench:scale`, in a process of its own so that serving 100,000 parcels does
 * not share the bench's (or a node's) event loop. Started by bench/scale.bench.ts with one JSON
 * argument:
 *
 *   node bench/scale-sandbox.ts '{"seed":1,"parcelsPerZip":{"default":300,"85031":10000},
 *                                "zips":[...],"latency":{"minMs":100,"maxMs":200}}'
 *
 * Prints one line `READY <json>` (the env that points Saguaro at it, and a summary of the ground
 * truth: parcels per ZIP and per property type) and serves until SIGTERM/SIGINT. `GET <control>/stats`
 * gives every simulator's request counters.
 */
import { startSandbox } from "../sandbox/index.ts";

export interface ScaleSandboxOptions {
	seed: number;
	zips: string[];
	parcelsPerZip: { default: number } & Record<string, number>;
	latency: { minMs: number; maxMs: number };
}

export interface ScaleSandboxReady {
	env: Record<string, string>;
	/** Parcels per ZIP of the ground truth. */
	byZip: Record<string, number>;
	/** Parcels per ZIP and property type (RESIDENTIAL, COMMERCIAL, VACANT LAND). */
	typesByZip: Record<string, Record<string, number>>;
	generatedMs: number;
}

const opts = JSON.parse(process.argv[2] ?? "{}") as ScaleSandboxOptions;
const t0 = performance.now();
const sb = await startSandbox({
	seed: opts.seed,
	world: { seed: opts.seed, zips: opts.zips, parcelsPerZip: opts.parcelsPerZip },
	maricopa: { faults: { latency: opts.latency } },
	gis: { faults: { latency: opts.latency } },
});
const byZip: Record<string, number> = {};
const typesByZip: Record<string, Record<string, number>> = {};
for (const [zip, parcels] of sb.world.byZip) {
	byZip[zip] = parcels.length;
	const types: Record<string, number> = {};
	for (const p of parcels) types[p.propertyType] = (types[p.propertyType] ?? 0) + 1;
	typesByZip[zip] = types;
}
const ready: ScaleSandboxReady = {
	env: sb.env,
	byZip,
	typesByZip,
	generatedMs: Math.round(performance.now() - t0),
};
process.stdout.write(`READY ${JSON.stringify(ready)}\n`);

let stopping = false;
const stop = () => {
	if (stopping) return;
	stopping = true;
	sb.stop().then(
		() => process.exit(0),
		() => process.exit(1),
	);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
// The bench died without stopping us: do not linger.
process.on("disconnect", stop);
