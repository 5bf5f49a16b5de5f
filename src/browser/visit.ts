/**
 * One visit of a page: navigate, get past (or name) a captcha wall, wait for the selector asked for,
 * then read the fields and the capped HTML. The pool around it owns the slot, the page's reuse and
 * the deadline; a failure here is a RenderError that says what failed.
 */
import type { Page } from "playwright-core";
import { captchaOutcome } from "./captcha.ts";
import { extractFields, readHtml } from "./extract.ts";
import { type BrowserPoolOptions, RenderError, type RenderParams, type RenderResult } from "./types.ts";

export async function visit(
	page: Page,
	params: RenderParams,
	options: Pick<BrowserPoolOptions, "solver" | "maxHtmlBytes">,
): Promise<Omit<RenderResult, "ms">> {
	// With a selector to wait for, the parsed DOM is enough; without one, wait for the page's load.
	const waitUntil = params.waitFor ? "domcontentloaded" : "load";
	const response = await page.goto(params.url, { waitUntil }).catch((err: Error) => {
		throw new RenderError(
			/Timeout/i.test(err.message)
				? "timeout"
				: /PROXY|TUNNEL|ERR_CONNECTION/i.test(err.message)
					? "proxy"
					: "navigation",
			`goto ${params.url}: ${err.message.split("\n")[0]}`,
		);
	});
	const wall = await captchaOutcome(page, response, options.solver, params.solveCaptchas !== false);
	if (params.waitFor)
		await page.waitForSelector(params.waitFor, { state: "attached" }).catch(() => undefined);
	const fields = params.extract ? await extractFields(page, params.extract) : null;
	const { html, truncated } = params.noHtml
		? { html: null, truncated: false }
		: await readHtml(page, options.maxHtmlBytes);
	return {
		status: wall.response?.status() ?? 0,
		url: page.url(),
		html,
		truncated,
		fields,
		captcha: wall.captcha,
	};
}
