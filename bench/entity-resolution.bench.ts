/**
 * Entity resolution: how well MLS listings find their Assessor parcel by address, before and after.
 *
 *   npm run bench:er                       (before = the matcher at BEFORE_REV, after = this tree)
 *   npm run bench:er -- --before=<rev>     (another "before"; --before=none skips it)
 *   npm run bench:er -- --listings=8000    (sandbox world size, at least 5,000 listings)
 *
 * Two sets: the sandbox world (sandbox/generator.ts, half its listings written in the harder kinds of
 * issue 12 with ground truth) and the labelled corpus test/fixtures/address-corpus.json (>= 300
 * cases, hard negatives included). Each listing's address line goes through the MLS line parser and
 * the address key, like a collected listing does; it joins the parcel holding that key (the first,
 * when parcels share one), else stays unmatched. Precision = right joins / joins made; recall =
 * right joins / listings that have a parcel. Misses by kind: wrong joins / left unmatched.
 *
 * "Before" runs the same code taken from git (`git archive BEFORE_REV src config`) in a temp dir.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { DEFAULT_ZIPS, generateWorld } from "../sandbox/generator.ts";
import type { FactsForMatch, ParcelCandidate } from "../src/domain/matching.ts";
import type { Corpus } from "../test/fixtures/address-corpus.build.ts";

/** The last commit before the issue-12 normalizer. */
const BEFORE_REV = "aafd505";
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

interface Matcher {
	label: string;
	addressKey(street: string, zip: string | null | undefined): string | null;
	parseAddressLine(line: string): { street: string; zip?: string | null } | null;
	/** The candidate matcher (src/domain/matching.ts), when the tree has one; else exact key only. */
	matching?: typeof import("../src/domain/matching.ts");
	normalizeStreet?(street: string): string | null;
}

interface Case {
	kind: string;
	line: string;
	truth: string | null;
	facts?: FactsForMatch;
}
interface Parcel {
	apn: string;
	street: string;
	zip: string;
	facts?: FactsForMatch;
}

async function loadMatcher(label: string, root: string): Promise<Matcher> {
	const address = await import(pathToFileURL(join(root, "src/domain/address.ts")).href);
	const parser = await import(pathToFileURL(join(root, "src/mls/parser.ts")).href);
	const matchingPath = join(root, "src/domain/matching.ts");
	const matching = existsSync(matchingPath) ? await import(pathToFileURL(matchingPath).href) : undefined;
	return {
		label,
		addressKey: address.addressKey,
		parseAddressLine: parser.parseAddressLine,
		matching,
		normalizeStreet: address.normalizeStreet,
	};
}

/** The matcher as it was at `rev`, from git, in a temp dir that resolves this tree's node_modules. */
async function loadBefore(rev: string): Promise<{ matcher: Matcher; cleanup: () => void }> {
	const dir = mkdtempSync(join(tmpdir(), "saguaro-er-"));
	const tar = execFileSync("git", ["-C", ROOT, "archive", rev, "src", "config"]);
	mkdirSync(dir, { recursive: true });
	execFileSync("tar", ["-x", "-C", dir], { input: tar });
	symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
	writeFileSyncSafe(join(dir, "package.json"), JSON.stringify({ type: "module" }));
	const matcher = await loadMatcher(`before (${rev})`, dir);
	return { matcher, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function writeFileSyncSafe(path: string, text: string) {
	execFileSync("sh", ["-c", `cat > '${path}'`], { input: text });
}

interface Score {
	n: number;
	positives: number;
	joined: number;
	right: number;
	byKind: Map<string, { n: number; wrong: number; unmatched: number }>;
}

/**
 * The join a matcher makes for each case. With candidates (src/domain/matching.ts) it sees what the
 * store sees: the parcels on the listing's street line and its building's (the store's indexed
 * `street` lookups), any ZIP; without, the first parcel holding the exact key.
 */
function joiner(m: Matcher, parcels: Parcel[]): (c: Case) => string | null {
	const byKey = new Map<string, string>();
	for (const p of parcels) {
		const key = m.addressKey(p.street, p.zip);
		if (key && !byKey.has(key)) byKey.set(key, p.apn);
	}
	const matching = m.matching;
	if (!matching || !m.normalizeStreet) {
		return (c) => {
			const parsed = m.parseAddressLine(c.line);
			const key = parsed ? m.addressKey(parsed.street, parsed.zip) : null;
			return key ? (byKey.get(key) ?? null) : null;
		};
	}
	const byStreet = new Map<string, ParcelCandidate[]>();
	for (const p of parcels) {
		const street = m.normalizeStreet(p.street);
		if (!street) continue;
		const list = byStreet.get(street) ?? [];
		list.push({
			id: p.apn,
			addressKey: m.addressKey(p.street, p.zip),
			street,
			zip: p.zip,
			otherKeys: [],
			facts: p.facts ?? {},
		});
		byStreet.set(street, list);
	}
	return (c) => {
		const parsed = m.parseAddressLine(c.line);
		const a = matching.listingAddress(parsed?.street, parsed?.zip);
		const candidates = matching.candidateStreets(a).flatMap((s) => byStreet.get(s) ?? []);
		const res = matching.resolveListing(a, c.facts ?? {}, candidates);
		return res.kind === "matched" ? res.id : null;
	};
}

function evaluate(m: Matcher, parcels: Parcel[], cases: Case[]): Score {
	const join = joiner(m, parcels);
	const score: Score = { n: 0, positives: 0, joined: 0, right: 0, byKind: new Map() };
	for (const c of cases) {
		let got: string | null = null;
		try {
			got = join(c);
		} catch {
			got = null;
		}
		score.n++;
		if (c.truth) score.positives++;
		if (got) score.joined++;
		if (got && got === c.truth) score.right++;
		const k = score.byKind.get(c.kind) ?? { n: 0, wrong: 0, unmatched: 0 };
		k.n++;
		if (got && got !== c.truth) k.wrong++;
		if (!got && c.truth) k.unmatched++;
		score.byKind.set(c.kind, k);
	}
	return score;
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : "-");
const precision = (s: Score) => s.right / s.joined;
const recall = (s: Score) => s.right / s.positives;

function arg(name: string): string | undefined {
	const a = process.argv.find((x) => x.startsWith(`--${name}=`));
	return a?.slice(name.length + 3);
}

async function main() {
	const wantListings = Number(arg("listings") ?? 5000);
	const beforeRev = arg("before") ?? BEFORE_REV;

	// The sandbox world: enough parcels for the listings asked for.
	let perZip = Math.ceil(wantListings / DEFAULT_ZIPS.length / 0.2);
	let world = generateWorld({ parcelsPerZip: perZip, listingShare: 0.25, addressKindShare: 0.5 });
	while (world.listings.length < wantListings) {
		perZip = Math.ceil(perZip * 1.2);
		world = generateWorld({ parcelsPerZip: perZip, listingShare: 0.25, addressKindShare: 0.5 });
	}
	const fromWorld = (w: typeof world, name: string) => ({
		name: `${name} (${w.listings.length} listings, ${w.parcels.length} parcels)`,
		parcels: w.parcels.map((p) => ({
			apn: p.apn,
			street: p.situsAddress,
			zip: p.zip,
			facts: { sqft: p.residential?.livableSpace, yearBuilt: p.constructionYear, lotSqft: p.lotSize },
		})),
		cases: w.listings.map((l) => ({
			kind: l.addressKind ?? "usual-variants",
			line: l.fullAddress,
			truth: l.apn,
			facts: { sqft: l.sqft, yearBuilt: l.yearBuilt, lotSqft: l.lotSqft },
		})),
	});
	const sandbox = fromWorld(world, "sandbox world");
	// The same world with parcels sharing a situs (lot splits, condos without a unit) and listings
	// written with a neighbouring ZIP: what only candidates and facts can resolve.
	const shared = fromWorld(
		generateWorld({
			parcelsPerZip: perZip,
			listingShare: 0.25,
			addressKindShare: 0.5,
			sharedSitusShare: 0.02,
			neighbouringZipShare: 0.05,
		}),
		"sandbox world, shared situs + neighbouring ZIPs",
	);
	const corpusData = JSON.parse(
		readFileSync(join(ROOT, "test/fixtures/address-corpus.json"), "utf8"),
	) as Corpus;
	const corpus = {
		name: `project corpus (${corpusData.cases.length} cases, ${corpusData.parcels.length} parcels)`,
		parcels: corpusData.parcels,
		cases: corpusData.cases.map((c) => ({ kind: c.kind, line: c.line, truth: c.apn })),
	};

	const after = await loadMatcher("after", ROOT);
	const before = beforeRev === "none" ? null : await loadBefore(beforeRev);
	const matchers = [...(before ? [before.matcher] : []), after];
	try {
		const rows: string[] = [];
		const kindRows: string[] = [];
		for (const set of [sandbox, shared, corpus]) {
			const scores = matchers.map((m) => evaluate(m, set.parcels, set.cases));
			rows.push(
				`| ${set.name} | ${scores.map((s) => `${fmt(precision(s))} / ${fmt(recall(s))}`).join(" | ")} |`,
			);
			const kinds = [...scores.at(-1)!.byKind.keys()].sort();
			for (const kind of kinds) {
				const cells = scores.map((s) => {
					const k = s.byKind.get(kind)!;
					return `${k.wrong} / ${k.unmatched}`;
				});
				kindRows.push(
					`| ${set.name.split(" (")[0]} | ${kind} | ${scores[0]!.byKind.get(kind)!.n} | ${cells.join(" | ")} |`,
				);
			}
		}
		const heads = matchers.map((m) => m.label);
		console.log("\nListing -> parcel matching: precision / recall\n");
		console.log(`| set | ${heads.join(" | ")} |`);
		console.log(`| --- | ${heads.map(() => "---").join(" | ")} |`);
		for (const r of rows) console.log(r);
		console.log("\nMisses by kind: wrong joins / left unmatched\n");
		console.log(`| set | kind | n | ${heads.join(" | ")} |`);
		console.log(`| --- | --- | --- | ${heads.map(() => "---").join(" | ")} |`);
		for (const r of kindRows) console.log(r);
	} finally {
		before?.cleanup();
	}
}

await main();
