/**
 * Prints README's configuration table from the settings declarations (src/config), or with
 * `--write` replaces the table between the README's config-table markers. The test suite fails
 * when README and the declarations disagree, so the table cannot drift.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { SETTING_GROUPS } from "../src/config/index.ts";

export const START = "<!-- config-table:start -->";
export const END = "<!-- config-table:end -->";

export function configTable(): string {
	const rows = ["| variable | default | description |", "| --- | --- | --- |"];
	for (const [group, settings] of Object.entries(SETTING_GROUPS)) {
		rows.push(`| **${group}** | | |`);
		for (const [name, s] of Object.entries(settings)) {
			const def =
				s.default === undefined ? "—" : s.secret ? "(secret)" : `\`${s.default.replaceAll("|", "\\|")}\``;
			rows.push(
				`| \`${name}\` | ${def} | ${s.description.replaceAll("|", "\\|")}${s.secret ? " *Secret: redacted everywhere.*" : ""} |`,
			);
		}
	}
	return rows.join("\n");
}

if (import.meta.main) {
	const table = configTable();
	if (process.argv.includes("--write")) {
		const path = resolve(import.meta.dirname, "../README.md");
		const readme = readFileSync(path, "utf8");
		const [before, rest] = readme.split(START);
		const [, after] = rest.split(END);
		writeFileSync(path, `${before}${START}\n${table}\n${END}${after}`);
	} else {
		console.log(table);
	}
}
