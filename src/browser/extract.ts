/** Reading a rendered page: named fields by CSS selector, and its HTML under a size cap. */
import type { Page } from "playwright-core";

/** Reads the fields from the DOM as it is now (waiting is `waitFor`'s job), in one round trip. */
export function extractFields(
	page: Page,
	extract: Record<string, string>,
): Promise<Record<string, string | null>> {
	return page.evaluate((selectors) => {
		const out: Record<string, string | null> = {};
		for (const [name, selector] of Object.entries(selectors)) {
			let text: string | null = null;
			try {
				text = document.querySelector(selector)?.textContent ?? null;
			} catch {
				text = null;
			}
			out[name] = text === null ? null : text.replace(/\s+/g, " ").trim().slice(0, 10_000);
		}
		return out;
	}, extract);
}

/** The page's HTML, cut at `maxBytes` (NATS payloads are capped). */
export async function readHtml(page: Page, maxBytes: number): Promise<{ html: string; truncated: boolean }> {
	const full = await page.content();
	const truncated = Buffer.byteLength(full) > maxBytes;
	return { html: truncated ? Buffer.from(full).subarray(0, maxBytes).toString("utf8") : full, truncated };
}
