/**
 * Contract tests of the Phoenix MLS site simulator (contracts/mls-site.md) over real HTTP on loopback,
 * through the sandbox's real proxies (undici ProxyAgent) so the site sees their exit IPs: page shapes
 * and quirks, ground truth, and the per-IP 429 -> captcha -> 403 escalation with the captcha
 * simulator's tokens and the session cookie.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import * as cheerio from "cheerio";
import { chromium } from "playwright-core";
import { ProxyAgent, request } from "undici";
import { type CaptchaHandle, startCaptcha } from "../../sandbox/captcha.ts";
import { generateWorld, type Listing, type World } from "../../sandbox/generator.ts";
import { type MlsSite, SESSION_COOKIE, startMlsSite } from "../../sandbox/mls-site.ts";
import { type ProxyFarm, startProxyFarm } from "../../sandbox/proxy-farm.ts";
import { waitFor } from "../../src/utils/time.ts";

let world: World;
let captcha: CaptchaHandle;
let farm: ProxyFarm;
let site: MlsSite;
const agents = new Map<number, ProxyAgent>();

const ZIP = "85031";
const PAGE_SIZE = 10;
const LENIENT = { rateLimit: null, direct: "allow" as const, sessionTtlMs: 30 * 60_000 };

type Page = { status: number; headers: Record<string, string | string[] | undefined>; body: string };

/** GET/POST on the site through proxy `proxy` (farm index), or directly when `proxy` is null. */
async function hit(
	path: string,
	opts: { proxy?: number | null; cookie?: string; form?: Record<string, string> } = {},
): Promise<Page> {
	const proxy = opts.proxy === undefined ? 0 : opts.proxy;
	let dispatcher: ProxyAgent | undefined;
	if (proxy !== null) {
		dispatcher = agents.get(proxy);
		if (!dispatcher) {
			dispatcher = new ProxyAgent(farm.proxy(proxy).url);
			agents.set(proxy, dispatcher);
		}
	}
	const headers: Record<string, string> = {};
	if (opts.cookie) headers.cookie = opts.cookie;
	if (opts.form) headers["content-type"] = "application/x-www-form-urlencoded";
	const res = await request(`${site.url}${path}`, {
		method: opts.form ? "POST" : "GET",
		headers,
		body: opts.form ? new URLSearchParams(opts.form).toString() : undefined,
		dispatcher,
	});
	return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

const isChallenge = (p: Page) => p.status === 200 && p.body.includes('class="h-captcha"');
const isDenied = (p: Page) => p.status === 403 && p.body.includes("Access denied");
const isTooMany = (p: Page) => p.status === 429 && p.body.includes("Too many requests");

function classify(p: Page): string {
	if (isTooMany(p)) return "429";
	if (isChallenge(p)) return "challenge";
	if (isDenied(p)) return "403";
	return String(p.status);
}

/** The label/value facts of a static detail page, whichever of the three markups it uses. */
function readFacts($: cheerio.CheerioAPI): Map<string, string> {
	const facts = new Map<string, string>();
	const clean = (s: string) => s.replace(/:\s*$/, "").trim();
	$(".facts dt").each((_, dt) => {
		facts.set(clean($(dt).text()), $(dt).next("dd").text().trim());
	});
	$(".facts tr").each((_, tr) => {
		facts.set(clean($(tr).find("th").text()), $(tr).find("td").text().trim());
	});
	const text = $(".facts .details-text").html();
	if (text) {
		for (const line of text.split(/<br\s*\/?>/)) {
			const plain = cheerio.load(line).text().trim();
			const at = plain.indexOf(": ");
			if (at > 0) facts.set(plain.slice(0, at), plain.slice(at + 2));
		}
	}
	return facts;
}

function expectedFacts(l: Listing): Record<string, string> {
	const money = (n: number) => `$${n.toLocaleString("en-US")}`;
	return {
		"List Price": money(l.price),
		Status: l.status,
		"MLS #": l.mlsId,
		"# Bedrooms": String(l.beds),
		"Full Bathrooms": String(l.fullBaths),
		"Half Bathrooms": String(l.halfBaths),
		"Approx SQFT": l.sqft.toLocaleString("en-US"),
		"Year Built": String(l.yearBuilt),
		"Garage Spaces": String(l.garageSpaces),
		Pool: l.pool,
		Sewer: l.sewer,
	};
}

function cookieOf(p: Page): string {
	const raw = p.headers["set-cookie"];
	const line = (Array.isArray(raw) ? raw : [raw ?? ""]).find((c) => c.startsWith(`${SESSION_COOKIE}=`));
	assert.ok(line, `no ${SESSION_COOKIE} cookie in ${JSON.stringify(raw)}`);
	return line.split(";")[0]!;
}

before(async () => {
	world = generateWorld({ zips: [ZIP, "85033"], parcelsPerZip: 400, seed: 3 });
	captcha = await startCaptcha({ solveDelayMs: 0 });
	farm = await startProxyFarm({ count: 5 });
	site = await startMlsSite({
		world,
		pageSize: PAGE_SIZE,
		jsRenderedShare: 0,
		verify: (sitekey, token) => captcha.verifyToken(sitekey, token),
		defences: LENIENT,
	});
});

after(async () => {
	for (const a of agents.values()) await a.close();
	await site.close();
	await farm.close();
	await captcha.close();
});

beforeEach(() => {
	site.configure({ jsRenderedShare: 0, defences: LENIENT });
	site.resetDefences();
	site.server.faults.reset();
});

describe("search results", () => {
	test("cards link to detail pages, rel=next while more pages remain, all of the ZIP's listings", async () => {
		const truth = world.listingsByZip.get(ZIP)!;
		assert.ok(truth.length > PAGE_SIZE * 2, "the world needs several pages for this test");
		const seen: string[] = [];
		let path: string | null = `/simple-search/?q=${ZIP}&page=1`;
		let pages = 0;
		while (path) {
			const res = await hit(path);
			assert.equal(res.status, 200);
			const $ = cheerio.load(res.body);
			const cards = $(".listing-card");
			pages++;
			assert.ok(cards.length >= 1 && cards.length <= PAGE_SIZE);
			cards.each((_, card) => {
				const href = $(card).find("a").attr("href") ?? "";
				const m = /^\/mls\/[A-Za-z0-9-]+-mls_(\d{7})\/$/.exec(href);
				assert.ok(m, `bad detail link ${href}`);
				const l = world.listingById.get(m[1]!)!;
				assert.equal(l.zip, ZIP);
				assert.equal($(card).find(".card-address").text(), l.fullAddress);
				assert.equal($(card).find(".card-price").text(), `$${l.price.toLocaleString("en-US")}`);
				assert.match($(card).find(".beds").text(), new RegExp(`^${l.beds} Beds?$`));
				assert.match($(card).find(".baths").text(), new RegExp(`^${l.fullBaths + l.halfBaths / 2} Baths?$`));
				assert.equal($(card).find(".sqft").text(), `${l.sqft.toLocaleString("en-US")} SqFt`);
				seen.push(l.mlsId);
			});
			const next = $('a[rel="next"]').attr("href");
			path = next ?? null;
		}
		assert.equal(pages, Math.ceil(truth.length / PAGE_SIZE));
		assert.deepEqual(seen, site.listingIds(ZIP), "served in the ground truth's order");
		assert.deepEqual([...seen].sort(), truth.map((l) => l.mlsId).sort());
	});

	test("past the last page, an unknown ZIP or a non-ZIP query: no cards, no next link", async () => {
		for (const path of [
			`/simple-search/?q=${ZIP}&page=99`,
			"/simple-search/?q=99999",
			"/simple-search/?q=phoenix",
		]) {
			const res = await hit(path);
			assert.equal(res.status, 200);
			const $ = cheerio.load(res.body);
			assert.equal($(".listing-card").length, 0);
			assert.equal($('a[rel="next"]').length, 0);
			assert.match($(".result-summary").text(), /No listings found/);
		}
	});

	test("page size is a run-time knob", async () => {
		site.configure({ pageSize: 3 });
		try {
			const $ = cheerio.load((await hit(`/simple-search/?q=${ZIP}`)).body);
			assert.equal($(".listing-card").length, 3);
		} finally {
			site.configure({ pageSize: PAGE_SIZE });
		}
	});
});

describe("listing detail", () => {
	test("address heading and label/value facts in three markups, description and photos", async () => {
		const ids = site.listingIds(ZIP);
		for (const variant of ["dl", "table", "text"] as const) {
			const id = ids.find((i) => site.markupVariant(i) === variant);
			assert.ok(id, `no ${variant} page in the test world`);
			const l = world.listingById.get(id)!;
			const res = await hit(site.detailPath(id));
			assert.equal(res.status, 200);
			const $ = cheerio.load(res.body);
			assert.equal($("h1").first().text(), l.fullAddress);
			const facts = readFacts($);
			for (const [label, value] of Object.entries(expectedFacts(l))) {
				assert.equal(facts.get(label), value, `${variant}: ${label}`);
			}
			// The lot is either "Approx Lot SqFt" or "Lot Size: 0.18 Acres".
			if (facts.has("Lot Size")) assert.equal(facts.get("Lot Size"), `${l.lotAcres.toFixed(2)} Acres`);
			else assert.equal(facts.get("Approx Lot SqFt"), l.lotSqft.toLocaleString("en-US"));
			assert.match(facts.get("HOA Fee") ?? "", /^\$\d/);
			assert.ok(facts.has("Association Fee Incl"));
			assert.equal($(".description p").text(), l.description);
			const photoIds = new Set<string>();
			for (const size of ["t", "m", "l", "o"]) {
				const re = new RegExp(`https://cdn\\.photos\\.sparkplatform\\.com/az/(\\d+)-${size}\\.jpg`, "g");
				const found = [...res.body.matchAll(re)].map((m) => m[1]!);
				assert.ok(found.length > 0, `no -${size} photo`);
				for (const f of found) photoIds.add(f);
			}
			assert.deepEqual([...photoIds].sort(), [...l.photoIds].sort());
		}
	});

	test("JS-filled pages carry the facts as inline JSON and an empty facts table", async () => {
		site.configure({ jsRenderedShare: 1 });
		const id = site.listingIds(ZIP)[0]!;
		assert.equal(site.isJsRendered(id), true);
		const res = await hit(site.detailPath(id));
		const $ = cheerio.load(res.body);
		assert.equal($("h1").first().text(), world.listingById.get(id)!.fullAddress);
		assert.equal($("#listing-facts").length, 1);
		assert.equal($("#listing-facts tbody").children().length, 0, "plain HTTP sees an empty table");
		assert.equal(readFacts($).size, 0);
		const data = JSON.parse($("script#listing-data").text()) as { facts: [string, string][] };
		const facts = new Map(data.facts);
		for (const [label, value] of Object.entries(expectedFacts(world.listingById.get(id)!))) {
			assert.equal(facts.get(label), value, label);
		}
		assert.ok($("script:not([type])").text().includes("listing-data"), "a script fills the table");
	});

	test("a stale slug redirects to the canonical URL; an unknown id is 404", async () => {
		const id = site.listingIds(ZIP)[0]!;
		const moved = await hit(`/mls/Some-Old-Address-mls_${id}/`);
		assert.equal(moved.status, 301);
		assert.equal(moved.headers.location, site.detailPath(id));
		const missing = await hit("/mls/Nowhere-AZ-85031-mls_1234567/");
		assert.equal(missing.status, 404);
	});
});

describe("defences per exit IP", () => {
	const STRICT = {
		rateLimit: { limit: 3, windowMs: 600_000 },
		challengeAfter: 2,
		denyAfter: 2,
		cooldownMs: 600_000,
		strikeWindowMs: 600_000,
		direct: "deny" as const,
	};

	test("429, then the captcha interstitial, then 403, for that IP only", async () => {
		site.configure({ defences: STRICT });
		const path = `/simple-search/?q=${ZIP}`;
		const seq: string[] = [];
		let tooMany: Page | undefined;
		for (let i = 0; i < 9; i++) {
			const p = await hit(path, { proxy: 0 });
			if (isTooMany(p)) tooMany = p;
			seq.push(classify(p));
		}
		assert.deepEqual(seq, ["200", "200", "200", "429", "429", "challenge", "challenge", "403", "403"]);
		assert.ok(Number(tooMany?.headers["retry-after"]) > 0, "429 carries Retry-After");
		assert.equal(site.clientState("203.0.113.1").state, "denied");
		// Another exit IP is unaffected.
		assert.equal(classify(await hit(path, { proxy: 1 })), "200");
		assert.equal(site.clientState("203.0.113.2").state, "ok");
		// Direct ("datacenter") traffic is blocked early.
		assert.ok(isDenied(await hit(path, { proxy: null })));
	});

	test("direct traffic can be challenged instead of denied", async () => {
		site.configure({ defences: { ...LENIENT, direct: "challenge" } });
		assert.ok(isChallenge(await hit(`/simple-search/?q=${ZIP}`, { proxy: null })));
	});

	test("a token from the captcha simulator clears the interstitial for the session; made-up and reused tokens do not", async () => {
		site.configure({ defences: { ...STRICT, rateLimit: { limit: 2, windowMs: 600_000 }, denyAfter: 10 } });
		const id = site.listingIds(ZIP)[1]!;
		const path = site.detailPath(id);
		let page: Page | undefined;
		for (let i = 0; i < 10 && !(page && isChallenge(page)); i++) page = await hit(path, { proxy: 2 });
		assert.ok(page && isChallenge(page), "the client is challenged");
		const $ = cheerio.load(page.body);
		const sitekey = $(".h-captcha").attr("data-sitekey")!;
		assert.equal(sitekey, site.sitekey);
		const form = $("form").filter((_, f) => $(f).find(".h-captcha").length > 0);
		const action = form.attr("action")!;
		const returnTo = form.find('input[name="return"]').val() as string;
		assert.equal(returnTo, path);
		assert.equal(form.find('textarea[name="h-captcha-response"]').length, 1);

		const fake = await hit(action, {
			proxy: 2,
			form: { "h-captcha-response": "P1_made-up", return: returnTo },
		});
		assert.equal(fake.status, 403);
		assert.match(fake.body, /Verification failed/);

		// Solve it the way a client does: 2captcha in.php, then poll res.php.
		const sub = (await (
			await fetch(
				`${captcha.url}/in.php?${new URLSearchParams({ key: captcha.key, method: "hcaptcha", sitekey, pageurl: `${site.url}${path}`, json: "1" })}`,
			)
		).json()) as { status: number; request: string };
		assert.equal(sub.status, 1);
		const token = await waitFor(async () => {
			const r = (await (
				await fetch(`${captcha.url}/res.php?key=${captcha.key}&action=get&id=${sub.request}&json=1`)
			).json()) as { status: number; request: string };
			return r.status === 1 ? r.request : null;
		}, "captcha token");

		const verified = await hit(action, { proxy: 2, form: { "h-captcha-response": token, return: returnTo } });
		assert.equal(verified.status, 303);
		assert.equal(verified.headers.location, returnTo);
		const cookie = cookieOf(verified);

		const withCookie = await hit(path, { proxy: 2, cookie });
		assert.equal(withCookie.status, 200);
		assert.equal(cheerio.load(withCookie.body)("h1").first().text(), world.listingById.get(id)!.fullAddress);
		// The cookie clears the interstitial for that session only.
		assert.ok(isChallenge(await hit(path, { proxy: 2 })));
		const reused = await hit(action, { proxy: 2, form: { "h-captcha-response": token, return: returnTo } });
		assert.equal(reused.status, 403, "a token is single use");
	});

	test("the shared fault knobs apply (errors, malformed bodies)", async () => {
		const path = `/simple-search/?q=${ZIP}`;
		const good = await hit(path, { proxy: 3 });
		site.server.faults.set({ errorRate: 1, errorStatuses: [503] });
		assert.equal((await hit(path, { proxy: 3 })).status, 503);
		site.server.faults.set({ errorRate: 0, malformedRate: 1 });
		const bad = await hit(path, { proxy: 3 });
		assert.equal(bad.status, 200);
		// Spoiled: truncated, or garbage bytes spliced in.
		assert.ok(bad.body.length < good.body.length || bad.body.includes("\u0000"), "body is spoiled");
	});
});

describe("sessions", () => {
	test("a cookie the site does not know (expired) gets 'Session has expired' and is cleared", async () => {
		const res = await hit(`/simple-search/?q=${ZIP}`, { cookie: `${SESSION_COOKIE}=never-issued` });
		assert.equal(res.status, 200);
		assert.match(res.body, /Session has expired/);
		assert.equal(cheerio.load(res.body)(".listing-card").length, 0);
		assert.match(String(res.headers["set-cookie"]), /Max-Age=0/);
	});

	test("an issued session cookie expires after sessionTtlMs", async () => {
		site.configure({ defences: { ...LENIENT, sessionTtlMs: 50 } });
		const first = await hit(`/simple-search/?q=${ZIP}`);
		const cookie = cookieOf(first);
		await waitFor(
			async () => (await hit(`/simple-search/?q=${ZIP}`, { cookie })).body.includes("Session has expired"),
			"session expiry",
		);
	});

	test("the exit IP the proxies stamp is who the site counts", async () => {
		await hit(`/simple-search/?q=${ZIP}`, { proxy: 4 });
		assert.equal(site.server.counters.total({ client: "203.0.113.5" }), 1);
	});
});

describe("in a browser", () => {
	test("real Chromium through a sandbox proxy sees the JS-filled facts; the site sees the exit IP", async () => {
		site.configure({ jsRenderedShare: 1, defences: { ...LENIENT, direct: "deny" } });
		const p = farm.proxy(4);
		// Chromium cannot take proxy credentials on its command line; Playwright answers the 407 itself.
		const browser = await chromium.launch({
			executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
			args: ["--no-sandbox", "--disable-dev-shm-usage"],
			proxy: { server: `http://${p.host}:${p.port}`, username: p.username, password: p.password },
		});
		try {
			const page = await browser.newPage();
			// Photos live on the real CDN; the test stays on loopback.
			await page.route("**/*", (route) =>
				route.request().url().startsWith(site.url) ? route.continue() : route.abort(),
			);
			const id = site.listingIds(ZIP)[2]!;
			const res = await page.goto(`${site.url}${site.detailPath(id)}`);
			assert.equal(res?.status(), 200);
			const rows = await page.locator("#listing-facts tr").allInnerTexts();
			const facts = new Map(rows.map((r) => r.split("\t") as [string, string]));
			for (const [label, value] of Object.entries(expectedFacts(world.listingById.get(id)!))) {
				assert.equal(facts.get(label), value, label);
			}
			assert.ok(site.server.counters.total({ client: p.exitIp, kind: "listing" }) >= 1);
		} finally {
			await browser.close();
		}
	});
});
