/**
 * A captcha wall met in a page: find its sitekey, have the solver answer it, put the token in the
 * wall's form and submit it.
 */
import type { Page } from "playwright-core";
import type { CaptchaSolver } from "../contracts/proxy-pool.ts";

/** The sitekey of a captcha widget in the DOM as loaded (no waiting: most pages have none). */
export function findSitekey(page: Page): Promise<string | null> {
	return page
		.evaluate(() => document.querySelector("[data-sitekey]")?.getAttribute("data-sitekey") ?? null)
		.catch(() => null);
}

/** Solves and submits the wall; `response` is the answer of the navigation the form started. */
export async function passCaptcha(
	page: Page,
	sitekey: string,
	solver: CaptchaSolver,
): Promise<{ ok: boolean; response?: Awaited<ReturnType<Page["goto"]>> }> {
	const recaptcha = await page.locator(".g-recaptcha[data-sitekey]").count();
	const type = recaptcha > 0 ? "recaptcha" : "hcaptcha";
	let token: string;
	try {
		token = await solver.solve({ type, sitekey, pageurl: page.url() });
	} catch {
		return { ok: false };
	}
	const field = type === "recaptcha" ? "g-recaptcha-response" : "h-captcha-response";
	const navigation = page.waitForNavigation({ waitUntil: "load" });
	const submitted = await page.evaluate(
		({ field, token }) => {
			const widget = document.querySelector("[data-sitekey]");
			const form = widget?.closest("form") ?? document.querySelector("form");
			if (!form) return false;
			let input = form.querySelector<HTMLTextAreaElement | HTMLInputElement>(`[name="${field}"]`);
			if (!input) {
				input = document.createElement("textarea");
				input.name = field;
				form.appendChild(input);
			}
			input.value = token;
			form.submit();
			return true;
		},
		{ field, token },
	);
	if (!submitted) {
		navigation.catch(() => undefined);
		return { ok: false };
	}
	const response = await navigation.catch(() => null);
	return { ok: true, response };
}

type Navigation = Awaited<ReturnType<Page["goto"]>>;

/**
 * What a loaded page's wall comes to: none, skipped (no solver, or `solve` false: a caller out of
 * budget), solved or unsolved; `response` is the answer the page now shows.
 */
export async function captchaOutcome(
	page: Page,
	response: Navigation,
	solver: CaptchaSolver | null,
	solve: boolean,
): Promise<{ captcha: "none" | "solved" | "unsolved" | "skipped"; response: Navigation }> {
	const sitekey = await findSitekey(page);
	if (!sitekey) return { captcha: "none", response };
	if (!solver || !solve) return { captcha: "skipped", response };
	const passed = await passCaptcha(page, sitekey, solver);
	return {
		captcha: passed.ok ? "solved" : "unsolved",
		response: passed.response !== undefined ? passed.response : response,
	};
}
