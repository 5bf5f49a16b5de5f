/**
 * Phoenix MLS search site simulator (contracts/mls-site.md), serving the generator's listings.
 *
 * Pages: `GET /simple-search/?q={zip}&page={n}` (listing cards, `<a rel="next">` while more pages
 * remain) and `GET /mls/{Address-Slug}-mls_{id}/` (address heading, label/value facts, description,
 * sparkplatform photos). The facts markup varies per listing (definition list, table, "Label: value"
 * lines) so a scraper must read by label, and a configurable share of detail pages fill their facts
 * table from inline JSON by script (plain HTTP sees an empty table, a browser sees the facts).
 *
 * Defences, per client (the `X-Sandbox-Exit-IP` a sandbox proxy stamps, else the socket address),
 * in the order a request meets them:
 * 1. an IP in its cooldown gets 403 "Access denied";
 * 2. a session cookie the site no longer knows (expired) gets the "Session has expired" page;
 * 3. direct traffic (no exit-IP header, i.e. from a "datacenter") is denied or challenged at once
 *    when `defences.direct` says so;
 * 4. past `rateLimit.limit` requests in `rateLimit.windowMs` (A's per-client counters): 429
 *    "Too many requests"; after `challengeAfter` such 429s the client is challenged;
 * 5. a challenged client without a verified session gets the "Please verify you are human"
 *    interstitial (hCaptcha widget + form posting to /verify-human); after `denyAfter`
 *    interstitials its IP is denied for `cooldownMs`.
 * `POST /verify-human` accepts only a token the captcha simulator issued for the site's sitekey
 * (single use) and marks the session verified: that session skips the challenge and gets its own
 * rate budget (same limit, counted per session instead of per IP) until it expires.
 * Transport faults (latency, 5xx, truncated bodies) come first, from the shared fault knobs.
 */

import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { verifyToken as inProcessVerify } from "./captcha.ts";
import { clientIdOf, RequestCounters } from "./counters.ts";
import { FaultInjector, type FaultKnobs } from "./faults.ts";
import type { Listing, World } from "./generator.ts";
import { HttpError, type SimContext, type SimServer, startSimServer } from "./http.ts";
import { escapeHtml, mergeParams, readCookies } from "./http-kit.ts";
import { createPhotoCatalog, type PhotoCatalog, type PhotoCatalogOptions } from "./photos.ts";
import { hashString } from "./rng.ts";

/** The site's hCaptcha sitekey (UUID-shaped like real ones). */
export const MLS_SITEKEY = "7c1d3f0e-5b2a-4e8f-9a61-3d2c5b4a1e90";

export const SESSION_COOKIE = "mls_session";

export type DirectPolicy = "allow" | "challenge" | "deny";

export type MlsDefences = {
	/** Requests per client admitted in any `windowMs`; `null` = no rate limit (direct policy still applies). */
	rateLimit: { limit: number; windowMs: number } | null;
	/** 429 answers (within `strikeWindowMs`) a client may get before it is challenged. */
	challengeAfter: number;
	/** Interstitials (within `strikeWindowMs`) an unverified client may get before its IP is denied. */
	denyAfter: number;
	/** Memory of 429s and interstitials; a challenged client that stays quiet this long is forgiven. */
	strikeWindowMs: number;
	/** How long a denied IP keeps getting 403. */
	cooldownMs: number;
	/** Requests without an exit-IP header: served, challenged at once, or denied at once. */
	direct: DirectPolicy;
	/** Server-side session lifetime; the cookie itself has no expiry, as on the real site. */
	sessionTtlMs: number;
};

export type MlsKnobs = {
	/** Listing cards per search page. */
	pageSize: number;
	/** Share (0..1) of detail pages whose facts table is filled by client-side script. */
	jsRenderedShare: number;
	defences: MlsDefences;
};

export type MlsConfig = MlsKnobs & {
	host: string;
	port: number;
	sitekey: string;
	/**
	 * How the site checks a posted captcha token. Default: the in-process captcha simulator(s), or
	 * `captchaUrl`'s `/siteverify` when that is set (simulator in another process).
	 */
	verify?: (sitekey: string, token: string) => boolean | Promise<boolean>;
	captchaUrl?: string;
	faults?: Partial<FaultKnobs>;
	seed: number;
};

export function defaultMlsDefences(): MlsDefences {
	return {
		rateLimit: { limit: 60, windowMs: 60_000 },
		challengeAfter: 5,
		denyAfter: 5,
		strikeWindowMs: 10 * 60_000,
		cooldownMs: 10 * 60_000,
		direct: "deny",
		sessionTtlMs: 30 * 60_000,
	};
}

export function defaultMlsConfig(): MlsConfig {
	return {
		host: "127.0.0.1",
		port: 0,
		sitekey: MLS_SITEKEY,
		pageSize: 20,
		jsRenderedShare: 0.15,
		defences: defaultMlsDefences(),
		seed: 1,
	};
}

export type ClientDefenceState = {
	client: string;
	state: "ok" | "challenged" | "denied";
	/** 429s remembered (within strikeWindowMs). */
	strikes: number;
	/** Interstitials remembered (within strikeWindowMs). */
	challenges: number;
	/** ms epoch; 0 when not denied. */
	deniedUntil: number;
};

export type MlsDefenceStats = {
	rateLimited: number;
	challenged: number;
	denied: number;
	verifyOk: number;
	verifyFailed: number;
	sessionsIssued: number;
	sessionsExpired: number;
};

export type MarkupVariant = "dl" | "table" | "text";

export type MlsSite = {
	url: string;
	port: number;
	sitekey: string;
	server: SimServer;
	world: World;
	/** Changes page size, JS-rendered share or defences at run time (defences merge field by field). */
	configure(patch: Partial<Omit<MlsKnobs, "defences">> & { defences?: Partial<MlsDefences> }): void;
	knobs(): MlsKnobs;
	/** Ground truth: MLS ids of the listings a search for `zip` returns, in result order. */
	listingIds(zip: string): string[];
	/** Canonical detail path of a listing: `/mls/{slug}-mls_{id}/`. */
	detailPath(mlsId: string): string;
	isJsRendered(mlsId: string): boolean;
	markupVariant(mlsId: string): MarkupVariant;
	clientState(client: string): ClientDefenceState;
	/** Forgets every client's requests, strikes, challenges and bans, and all sessions. */
	resetDefences(): void;
	defenceStats(): MlsDefenceStats;
	/** The photo CDN served at /az/{id}-{size}.jpg, with its ground truth (photos.ts). */
	photos: PhotoCatalog;
	close(): Promise<void>;
};

type ClientRecord = { strikes: number[]; challenges: number[]; challenged: boolean; deniedUntil: number };

type Session = { id: string; verified: boolean; expiresAt: number; hits: number[] };

const EXIT_HEADER = "x-sandbox-exit-ip";

/** The site sees the proxy's exit IP, else the socket; API tokens mean nothing to a website. */
function siteClientOf(req: IncomingMessage): string {
	const exit = req.headers[EXIT_HEADER];
	if (typeof exit === "string" && exit.trim() !== "") return exit.trim();
	return req.socket.remoteAddress ?? clientIdOf(req);
}

export function listingSlug(l: Listing): string {
	return `${l.address} ${l.city} AZ ${l.zip}`.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
}

export function listingPath(l: Listing): string {
	return `/mls/${listingSlug(l)}-mls_${l.mlsId}/`;
}

const money = (n: number) => `$${n.toLocaleString("en-US")}`;
const num = (n: number) => n.toLocaleString("en-US");

/** Label/value facts in page order; `lotAcres` picks the "Lot Size: 0.18 Acres" form. */
export function listingFacts(l: Listing, lotAcres: boolean): [string, string][] {
	const facts: [string, string][] = [
		["List Price", money(l.price)],
		["Status", l.status],
		["MLS #", l.mlsId],
		["Property Type", l.propertyType],
		["# Bedrooms", String(l.beds)],
		["Full Bathrooms", String(l.fullBaths)],
		["Half Bathrooms", String(l.halfBaths)],
		["Approx SQFT", num(l.sqft)],
		lotAcres ? ["Lot Size", `${l.lotAcres.toFixed(2)} Acres`] : ["Approx Lot SqFt", num(l.lotSqft)],
		["Year Built", String(l.yearBuilt)],
		["Garage Spaces", String(l.garageSpaces)],
		["Pool", l.pool],
		["Sewer", l.sewer],
		["HOA Fee", l.hoaFee > 0 ? `${money(l.hoaFee)} / Month` : "$0"],
		["Association Fee Incl", l.associationFeeIncl.length > 0 ? l.associationFeeIncl.join(", ") : "No Fees"],
		["List Date", l.listDate],
	];
	return facts;
}

function page(title: string, body: string, head = ""): string {
	return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)} | Phoenix MLS Search</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
${head}</head>
<body>
<header class="site-header"><a href="/" class="logo">Phoenix MLS Search</a>
<form class="search" action="/simple-search/" method="get"><input name="q" placeholder="City, ZIP, address or MLS #"><button>Search</button></form>
</header>
<main>
${body}
</main>
<footer><p>Listing information is deemed reliable but not guaranteed. &copy; ARMLS.</p></footer>
</body>
</html>
`;
}

function factsMarkup(facts: [string, string][], variant: MarkupVariant): string {
	const e = escapeHtml;
	switch (variant) {
		case "dl":
			return `<dl class="listing-facts">\n${facts.map(([k, v]) => `<dt>${e(k)}</dt><dd>${e(v)}</dd>`).join("\n")}\n</dl>`;
		case "table":
			return `<table class="property-details">\n<tbody>\n${facts
				.map(([k, v]) => `<tr><th>${e(k)}:</th><td>${e(v)}</td></tr>`)
				.join("\n")}\n</tbody>\n</table>`;
		case "text":
			return `<div class="details-text">\n<p>${facts.map(([k, v]) => `${e(k)}: ${e(v)}`).join("<br>\n")}</p>\n</div>`;
	}
}

function photosMarkup(l: Listing): string {
	const base = "https://cdn.photos.sparkplatform.com/az/";
	const [first, ...rest] = l.photoIds;
	if (!first) return "";
	const thumbs = l.photoIds
		.map(
			(id, i) =>
				`<a href="${base}${id}-l.jpg" data-original="${base}${id}-o.jpg"><img src="${base}${id}-t.jpg" alt="Photo ${i + 1}" loading="lazy"></a>`,
		)
		.join("\n");
	return `<section class="photos">
<div class="main-photo"><img src="${base}${first}-m.jpg" data-large="${base}${first}-l.jpg" data-original="${base}${first}-o.jpg" alt="${escapeHtml(l.fullAddress)}"></div>
<div class="thumbnails" data-count="${rest.length + 1}">
${thumbs}
</div>
</section>`;
}

/** `</script>` inside JSON would end the script element early. */
function inlineJson(value: unknown): string {
	return JSON.stringify(value).replace(/</g, "\\u003c");
}

const FILL_SCRIPT = `<script>
(function () {
  var data = JSON.parse(document.getElementById("listing-data").textContent);
  var body = document.querySelector("#listing-facts tbody");
  data.facts.forEach(function (f) {
    var tr = document.createElement("tr");
    var th = document.createElement("th");
    var td = document.createElement("td");
    th.textContent = f[0];
    td.textContent = f[1];
    tr.appendChild(th);
    tr.appendChild(td);
    body.appendChild(tr);
  });
})();
</script>`;

function detailHtml(l: Listing, variant: MarkupVariant, lotAcres: boolean, jsRendered: boolean): string {
	const facts = listingFacts(l, lotAcres);
	const factsBlock = jsRendered
		? `<table id="listing-facts" class="property-details"><tbody></tbody></table>
<script type="application/json" id="listing-data">${inlineJson({ mlsId: l.mlsId, facts })}</script>
${FILL_SCRIPT}`
		: factsMarkup(facts, variant);
	const body = `<article class="listing" data-mls="${l.mlsId}">
<h1 class="listing-address">${escapeHtml(l.fullAddress)}</h1>
<p class="listing-price">${money(l.price)}</p>
${photosMarkup(l)}
<section class="facts">
<h2>Property Details</h2>
${factsBlock}
</section>
<section class="description">
<h2>Property Description</h2>
<p>${escapeHtml(l.description)}</p>
</section>
</article>`;
	return page(l.fullAddress, body);
}

function searchHtml(q: string, ids: Listing[], pageNo: number, pageSize: number): string {
	const total = ids.length;
	const start = (pageNo - 1) * pageSize;
	const slice = ids.slice(start, start + pageSize);
	const cards = slice
		.map((l) => {
			const baths = l.fullBaths + l.halfBaths * 0.5;
			return `<div class="listing-card" data-mls="${l.mlsId}">
<a class="listing-link" href="${listingPath(l)}"><span class="card-address">${escapeHtml(l.fullAddress)}</span></a>
<div class="card-price">${money(l.price)}</div>
<ul class="card-stats"><li class="beds">${l.beds} ${l.beds === 1 ? "Bed" : "Beds"}</li><li class="baths">${baths} ${baths === 1 ? "Bath" : "Baths"}</li><li class="sqft">${num(l.sqft)} SqFt</li></ul>
<div class="card-status">${escapeHtml(l.status)}</div>
</div>`;
		})
		.join("\n");
	const qs = (n: number) => `/simple-search/?q=${encodeURIComponent(q)}&amp;page=${n}`;
	const links: string[] = [];
	if (pageNo > 1) links.push(`<a rel="prev" href="${qs(pageNo - 1)}">&laquo; Previous</a>`);
	if (start + pageSize < total) links.push(`<a rel="next" href="${qs(pageNo + 1)}">Next &raquo;</a>`);
	const summary =
		slice.length > 0
			? `Showing ${start + 1}&ndash;${start + slice.length} of ${total} listings for ${escapeHtml(q)}`
			: `No listings found for ${escapeHtml(q)}`;
	return page(
		`Homes for sale in ${q}`,
		`<section class="search-results">
<h1>Search results</h1>
<p class="result-summary">${summary}</p>
<div class="listing-cards">
${cards}
</div>
<nav class="pagination">${links.join(" ")}</nav>
</section>`,
	);
}

function tooManyHtml(): string {
	return page(
		"Too many requests",
		`<h1>Too many requests</h1>
<p>We have received too many requests from your network. Please slow down and try again later.</p>`,
	);
}

function challengeHtml(sitekey: string, returnTo: string, failed: boolean): string {
	return page(
		"Please verify you are human",
		`<section class="challenge">
<h1>Please verify you are human</h1>
<p>Unusual activity has been detected from your network. Complete the check below to continue.</p>
${failed ? '<p class="error">Verification failed. Please try again.</p>\n' : ""}<form method="post" action="/verify-human">
<div class="h-captcha" data-sitekey="${escapeHtml(sitekey)}"></div>
<textarea name="h-captcha-response" style="display:none"></textarea>
<input type="hidden" name="return" value="${escapeHtml(returnTo)}">
<button type="submit">Continue</button>
</form>
</section>`,
	);
}

function deniedHtml(): string {
	return page(
		"Access denied",
		`<h1>Access denied</h1>
<p>Your access to this site has been blocked. Please try again later.</p>`,
	);
}

function expiredHtml(returnTo: string): string {
	return page(
		"Session expired",
		`<h1>Session has expired</h1>
<p>Your session has expired. <a href="${escapeHtml(returnTo)}">Continue</a></p>`,
	);
}

function notFoundHtml(): string {
	return page("Not found", "<h1>Listing not found</h1><p>The page you requested does not exist.</p>");
}

function validateKnobs(k: MlsKnobs): void {
	if (!(Number.isInteger(k.pageSize) && k.pageSize >= 1 && k.pageSize <= 500))
		throw new RangeError("mls: pageSize must be an integer 1..500");
	if (!(k.jsRenderedShare >= 0 && k.jsRenderedShare <= 1))
		throw new RangeError("mls: jsRenderedShare must be within 0..1");
	const d = k.defences;
	if (
		d.rateLimit &&
		!(Number.isInteger(d.rateLimit.limit) && d.rateLimit.limit >= 0 && d.rateLimit.windowMs > 0)
	)
		throw new RangeError("mls: rateLimit needs an integer limit >= 0 and windowMs > 0");
	for (const name of ["challengeAfter", "denyAfter"] as const) {
		if (!(Number.isInteger(d[name]) && d[name] >= 0))
			throw new RangeError(`mls: ${name} must be an integer >= 0`);
	}
	for (const name of ["strikeWindowMs", "cooldownMs", "sessionTtlMs"] as const) {
		if (!(d[name] > 0)) throw new RangeError(`mls: ${name} must be > 0`);
	}
	if (!["allow", "challenge", "deny"].includes(d.direct))
		throw new RangeError(`mls: unknown direct policy ${d.direct}`);
}

/** Only same-site paths are followed after verification (no open redirect). */
function safeReturn(path: string | undefined): string {
	return path?.startsWith("/") && !path.startsWith("//") ? path : "/";
}

export type StartMlsOptions = Partial<Omit<MlsConfig, "defences">> & {
	world: World;
	defences?: Partial<MlsDefences>;
	photos?: Partial<PhotoCatalogOptions>;
};

export async function startMlsSite(options: StartMlsOptions): Promise<MlsSite> {
	const { world, defences: defencePatch, photos: photoOptions, ...rest } = options;
	const photos = createPhotoCatalog(world, photoOptions);
	const base = defaultMlsConfig();
	const config: MlsConfig = { ...base, ...rest, defences: { ...base.defences, ...defencePatch } };
	validateKnobs(config);
	const knobs: MlsKnobs = {
		pageSize: config.pageSize,
		jsRenderedShare: config.jsRenderedShare,
		defences: { ...config.defences },
	};
	const counters = new RequestCounters();
	const faults = new FaultInjector(config.faults, config.seed);
	const clients = new Map<string, ClientRecord>();
	const sessions = new Map<string, Session>();
	const dstats: MlsDefenceStats = {
		rateLimited: 0,
		challenged: 0,
		denied: 0,
		verifyOk: 0,
		verifyFailed: 0,
		sessionsIssued: 0,
		sessionsExpired: 0,
	};

	const verify =
		config.verify ??
		(config.captchaUrl
			? siteverify(config.captchaUrl)
			: (sitekey: string, token: string) => inProcessVerify(sitekey, token));

	// Search order: newest listing first, as the real site sorts by default.
	const byZip = new Map<string, Listing[]>();
	for (const [zip, list] of world.listingsByZip) {
		byZip.set(
			zip,
			[...list].sort((a, b) =>
				a.listDate !== b.listDate ? (a.listDate < b.listDate ? 1 : -1) : a.mlsId < b.mlsId ? -1 : 1,
			),
		);
	}

	const h = (mlsId: string, salt: string) => hashString(`${config.seed}:${salt}:${mlsId}`) / 4294967296;
	const isJsRendered = (mlsId: string) => h(mlsId, "js") < knobs.jsRenderedShare;
	const variants: MarkupVariant[] = ["dl", "table", "text"];
	const markupVariant = (mlsId: string) => variants[Math.floor(h(mlsId, "markup") * 3)]!;
	const lotInAcres = (mlsId: string) => h(mlsId, "lot") < 0.35;

	const record = (client: string): ClientRecord => {
		let r = clients.get(client);
		if (!r) {
			r = { strikes: [], challenges: [], challenged: false, deniedUntil: 0 };
			clients.set(client, r);
		}
		return r;
	};
	const prune = (r: ClientRecord, now: number) => {
		const since = now - knobs.defences.strikeWindowMs;
		while (r.strikes.length > 0 && r.strikes[0]! <= since) r.strikes.shift();
		while (r.challenges.length > 0 && r.challenges[0]! <= since) r.challenges.shift();
		// A challenged client that has been quiet for a whole strike window is forgiven.
		if (r.challenged && r.challenges.length === 0 && r.strikes.length === 0) r.challenged = false;
		if (r.deniedUntil > 0 && r.deniedUntil <= now) {
			r.deniedUntil = 0;
			r.strikes.length = 0;
			r.challenges.length = 0;
			r.challenged = false;
		}
	};
	const clientState = (client: string): ClientDefenceState => {
		const r = record(client);
		prune(r, Date.now());
		return {
			client,
			state: r.deniedUntil > 0 ? "denied" : r.challenged ? "challenged" : "ok",
			strikes: r.strikes.length,
			challenges: r.challenges.length,
			deniedUntil: r.deniedUntil,
		};
	};

	const sweepSessions = (now: number) => {
		for (const [id, s] of sessions) if (s.expiresAt <= now) sessions.delete(id);
	};
	const newSession = (verified: boolean, now: number): Session => {
		if (sessions.size > 10_000) sweepSessions(now);
		const s: Session = {
			id: randomBytes(18).toString("base64url"),
			verified,
			expiresAt: now + knobs.defences.sessionTtlMs,
			hits: [],
		};
		sessions.set(s.id, s);
		dstats.sessionsIssued++;
		return s;
	};
	const cookieFor = (s: Session) => `${SESSION_COOKIE}=${s.id}; Path=/; HttpOnly; SameSite=Lax`;
	const clearCookie = `${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax`;

	const html = (ctx: SimContext, status: number, body: string, headers: Record<string, string> = {}) =>
		ctx.send(status, body, { "content-type": "text/html; charset=utf-8", ...headers }, { malformable: true });

	const deny = (ctx: SimContext) => {
		dstats.denied++;
		html(ctx, 403, deniedHtml());
	};

	/** Serves the interstitial, or the ban once the client has ignored enough of them. */
	const challenge = (ctx: SimContext, r: ClientRecord, now: number, returnTo: string) => {
		r.challenged = true;
		if (r.challenges.length >= knobs.defences.denyAfter) {
			r.deniedUntil = now + knobs.defences.cooldownMs;
			deny(ctx);
			return;
		}
		r.challenges.push(now);
		dstats.challenged++;
		html(ctx, 200, challengeHtml(config.sitekey, returnTo, false));
	};

	/**
	 * Runs the defences; returns the session to continue with, or null when a defence answered.
	 * `gate` = false for the verify endpoint, which must stay reachable while challenged.
	 */
	const defend = (ctx: SimContext, returnTo: string, gate: boolean): { session: Session | null } | null => {
		const now = Date.now();
		const d = knobs.defences;
		const r = record(ctx.client);
		prune(r, now);
		if (r.deniedUntil > now) {
			deny(ctx);
			return null;
		}
		const sid = readCookies(ctx.req)[SESSION_COOKIE];
		let session: Session | null = null;
		if (sid !== undefined && sid !== "") {
			const s = sessions.get(sid);
			if (!s || s.expiresAt <= now) {
				sessions.delete(sid);
				dstats.sessionsExpired++;
				html(ctx, 200, expiredHtml(returnTo), { "set-cookie": clearCookie });
				return null;
			}
			session = s;
		}
		if (!gate) return { session };
		const human = session?.verified === true;
		const direct = typeof ctx.req.headers[EXIT_HEADER] !== "string";
		if (direct && d.direct === "deny") {
			deny(ctx);
			return null;
		}
		if (direct && d.direct === "challenge" && !human) {
			challenge(ctx, r, now, returnTo);
			return null;
		}
		if (d.rateLimit) {
			const { limit, windowMs } = d.rateLimit;
			const retryAfter = { "retry-after": String(Math.ceil(windowMs / 1000)) };
			if (human && session) {
				// A verified session has its own budget (the IP's is spent, that is why it was challenged).
				while (session.hits.length > 0 && session.hits[0]! <= now - windowMs) session.hits.shift();
				session.hits.push(now);
				if (session.hits.length > limit) {
					dstats.rateLimited++;
					html(ctx, 429, tooManyHtml(), retryAfter);
					return null;
				}
				return { session };
			}
			// The shared counters already hold this request, so "past the limit" is count > limit.
			const recent = counters.countSince(windowMs, { client: ctx.client }, now + 1);
			if (recent > limit) {
				if (r.challenged || r.strikes.length >= d.challengeAfter) {
					challenge(ctx, r, now, returnTo);
					return null;
				}
				r.strikes.push(now);
				dstats.rateLimited++;
				html(ctx, 429, tooManyHtml(), retryAfter);
				return null;
			}
		}
		if (r.challenged && !human) {
			challenge(ctx, r, now, returnTo);
			return null;
		}
		return { session };
	};

	/** Gives cookie-less visitors a session, as the real site does on first contact. */
	const sessionHeaders = (session: Session | null): Record<string, string> =>
		session ? {} : { "set-cookie": cookieFor(newSession(false, Date.now())) };

	const handle = async (ctx: SimContext): Promise<void> => {
		const { url, req } = ctx;
		const path = url.pathname;
		const returnTo = `${path}${url.search}`;

		if (path === "/verify-human") {
			if (req.method !== "POST") throw new HttpError(405, "POST only");
			const params = mergeParams(url, req, await ctx.body());
			const back = safeReturn(params.return);
			const passed = defend(ctx, back, false);
			if (!passed) return;
			const token = params["h-captcha-response"] || params["g-recaptcha-response"] || "";
			const ok = token !== "" && (await verify(config.sitekey, token));
			if (!ok) {
				dstats.verifyFailed++;
				html(ctx, 403, challengeHtml(config.sitekey, back, true));
				return;
			}
			dstats.verifyOk++;
			const now = Date.now();
			const session = passed.session ?? newSession(true, now);
			session.verified = true;
			session.expiresAt = now + knobs.defences.sessionTtlMs;
			// Only this session is cleared: the IP stays challenged for its other (cookie-less) requests.
			ctx.send(303, "", { location: back, "set-cookie": cookieFor(session) });
			return;
		}

		if (req.method !== "GET" && req.method !== "HEAD") throw new HttpError(405, "GET only");

		if (path === "/simple-search/" || path === "/simple-search") {
			const passed = defend(ctx, returnTo, true);
			if (!passed) return;
			const q = (url.searchParams.get("q") ?? "").trim();
			const pageParam = Number(url.searchParams.get("page") ?? "1");
			const pageNo = Number.isInteger(pageParam) && pageParam >= 1 ? pageParam : 1;
			const list = /^\d{5}$/.test(q) ? (byZip.get(q) ?? []) : [];
			html(ctx, 200, searchHtml(q, list, pageNo, knobs.pageSize), sessionHeaders(passed.session));
			return;
		}

		const m = /^\/mls\/(.+)-mls_(\d+)\/?$/.exec(path);
		if (m) {
			const passed = defend(ctx, returnTo, true);
			if (!passed) return;
			const listing = world.listingById.get(m[2]!);
			if (!listing) {
				html(ctx, 404, notFoundHtml(), sessionHeaders(passed.session));
				return;
			}
			const canonical = listingPath(listing);
			if (path !== canonical) {
				// The real site redirects a stale or mistyped slug to the canonical URL.
				ctx.send(301, "", { location: canonical, ...sessionHeaders(passed.session) });
				return;
			}
			const body = detailHtml(
				listing,
				markupVariant(listing.mlsId),
				lotInAcres(listing.mlsId),
				isJsRendered(listing.mlsId),
			);
			html(ctx, 200, body, sessionHeaders(passed.session));
			return;
		}

		const photo = /^\/az\/([A-Za-z0-9_]{1,64})-([tmlo])\.jpg$/.exec(path);
		if (photo) {
			// The photo CDN: the same per-IP defences as pages.
			if (!defend(ctx, returnTo, true)) return;
			const img = await photos.render(photo[1]!, photo[2] as "t" | "m" | "l" | "o");
			if (!img) return html(ctx, 404, notFoundHtml());
			ctx.res.writeHead(200, { "content-type": img.contentType, "content-length": img.body.length });
			ctx.res.end(img.body);
			return;
		}

		if (path === "/") {
			const passed = defend(ctx, returnTo, true);
			if (!passed) return;
			html(
				ctx,
				200,
				page("Phoenix MLS Search", "<h1>Search Phoenix homes for sale</h1>"),
				sessionHeaders(passed.session),
			);
			return;
		}
		html(ctx, 404, notFoundHtml());
	};

	const server = await startSimServer({
		name: "mls",
		host: config.host,
		port: config.port,
		faults,
		counters,
		clientOf: siteClientOf,
		classify: (url) =>
			url.pathname.startsWith("/simple-search")
				? "search"
				: url.pathname.startsWith("/mls/")
					? "listing"
					: url.pathname === "/verify-human"
						? "verify"
						: url.pathname.startsWith("/az/")
							? "photo"
							: "other",
		malform: "body",
		handle,
		control: {
			"GET truth": ({ url }) => {
				const zip = url.searchParams.get("zip");
				if (zip) return { zip, mlsIds: (byZip.get(zip) ?? []).map((l) => l.mlsId) };
				const out: Record<string, string[]> = {};
				for (const [z, list] of byZip) out[z] = list.map((l) => l.mlsId);
				return out;
			},
			"GET mls": () => ({ ...knobs, stats: dstats }),
			"POST mls": ({ body }) => {
				if (body === null || typeof body !== "object") throw new HttpError(400, "expected a JSON object");
				try {
					apply(body as Partial<Omit<MlsKnobs, "defences">> & { defences?: Partial<MlsDefences> });
				} catch (err) {
					throw new HttpError(400, (err as Error).message);
				}
				return knobs;
			},
			"GET mls/clients": () => [...clients.keys()].map(clientState),
			// Ground truth of the photo CDN: each photo of a ZIP, the picture it shows, copy kind, bad input.
			"GET mls/photos": ({ url }) => photos.truthOfZip(url.searchParams.get("zip") ?? ""),
			"POST mls/reset": () => {
				resetDefences();
				return { ok: true };
			},
		},
	});

	function apply(patch: Partial<Omit<MlsKnobs, "defences">> & { defences?: Partial<MlsDefences> }): void {
		const next: MlsKnobs = {
			pageSize: patch.pageSize ?? knobs.pageSize,
			jsRenderedShare: patch.jsRenderedShare ?? knobs.jsRenderedShare,
			defences: { ...knobs.defences, ...patch.defences },
		};
		validateKnobs(next);
		Object.assign(knobs, next);
	}

	function resetDefences(): void {
		clients.clear();
		sessions.clear();
		// The rate limit reads the request log, so forgetting clients means forgetting their requests.
		counters.reset();
	}

	return {
		url: server.url,
		port: server.port,
		sitekey: config.sitekey,
		server,
		world,
		configure: apply,
		knobs: () => structuredClone(knobs),
		listingIds: (zip) => (byZip.get(zip) ?? []).map((l) => l.mlsId),
		detailPath(mlsId) {
			const l = world.listingById.get(mlsId);
			if (!l) throw new RangeError(`no listing ${mlsId}`);
			return listingPath(l);
		},
		isJsRendered,
		markupVariant,
		clientState,
		resetDefences,
		defenceStats: () => ({ ...dstats }),
		photos,
		close: () => server.stop(),
	};
}

/** Token check against a captcha simulator in another process (hCaptcha-style siteverify). */
function siteverify(captchaUrl: string) {
	return async (sitekey: string, token: string): Promise<boolean> => {
		const res = await fetch(`${captchaUrl.replace(/\/$/, "")}/siteverify`, {
			method: "POST",
			headers: { "content-type": "application/x-www-form-urlencoded" },
			body: new URLSearchParams({ sitekey, response: token }).toString(),
		});
		if (!res.ok) return false;
		const body = (await res.json()) as { success?: unknown };
		return body.success === true;
	};
}
