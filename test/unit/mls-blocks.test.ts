/**
 * Block detection on pages the MLS simulator serves over loopback: each of the site's defences
 * (429, captcha interstitial, 403, expired session) and a truncated body is told apart from a
 * listing page, using the bundled phrases of config/mls-fields.json.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { generateWorld } from "../../sandbox/generator.ts";
import { MLS_SITEKEY, type MlsSite, SESSION_COOKIE, startMlsSite } from "../../sandbox/mls-site.ts";
import { classifyPage, type PageVerdict } from "../../src/mls/blocks.ts";
import { loadFieldConfig } from "../../src/mls/fields.ts";

const cfg = loadFieldConfig(resolve(import.meta.dirname, "../../config/mls-fields.json"));
const ZIP = "85031";

describe("mls block detection on sandbox pages", () => {
	let site: MlsSite;
	let listingPath: string;

	/** Fetches a page as the given exit IP (what a sandbox proxy stamps) and classifies it. */
	const classify = async (path: string, ip: string, cookie?: string): Promise<PageVerdict> => {
		const url = new URL(path, site.url).toString();
		const res = await fetch(url, {
			headers: { "x-sandbox-exit-ip": ip, ...(cookie ? { cookie } : {}) },
			redirect: "manual",
		});
		const headers: Record<string, string> = {};
		res.headers.forEach((v, k) => {
			headers[k] = v;
		});
		return classifyPage(res.status, await res.text(), headers, url, cfg);
	};

	before(async () => {
		const world = generateWorld({ seed: 5, zips: [ZIP], parcelsPerZip: 60, listingShare: 0.2 });
		site = await startMlsSite({ world, jsRenderedShare: 0, defences: { rateLimit: null, direct: "deny" } });
		listingPath = site.detailPath(site.listingIds(ZIP)[0] as string);
	});
	beforeEach(() => {
		site.resetDefences();
		site.server.faults.reset();
	});
	after(() => site.close());

	test("a listing page through a proxy is ok; a missing listing is not-found", async () => {
		assert.deepEqual(await classify(listingPath, "203.0.113.10"), { kind: "ok" });
		assert.equal((await classify("/mls/No-Such-Place-mls_1/", "203.0.113.10")).kind, "not-found");
	});

	test("past the rate limit: 429, then the captcha interstitial with its form, then 403", async () => {
		site.configure({
			defences: {
				rateLimit: { limit: 1, windowMs: 60_000 },
				challengeAfter: 1,
				denyAfter: 1,
				cooldownMs: 60_000,
			},
		});
		const ip = "203.0.113.11";
		assert.equal((await classify(listingPath, ip)).kind, "ok");
		const limited = await classify(listingPath, ip);
		assert.equal(limited.kind, "rate-limited");

		const wall = await classify(listingPath, ip);
		assert.equal(wall.kind, "captcha");
		assert.ok(wall.kind === "captcha" && wall.form, "the interstitial's form is read");
		assert.equal(wall.form.sitekey, MLS_SITEKEY);
		assert.equal(wall.form.kind, "hcaptcha");
		assert.equal(wall.form.tokenField, "h-captcha-response");
		assert.equal(new URL(wall.form.action).pathname, "/verify-human");
		assert.ok(wall.form.action.startsWith(site.url), "the form posts back to the site");

		assert.deepEqual(await classify(listingPath, ip), { kind: "banned" });
		// Another exit IP is untouched: the defences are per IP.
		assert.equal((await classify(listingPath, "203.0.113.12")).kind, "ok");
	});

	test("direct traffic from a datacenter IP is denied", async () => {
		const res = await fetch(new URL(listingPath, site.url));
		assert.deepEqual(classifyPage(res.status, await res.text(), {}, res.url, cfg), { kind: "banned" });
	});

	test("a session cookie the site no longer knows gets the session-expired page", async () => {
		const verdict = await classify(listingPath, "203.0.113.13", `${SESSION_COOKIE}=long-gone-session`);
		assert.deepEqual(verdict, { kind: "session-expired" });
	});

	test("a body cut short or garbled is an upstream error, never a page to parse", async () => {
		site.server.faults.set({ malformedRate: 1 });
		for (let i = 0; i < 4; i++) {
			const verdict = await classify(listingPath, `203.0.113.${20 + i}`);
			assert.equal(verdict.kind, "upstream-error");
			assert.ok(verdict.kind === "upstream-error" && /truncated or garbled/.test(verdict.reason));
		}
	});

	test("proxy failures are told apart from the site's answers", () => {
		assert.deepEqual(classifyPage(407, "", {}, site.url, cfg), { kind: "proxy-error", status: 407 });
		assert.deepEqual(classifyPage(595, "", {}, site.url, cfg), { kind: "proxy-error", status: 595 });
	});
});
