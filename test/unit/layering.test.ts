/**
 * The layering CONTRIBUTING.md describes, checked over the import statements of src, mixins and
 * services: a module imports from its own layer or the layers below it, never above, and the
 * directories do not import each other in a cycle (type-only imports count: a type cycle is still a
 * cycle a reader has to untangle).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, test } from "node:test";

const ROOT = resolve(import.meta.dirname, "../..");

/** Bottom to top. A directory of src not named here fails the test: place it on purpose. */
const LAYERS: string[][] = [
	["src/types"],
	["src/utils"],
	["src/domain", "src/shared-state", "src/config"],
	["src/core", "src/contracts"],
	[
		"src/analytics",
		"src/api",
		"src/browser",
		"src/cluster",
		"src/jobs",
		"src/llm",
		"src/maricopa",
		"src/mls",
		"src/photos",
		"src/proxy",
		"src/scheduler",
		"src/store",
	],
	["src/repl", "src/node", "moleculer.config.ts"],
	["mixins"],
	["services"],
];

const LAYER_OF = new Map<string, number>();
LAYERS.forEach((names, i) => {
	for (const n of names) LAYER_OF.set(n, i);
});

function tsFiles(dir: string, out: string[] = []): string[] {
	for (const name of readdirSync(dir)) {
		const path = join(dir, name);
		if (statSync(path).isDirectory()) tsFiles(path, out);
		else if (name.endsWith(".ts")) out.push(path);
	}
	return out;
}

/** "src/<area>" for a file under src, else its top directory (or the root file itself). */
function unitOf(path: string): string {
	const parts = relative(ROOT, path).split("/");
	return parts[0] === "src" ? `src/${parts[1]}` : parts[0];
}

interface Edge {
	from: string;
	to: string;
	file: string;
	spec: string;
}

/** Every relative import/export-from of a .ts module (static and dynamic), as unit edges. */
function edgesOf(file: string): Edge[] {
	const text = readFileSync(file, "utf8");
	const specs = [
		...text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+["'](\.{1,2}\/[^"']+)["']/gms),
		...text.matchAll(/^\s*import\s+["'](\.{1,2}\/[^"']+)["']/gm),
		...text.matchAll(/\bimport\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g),
	].map((m) => m[1]);
	const out: Edge[] = [];
	for (const spec of specs) {
		if (!spec.endsWith(".ts")) continue; // JSON data (config/*.json) is not code
		const target = resolve(dirname(file), spec);
		out.push({ from: unitOf(file), to: unitOf(target), file: relative(ROOT, file), spec });
	}
	return out;
}

const FILES = [
	...tsFiles(join(ROOT, "src")),
	...tsFiles(join(ROOT, "mixins")),
	...tsFiles(join(ROOT, "services")),
	join(ROOT, "moleculer.config.ts"),
];
const EDGES = FILES.flatMap(edgesOf).filter((e) => e.from !== e.to);

describe("layering (CONTRIBUTING.md)", () => {
	test("the import parser sees the imports", () => {
		assert.ok(EDGES.some((e) => e.from === "services" && e.to === "src/store"));
		assert.ok(EDGES.some((e) => e.from === "src/store" && e.to === "src/domain"));
	});

	test("every directory has a layer", () => {
		const units = new Set(FILES.map(unitOf));
		const unplaced = [...units].filter((u) => !LAYER_OF.has(u));
		assert.deepEqual(unplaced, [], "add new directories to LAYERS in this test (and to CONTRIBUTING.md)");
	});

	test("imports go downwards or sideways, never up", () => {
		const up = EDGES.filter((e) => (LAYER_OF.get(e.to) ?? -1) > (LAYER_OF.get(e.from) ?? -1)).map(
			(e) => `${e.file} imports ${e.spec} (${e.from} is below ${e.to})`,
		);
		assert.deepEqual(up, []);
	});

	test("no cycle between directories", () => {
		const next = new Map<string, Set<string>>();
		for (const e of EDGES) {
			if (!next.has(e.from)) next.set(e.from, new Set());
			next.get(e.from)?.add(e.to);
		}
		const cycles: string[] = [];
		const state = new Map<string, "open" | "done">();
		const walk = (unit: string, path: string[]): void => {
			if (state.get(unit) === "done") return;
			if (state.get(unit) === "open") {
				cycles.push([...path.slice(path.indexOf(unit)), unit].join(" -> "));
				return;
			}
			state.set(unit, "open");
			for (const to of next.get(unit) ?? []) walk(to, [...path, unit]);
			state.set(unit, "done");
		};
		for (const unit of next.keys()) walk(unit, []);
		const files = (from: string, to: string) =>
			EDGES.filter((e) => e.from === from && e.to === to).map((e) => e.file);
		const explained = cycles.map((c) => {
			const units = c.split(" -> ");
			return `${c}: ${units
				.slice(1)
				.map((to, i) => `${units[i]} -> ${to} in ${[...new Set(files(units[i], to))].join(", ")}`)
				.join("; ")}`;
		});
		assert.deepEqual(explained, []);
	});
});
