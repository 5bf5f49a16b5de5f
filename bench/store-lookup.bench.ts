/**
 * Lookup cost against collection size, FerretDB 1.24 on PostgreSQL vs on SQLite vs mongo-java-server
 * 1.47 (in memory, `java`), side by side in one run: the same property-like documents (~1.5 KB: APN key, address, ZIP, facts, sources, history),
 * the same indexes (unique on `key`, plain on `zip`), the mongodb driver directly (no store code).
 * The collection grows to each N in turn (insertMany, batches of 1,000); at each N it times
 *   - findOne({_id})                   - findOne({key})                   - find({key: {$in: 100 keys}})
 * on random documents and prints the medians, then for each backend the ratio of the largest N to
 * the smallest (about 1 = the lookup does not grow with the collection, i.e. the index is used).
 * FerretDB 1.24 uses the indexes on neither backend (on PostgreSQL `{key: v}` becomes
 * `_jsonb->'key' @> v`, which a btree cannot serve; `$in` is not pushed down at all), so expect growth
 * with N on both: the table shows how much cheaper PostgreSQL's scan is than SQLite's.
 * mongo-java-server keeps its indexes (unique `key` included) in memory and uses them for equality and
 * `$in` on the indexed field, so its lookups should stay flat.
 *
 *   node bench/store-lookup.bench.ts [sizes=1000,10000,50000] [sqliteSizes=1000,5000,10000]
 *     [backends=postgresql,sqlite,java]
 * SQLite scans the collection for a `key` lookup (tens of ms per 1,000 documents), so it gets smaller
 * N by default to keep the run to a few minutes; pass the same list twice to compare at equal sizes.
 */
import { MongoClient, type ObjectId } from "mongodb";
import { type RunningServer, startFerretDb, startMongoJavaServer } from "../test/harness/servers.ts";

const parseSizes = (arg: string | undefined, fallback: number[]): number[] =>
	arg ? arg.split(",").map((s) => Number(s.replace(/_/g, ""))) : fallback;
const SIZES = parseSizes(process.argv[2], [1_000, 10_000, 50_000]);
const SQLITE_SIZES = parseSizes(process.argv[3], [1_000, 5_000, 10_000]);
const ALL_BACKENDS = ["postgresql", "sqlite", "java"] as const;
const BACKENDS = (process.argv[4]?.split(",") ?? ALL_BACKENDS) as Backend[];
for (const b of BACKENDS) {
	if (!ALL_BACKENDS.includes(b)) throw new Error(`unknown backend ${b}: one of ${ALL_BACKENDS.join(", ")}`);
}
const BATCH = 1_000;
const IN_KEYS = 100;
/**
 * Samples per measurement: after one warm-up run, until TIME_BUDGET_MS is spent and at least
 * MIN_SAMPLES are taken (at most MAX_SAMPLES); a lookup that scans a large collection can take
 * seconds, so past HARD_BUDGET_MS it stops at whatever it has (at least one sample, and the
 * warm-up counts as one when it alone took longer than a second).
 */
const MAX_SAMPLES = 51;
const MIN_SAMPLES = 5;
const TIME_BUDGET_MS = 3_000;
const HARD_BUDGET_MS = 8_000;

type Backend = (typeof ALL_BACKENDS)[number];
const OPS = ["findOne _id", "findOne key", `find key $in ${IN_KEYS}`] as const;
type Op = (typeof OPS)[number];

interface Row {
	backend: Backend;
	n: number;
	insertPerSec: number;
	medians: Record<Op, number>;
	samples: Record<Op, number>;
}

/** Deterministic pseudo-random numbers (mulberry32), so every run stores the same documents. */
function rng(seed: number): () => number {
	let a = seed;
	return () => {
		a = (a + 0x6d2b79f5) | 0;
		let t = Math.imul(a ^ (a >>> 15), 1 | a);
		t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

const ZIPS = ["85008", "85031", "85033", "85301", "85379", "85032", "85251", "85281", "85201", "85225"];
const STREETS = [
	"W Indian School Rd",
	"N 43rd Ave",
	"W Thomas Rd",
	"N 67th Ave",
	"E McDowell Rd",
	"W Glendale Ave",
];
const apn = (i: number) => {
	const s = String(i).padStart(8, "0");
	return `${s.slice(0, 3)}-${s.slice(3, 5)}-${s.slice(5)}`;
};

function propertyDoc(i: number, rand: () => number): Record<string, unknown> {
	const zip = ZIPS[i % ZIPS.length]!;
	const street = `${1000 + Math.floor(rand() * 9000)} ${STREETS[Math.floor(rand() * STREETS.length)]}`;
	const sqft = 900 + Math.floor(rand() * 2600);
	const price = 180_000 + Math.floor(rand() * 600_000);
	const at = new Date(Date.UTC(2026, 0, 1) + Math.floor(rand() * 90) * 86_400_000).toISOString();
	return {
		key: apn(i),
		apn: apn(i),
		zip,
		address: {
			line: street,
			city: "Phoenix",
			state: "AZ",
			zip,
			normalized: `${street.toUpperCase()} PHOENIX AZ ${zip}`,
		},
		facts: {
			propertyType: "residential",
			yearBuilt: 1950 + Math.floor(rand() * 70),
			livingAreaSqft: sqft,
			lotSizeSqft: sqft * 3 + Math.floor(rand() * 4000),
			bedrooms: 2 + Math.floor(rand() * 4),
			bathrooms: 1 + Math.floor(rand() * 3),
			pool: rand() < 0.4,
			garageSpaces: Math.floor(rand() * 3),
			owner: `OWNER ${Math.floor(rand() * 1e6)} FAMILY TRUST`,
			legalDescription: `LOT ${Math.floor(rand() * 400)} SUBDIVISION ${Math.floor(rand() * 900)} PER MCR BOOK ${Math.floor(rand() * 900)} PAGE ${Math.floor(rand() * 90)}`,
			assessedFullCash: Math.floor(price * 0.8),
			assessedLimited: Math.floor(price * 0.6),
			taxYear: 2026,
			subdivision: `SUBDIVISION ${Math.floor(rand() * 900)}`,
		},
		mlsIds: rand() < 0.2 ? [`${6_000_000 + i}`] : [],
		status: rand() < 0.2 ? "active" : "off-market",
		listPrice: price,
		sources: [
			{
				source: "maricopa",
				id: apn(i),
				fetchedAt: at,
				hash: `${Math.floor(rand() * 1e16).toString(16)}${"0".repeat(48)}`,
			},
			{
				source: "maricopa-gis",
				id: apn(i),
				fetchedAt: at,
				hash: `${Math.floor(rand() * 1e16).toString(16)}${"0".repeat(48)}`,
			},
		],
		history: Array.from({ length: 3 }, (_, h) => ({
			field: h === 0 ? "status" : "price",
			from: h === 0 ? "active" : price + h * 5000,
			to: h === 0 ? "pending" : price + (h - 1) * 5000,
			source: "mls",
			at,
		})),
		createdAt: at,
		updatedAt: at,
	};
}

function median(xs: number[]): number {
	const s = [...xs].sort((a, b) => a - b);
	const mid = s.length >> 1;
	return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function timeOp(run: () => Promise<unknown>): Promise<{ median: number; samples: number }> {
	const times: number[] = [];
	const timed = async () => {
		const t0 = performance.now();
		await run();
		return performance.now() - t0;
	};
	const warm = await timed();
	if (warm > 1_000) times.push(warm);
	const started = performance.now();
	for (;;) {
		const spent = performance.now() - started;
		if (times.length >= MAX_SAMPLES) break;
		if (times.length >= MIN_SAMPLES && spent >= TIME_BUDGET_MS) break;
		if (times.length >= 1 && spent >= HARD_BUDGET_MS) break;
		times.push(await timed());
	}
	return { median: median(times), samples: times.length };
}

async function measureBackend(backend: Backend, sizes: number[]): Promise<Row[]> {
	const ferret: RunningServer =
		backend === "java" ? await startMongoJavaServer() : await startFerretDb({ backend });
	const client = await MongoClient.connect(ferret.url);
	const rows: Row[] = [];
	try {
		const coll = client.db().collection("properties");
		await coll.createIndex({ key: 1 }, { unique: true });
		await coll.createIndex({ zip: 1 });
		const ids: ObjectId[] = [];
		const rand = rng(42);
		const pick = rng(7);
		const anyIndex = () => Math.floor(pick() * ids.length);
		for (const n of [...sizes].sort((a, b) => a - b)) {
			const t0 = performance.now();
			const before = ids.length;
			while (ids.length < n) {
				const docs = Array.from({ length: Math.min(BATCH, n - ids.length) }, (_, j) =>
					propertyDoc(ids.length + j, rand),
				);
				const res = await coll.insertMany(docs);
				for (let j = 0; j < docs.length; j++) ids.push(res.insertedIds[j] as ObjectId);
			}
			const insertPerSec = (ids.length - before) / ((performance.now() - t0) / 1000);
			const results = {
				"findOne _id": await timeOp(async () => {
					if (!(await coll.findOne({ _id: ids[anyIndex()]! }))) throw new Error("not found by _id");
				}),
				"findOne key": await timeOp(async () => {
					if (!(await coll.findOne({ key: apn(anyIndex()) }))) throw new Error("not found by key");
				}),
				[`find key $in ${IN_KEYS}`]: await timeOp(async () => {
					const keys = Array.from({ length: IN_KEYS }, () => apn(anyIndex()));
					const found = await coll.find({ key: { $in: keys } }).toArray();
					if (found.length === 0) throw new Error("nothing found by $in");
				}),
			} as Record<Op, { median: number; samples: number }>;
			const row: Row = {
				backend,
				n,
				insertPerSec,
				medians: Object.fromEntries(OPS.map((op) => [op, results[op].median])) as Record<Op, number>,
				samples: Object.fromEntries(OPS.map((op) => [op, results[op].samples])) as Record<Op, number>,
			};
			rows.push(row);
			console.error(
				`  ${backend} N=${n}: ${OPS.map((op) => `${op} ${row.medians[op].toFixed(2)} ms`).join(", ")}`,
			);
		}
		const avg = await coll
			.aggregate<{ size: number }>([
				{ $sample: { size: 50 } },
				{ $project: { size: { $bsonSize: "$$ROOT" } } },
			])
			.toArray()
			.catch(() => []);
		if (avg.length) {
			console.error(
				`  ${backend}: average document ${Math.round(avg.reduce((s, d) => s + d.size, 0) / avg.length)} bytes (BSON)`,
			);
		}
	} finally {
		await client.close();
		await ferret.stop();
	}
	return rows;
}

const fmt = (n: number) => n.toLocaleString("en-US");
const ms = (x: number) => x.toFixed(2);

const all: Row[] = [];
const startedAt = performance.now();
const NAMES: Record<Backend, string> = {
	postgresql: "FerretDB on postgresql",
	sqlite: "FerretDB on sqlite",
	java: "mongo-java-server (memory)",
};
for (const backend of BACKENDS) {
	const sizes = backend === "sqlite" ? SQLITE_SIZES : SIZES;
	console.error(`${NAMES[backend]}: N = ${sizes.map(fmt).join(", ")}`);
	all.push(...(await measureBackend(backend, sizes)));
}

console.log(
	`\nLookups (FerretDB 1.24 on postgresql/sqlite, mongo-java-server 1.47 in memory = java), median ms (property documents, unique index on key, index on zip; samples per cell in brackets)\n`,
);
const header = ["backend", "N", "insert docs/s", ...OPS];
const widths = [12, 8, 14, 18, 18, 22];
const line = (cells: string[]) =>
	cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
console.log(line(header));
for (const r of all) {
	console.log(
		line([
			r.backend,
			fmt(r.n),
			fmt(Math.round(r.insertPerSec)),
			...OPS.map((op) => `${ms(r.medians[op])} (${r.samples[op]})`),
		]),
	);
}

console.log(
	"\nGrowth: median at the largest N / median at the smallest N (about 1 = flat, an index is used; about the ratio of N = the collection is scanned)\n",
);
for (const backend of BACKENDS) {
	const rows = all.filter((r) => r.backend === backend);
	if (rows.length < 2) continue;
	const small = rows[0]!;
	const large = rows.at(-1)!;
	console.log(
		`${backend.padEnd(12)}${`${fmt(large.n)} / ${fmt(small.n)} (x${(large.n / small.n).toFixed(0)})`.padEnd(24)}${OPS.map((op) => `${op} x${(large.medians[op] / small.medians[op]).toFixed(1)}`).join("   ")}`,
	);
}

const common = all.filter(
	(r) => r.backend === "sqlite" && all.some((p) => p.backend === "postgresql" && p.n === r.n),
);
if (common.length) {
	console.log("\nSQLite / PostgreSQL at the same N\n");
	for (const s of common) {
		const p = all.find((r) => r.backend === "postgresql" && r.n === s.n)!;
		console.log(
			`${`N = ${fmt(s.n)}`.padEnd(30)}${OPS.map((op) => `${op} x${(s.medians[op] / p.medians[op]).toFixed(1)}`).join("   ")}`,
		);
	}
}
const javaRows = all.filter((r) => r.backend === "java");
if (javaRows.some((j) => all.some((p) => p.backend === "postgresql" && p.n === j.n))) {
	console.log("\nFerretDB on PostgreSQL / mongo-java-server at the same N\n");
	for (const j of javaRows) {
		const p = all.find((r) => r.backend === "postgresql" && r.n === j.n);
		if (!p) continue;
		console.log(
			`${`N = ${fmt(j.n)}`.padEnd(30)}${OPS.map((op) => `${op} x${(p.medians[op] / j.medians[op]).toFixed(1)}`).join("   ")}`,
		);
	}
}
if (BACKENDS.includes("sqlite") && SQLITE_SIZES.join() !== SIZES.join()) {
	console.log(
		`\nSQLite ran at N = ${SQLITE_SIZES.map(fmt).join(", ")} instead of ${SIZES.map(fmt).join(", ")}: its key lookups scan the collection, so larger N take minutes (pass sizes as the second argument to change).`,
	);
}
console.log(`\ntotal ${((performance.now() - startedAt) / 1000).toFixed(0)} s`);
