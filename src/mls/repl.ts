/**
 * REPL commands of the MLS scraper and the browser pool: `browsers` (browser-pool.stats: slots,
 * pages, failures by kind, recycles, memory per browser) and `mls <zip>` (mls.searchZip: how many
 * listings a ZIP has, across how many result pages). They call the same actions as the API.
 */
import { callBrowserPool } from "../contracts/browser-pool.ts";
import { callMls } from "../contracts/mls.ts";
import type { ReplCommand } from "../types/repl.ts";

export function mlsReplCommands(): ReplCommand[] {
	return [
		{
			command: "browsers",
			description:
				"Browser pool of a browser-pool node (the one the call reaches): slots, pages, failures by kind, recycles, memory per browser",
			async action(broker) {
				const s = await callBrowserPool(broker, "browser-pool.stats", {});
				console.table(s.browsers);
				console.log({
					slots: s.slots,
					busy: s.busy,
					queued: s.queued,
					pages: s.pages,
					failures: s.failures,
					recycles: s.recycles,
					reclaimed: s.reclaimed,
					captchas: s.captchas,
					memoryMb: s.memoryMb,
					sessions: s.sessions,
				});
			},
		},
		{
			command: "mls <zip>",
			description: "Search the MLS site for a ZIP: listings found, result pages read (first listings shown)",
			async action(broker, args) {
				const zip = String(args.zip);
				// A search waits while the site's breaker is open or it is paused: say so, not hang silently.
				const hosts = await callMls(broker, "mls.status", {}).catch(() => []);
				for (const h of hosts) {
					if (h.breaker !== "closed") {
						console.log(
							`MLS host breaker ${h.breaker} (${h.breakerReason ?? "?"}): the search waits for it.`,
						);
					}
					if (h.pausedUntil) {
						console.log(`MLS host paused until ${new Date(h.pausedUntil).toISOString()}: the search waits.`);
					}
				}
				const r = await callMls(broker, "mls.searchZip", { zip }, { timeout: 300_000 });
				console.log(
					`${r.zip}: ${r.cards.length} listings on ${r.pages} result page(s)${r.complete ? "" : " (stopped at MLS_MAX_PAGES)"}`,
				);
				console.table(r.cards.slice(0, 20).map((c) => ({ mlsId: c.mlsId, address: c.address ?? "-" })));
			},
		},
	];
}
