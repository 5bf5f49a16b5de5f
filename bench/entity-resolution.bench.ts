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
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { DEFAULT_ZIPS, generateWorld } from "../sandbox/generator.ts";
import type { Corpus } from "../test/fixtures/address-corpus.build.ts";

/** The last commit before the issue-12 normalizer. */
const BEFORE_REV = "aafd505";
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

interface Matcher {
	label: string;
	addressKey(street: string, zip: string | null | undefined): string | null;
	parseAddressLine(line: string): { street: string; zip?: string | null } | null;
}

interface Case {
	kind: string;
	line: string;
	truth: string | null;
}
interface Parcel {
	apn: string;
	street: string;
	zip: string;
}

async function loadMatcher(label: string, root: string): Promise<Matcher> {
	const address = await import(pathToFileURL(join(root, "src/domain/address.ts")).href);
	const parser = await import(pathToFileURL(join(root, "src/mls/parser.ts")).href);
	return { label, addressKey: address.addressKey, parseAddressLine: parser.parseAddressLine };
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

function evaluate(m: Matcher, parcels: Parcel[], cases: Case[]): Score {
	const byKey = new Map<string, string>();
	for (const p of parcels) {
		const key = m.addressKey(p.street, p.zip);
		if (key && !byKey.has(key)) byKey.set(key, p.apn);
	}
	const score: Score = { n: 0, positives: 0, joined: 0, right: 0, byKind: new Map() };
	for (const c of cases) {
		let got: string | null = null;
		try {
			const parsed = m.parseAddressLine(c.line);
			const key = parsed ? m.addressKey(parsed.street, parsed.zip) : null;
			got = key ? (byKey.get(key) ?? null) : null;
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
	const sandbox = {
		name: `sandbox world (${world.listings.length} listings, ${world.parcels.length} parcels)`,
		parcels: world.parcels.map((p) => ({ apn: p.apn, street: p.situsAddress, zip: p.zip })),
		cases: world.listings.map((l) => ({
			kind: l.addressKind ?? "usual-variants",
			line: l.fullAddress,
			truth: l.apn,
		})),
	};
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
		for (const set of [sandbox, corpus]) {
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
