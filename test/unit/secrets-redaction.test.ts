/**
 * List-valued secrets (issue 19): each item of API_TOKENS (and of PROXIES) is a secret of its own, so
 * the REPL's `config` command, which prints the parsed config (tokens as an array), shows none of them.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadConfig } from "../../src/config/index.ts";
import { createReplCommands } from "../../src/repl/commands.ts";
import { REDACTED, redact } from "../../src/utils/redact.ts";

test("the REPL config command prints no API token, nor any item of a secret list", async () => {
	const tokens = ["repl-token-alpha-7c1e", "repl-token-bravo-93d0"];
	const proxyPasswords = ["proxy-pw-one-51aa", "proxy-pw-two-b03f"];
	const config = loadConfig({
		API_TOKENS: tokens.join(","),
		PROXIES: proxyPasswords.map((pw, i) => `http://user${i}:${pw}@10.0.0.${i + 1}:8000`).join(","),
	});
	const command = createReplCommands(config).find((c) => c.command === "config");
	assert.ok(command, "the REPL has a config command");

	const printed: string[] = [];
	const log = console.log;
	console.log = (...args: unknown[]) => printed.push(args.map(String).join(" "));
	try {
		await (command.action as (...a: unknown[]) => unknown)({}, {}, () => {});
	} finally {
		console.log = log;
	}
	const out = printed.join("\n");
	assert.match(out, /"apiTokens"/);
	for (const secret of [...tokens, ...proxyPasswords])
		assert.ok(!out.includes(secret), `config prints ${secret}`);
	assert.deepEqual(redact(config.core.apiTokens), [REDACTED, REDACTED]);
});

test("the REPL config command shows an array two settings share, not [circular] (issue 13)", async () => {
	const config = loadConfig({ SCHEDULER_ZIPS: "85031,85033" });
	const command = createReplCommands(config).find((c) => c.command === "config");
	assert.ok(command);
	const printed: string[] = [];
	const log = console.log;
	console.log = (...args: unknown[]) => printed.push(args.map(String).join(" "));
	try {
		await (command.action as (...a: unknown[]) => unknown)({}, {}, () => {});
	} finally {
		console.log = log;
	}
	const out = printed.join("\n");
	assert.ok(
		!out.includes("[circular]"),
		out
			.split("\n")
			.filter((l) => l.includes("circular"))
			.join("\n"),
	);
	// A real cycle is still cut.
	const cyclic: Record<string, unknown> = { a: 1 };
	cyclic.self = cyclic;
	assert.deepEqual(redact(cyclic), { a: 1, self: "[circular]" });
	const shared = ["x"];
	assert.deepEqual(redact({ one: shared, two: shared }), { one: ["x"], two: ["x"] });
});
