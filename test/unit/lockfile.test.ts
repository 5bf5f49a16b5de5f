/**
 * The install a newcomer runs first (issue 13, item 10): `npm install` must leave the committed
 * package-lock.json as it is (a tree dirty after the README's first command is a bad start), and the
 * README must state the Node version package.json's `engines` asks for.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";

const ROOT = resolve(import.meta.dirname, "../..");
const pkg = JSON.parse(readFileSync(resolve(ROOT, "package.json"), "utf8")) as {
	engines: { node: string; npm?: string };
	devDependencies: Record<string, string>;
};

const major = (range: string | undefined) => /^>=\s*(\d+)/.exec(range ?? "")?.[1];

test("the lockfile's npm is the one engines asks for, and the npm here is it", () => {
	// npm 10 and 11 write lockfiles differently (npm 10 drops the `libc` fields npm 11 writes).
	const npmMajor = major(pkg.engines.npm);
	assert.ok(npmMajor, "engines.npm names the npm the lockfile is written by");
	const here = execFileSync("npm", ["--version"], { encoding: "utf8" }).trim();
	assert.ok(
		Number(here.split(".")[0]) >= Number(npmMajor),
		`npm ${here} here; the lockfile is npm ${npmMajor}'s`,
	);
});

test("npm install resolves to the committed package-lock.json, byte for byte", () => {
	const dir = mkdtempSync(join(tmpdir(), "saguaro-lock-"));
	try {
		for (const f of ["package.json", "package-lock.json"]) copyFileSync(resolve(ROOT, f), join(dir, f));
		// The tree npm install would build, from the lockfile and the registry's metadata (cached).
		execFileSync(
			"npm",
			["install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"],
			{ cwd: dir, stdio: "pipe", timeout: 240_000 },
		);
		const before = readFileSync(resolve(ROOT, "package-lock.json"), "utf8");
		const after = readFileSync(join(dir, "package-lock.json"), "utf8");
		assert.ok(after === before, "npm install rewrites package-lock.json: commit the lockfile it produces");
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
});

test("README states the Node version engines asks for, and why Node 24 comes with npm install", () => {
	const minimum = major(pkg.engines.node);
	assert.ok(minimum, `engines.node ${pkg.engines.node}`);
	const readme = readFileSync(resolve(ROOT, "README.md"), "utf8");
	const stated = [...readme.matchAll(/Node(?:\.js)? ≥ (\d+)/g)].map((m) => m[1]);
	assert.ok(stated.length > 0, "README states a Node version");
	assert.deepEqual(
		[...new Set(stated)],
		[minimum],
		`README says Node ≥ ${stated.join(", ")}; engines ${pkg.engines.node}`,
	);
	assert.ok(readme.includes(`npm ≥ ${major(pkg.engines.npm)}`), "README states the npm engines asks for");
	assert.ok(pkg.devDependencies.node, "the node devDependency brings Node 24");
	assert.match(readme, /`node` devDependency/);
});
