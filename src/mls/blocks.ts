/**
 * Tells what a page from the MLS site is: the page asked for, or one of the site's defences
 * (429 "Too many requests", the "verify you are human" interstitial, 403 "Access denied", an
 * expired session), a truncated body, or a failure of the proxy carrying the request. Phrases
 * come from the field configuration, so a reworded block page is a configuration change.
 */
import { load } from "cheerio";
import { retryAfterMs } from "../core/http.ts";
import type { MlsFieldConfig } from "./fields.ts";

export interface CaptchaForm {
	sitekey: string;
	/** Absolute URL the token is posted to. */
	action: string;
	/** Hidden fields of the form (e.g. the return path), posted with the token. */
	fields: Record<string, string>;
	/** Name of the token field: h-captcha-response or g-recaptcha-response. */
	tokenField: string;
	kind: "hcaptcha" | "recaptcha";
}

export type PageVerdict =
	| { kind: "ok" }
	| { kind: "rate-limited"; retryAfterS: number | null }
	| { kind: "captcha"; form: CaptchaForm | null }
	| { kind: "banned" }
	| { kind: "session-expired" }
	| { kind: "not-found" }
	/** The proxy failed to carry the request (407, proxy-chain's 590-599, 502 from the proxy). */
	| { kind: "proxy-error"; status: number }
	/** The site failed (5xx) or the body is cut short or garbled. */
	| { kind: "upstream-error"; status: number; reason: string };

export type BlockKind = "rate-limited" | "captcha" | "banned" | "session-expired";

const includesAny = (text: string, phrases: string[]) => phrases.some((p) => text.includes(p));

/** The text of the page's heading and title, where block pages say what they are. */
function headline(html: string): string {
	const title = /<title[^>]*>([\s\S]{0,300}?)<\/title>/i.exec(html)?.[1] ?? "";
	const h1 = /<h1[^>]*>([\s\S]{0,300}?)<\/h1>/i.exec(html)?.[1] ?? "";
	return `${title} ${h1}`.toLowerCase();
}

export function parseCaptchaForm(html: string, pageUrl: string): CaptchaForm | null {
	const $ = load(html);
	const widget = $("[data-sitekey]").first();
	const sitekey = widget.attr("data-sitekey");
	if (!sitekey) return null;
	const form =
		widget.closest("form").length > 0 ? widget.closest("form") : $("form").has("[data-sitekey]").first();
	const kind = widget.hasClass("g-recaptcha") ? "recaptcha" : "hcaptcha";
	const fields: Record<string, string> = {};
	form.find("input[type=hidden][name]").each((_, el) => {
		fields[$(el).attr("name") as string] = $(el).attr("value") ?? "";
	});
	let action: string;
	try {
		action = new URL(form.attr("action") ?? pageUrl, pageUrl).toString();
	} catch {
		return null;
	}
	return {
		sitekey,
		action,
		fields,
		tokenField: kind === "recaptcha" ? "g-recaptcha-response" : "h-captcha-response",
		kind,
	};
}

export function classifyPage(
	status: number,
	html: string,
	headers: Record<string, string | string[] | undefined>,
	pageUrl: string,
	cfg: MlsFieldConfig,
): PageVerdict {
	if (status === 407 || (status >= 590 && status <= 599)) return { kind: "proxy-error", status };
	const head = headline(html);
	const b = cfg.blocks;
	if (status === 403 || includesAny(head, b.banned)) return { kind: "banned" };
	if (status === 429 || includesAny(head, b.rateLimited)) {
		const header = headers["retry-after"];
		const ms = retryAfterMs((Array.isArray(header) ? header[0] : header) ?? null);
		return { kind: "rate-limited", retryAfterS: ms === null ? null : Math.ceil(ms / 1000) };
	}
	if (includesAny(head, b.captcha) || /data-sitekey=/i.test(html)) {
		return { kind: "captcha", form: parseCaptchaForm(html, pageUrl) };
	}
	if (includesAny(head, b.sessionExpired)) return { kind: "session-expired" };
	if (status === 404) return { kind: "not-found" };
	if (status >= 500) return { kind: "upstream-error", status, reason: `HTTP ${status}` };
	if (status < 200 || status >= 300)
		return { kind: "upstream-error", status, reason: `unexpected HTTP ${status}` };
	// A page cut short by a dropped connection, or garbled, must not be parsed into half a listing.
	if (html.includes("\u0000") || !/<\/html>\s*$/i.test(html)) {
		return { kind: "upstream-error", status, reason: "truncated or garbled page" };
	}
	return { kind: "ok" };
}
