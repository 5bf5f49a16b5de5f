/**
 * REPL commands of the llm service: `enrich <zip|key>` (a ZIP's pending properties, or one property
 * enriched again) and `llm` (today's usage and budget). They call the same actions as the API.
 */
import { callLlm } from "../contracts/llm.ts";
import type { ReplCommand } from "../types/repl.ts";

/** Long enough for a ZIP on a slow local model; the REPL is a person waiting on purpose. */
const TIMEOUT_MS = 30 * 60_000;

export function llmReplCommands(): ReplCommand[] {
	return [
		{
			command: "enrich <target>",
			description:
				"Enrich a ZIP's properties whose enrichment is missing or out of date (enrich 85031), or one property again (enrich 103-06-005)",
			async action(broker, args) {
				const target = String(args.target).trim();
				if (/^\d{5}$/.test(target)) {
					const r = await callLlm(broker, "llm.enrichPending", { zip: target }, { timeout: TIMEOUT_MS });
					console.log(
						`${target}: ${r.items} properties (${r.new} new, ${r.updated} updated, ${r.unchanged} unchanged); ${r.llm} by the LLM, ${r.cached} from the cache, ${r.fallback} by the rules fallback; ${r.requests} requests, ${r.failures} failures`,
					);
					if (r.failed.length > 0) console.table(r.failed);
					return;
				}
				const r = await broker.call("llm.enrich", { key: target, force: true }, { timeout: TIMEOUT_MS });
				console.log(JSON.stringify(r, null, 2));
			},
		},
		{
			command: "llm",
			description: "LLM usage today: requests, tokens, cost, budget left, cache hits, fallbacks",
			async action(broker) {
				console.log(await broker.call("llm.usage"));
			},
		},
	];
}
