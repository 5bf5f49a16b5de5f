/**
 * Launching and closing one pool browser. Each launch carries a marker switch Chromium ignores, so
 * its process tree can be found in /proc (memory ceilings, killing a wedged browser).
 */
import { randomUUID } from "node:crypto";
import { type Browser, chromium } from "playwright-core";
import { findPidByMarker } from "./process-memory.ts";
import type { BrowserEntry } from "./slots.ts";
import { withTimeout } from "./types.ts";

/**
 * V8 flags of a browser node's Node process (the browser image's command line carries them; the
 * benches and the soak start Saguaro's browser side with them). The pool's process mostly passes page
 * HTML through, and V8's defaults trade memory for speed it does not need there:
 * - 2 MB semi-spaces: at the default young generation (16 MB) it keeps ~130 MB of heap committed
 *   around ~60 MB live; this cut its PSS by ~80 MB.
 * - --optimize-for-size (slower heap growth, smaller code): the node's peak PSS ~220 -> ~150 MB at
 *   the same pages/s within the noise (bench:mls --breakdown, 4 slots). Not allowed in NODE_OPTIONS,
 *   hence the command line.
 */
export const BROWSER_NODE_FLAGS = ["--max-semi-space-size=2", "--optimize-for-size"] as const;

export const CHROMIUM_ARGS = [
	"--no-sandbox",
	"--disable-gpu",
	"--disable-background-networking",
	"--disable-component-update",
	"--no-first-run",
	"--disable-sync",
	"--disable-quic",
	"--disable-dev-shm-usage",
];

/**
 * What the pool adds: site isolation off, so cross-site frames stay in their page's renderer (one
 * renderer per page instead of one per site, and the page's resource blocking, set on the page's
 * target, covers its frames too). Measured with 2 slots: 3 renderers per context become 2.
 */
export const LEAN_ARGS = ["--disable-site-isolation-trials"];

/** The entry's browser, launched when it has none (one launch at a time per entry). */
export async function launchBrowser(
	entry: BrowserEntry,
	options: { executablePath: string; headless?: boolean; chromiumArgs?: readonly string[] },
): Promise<Browser> {
	if (entry.browser?.isConnected()) return entry.browser;
	if (entry.launching) return entry.launching;
	entry.marker = `--saguaro-browser=${randomUUID()}`;
	entry.launching = chromium
		.launch({
			executablePath: options.executablePath,
			headless: options.headless ?? true,
			args: [...CHROMIUM_ARGS, ...(options.chromiumArgs ?? LEAN_ARGS), entry.marker],
			timeout: 60_000,
		})
		.then((browser) => {
			entry.browser = browser;
			entry.pid = findPidByMarker(entry.marker);
			entry.launchedAt = Date.now();
			entry.pages = 0;
			entry.draining = false;
			entry.generation++;
			browser.on("disconnected", () => {
				if (entry.browser === browser) entry.browser = null;
			});
			return browser;
		})
		.finally(() => {
			entry.launching = null;
		});
	return entry.launching;
}

/** Closes a browser; one that does not answer close() in 10 s is killed. */
export async function closeBrowserProcess(browser: Browser, pid: number | null): Promise<void> {
	const closed = await withTimeout(
		browser.close().then(() => true),
		10_000,
	);
	if (!closed && pid) {
		try {
			process.kill(pid, "SIGKILL");
		} catch {
			// already gone
		}
	}
}
