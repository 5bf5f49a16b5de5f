/**
 * 2captcha simulator (contracts/captcha.md): the legacy in.php/res.php protocol and the JSON API v2
 * on one server, sharing one task store, one balance per API key and one token registry.
 *
 * Tasks are settled lazily (when polled, or when the balance or stats are read) rather than by
 * timers, so a stopped simulator never leaves a pending timer behind. Issued tokens are recorded per
 * sitekey so the MLS simulator can check that a posted token really came from a solve (single use,
 * with the short lifetime real hCaptcha/reCAPTCHA tokens have).
 */
import { randomBytes } from "node:crypto";
import { RequestCounters } from "./counters.ts";
import { FaultInjector, type FaultKnobs } from "./faults.ts";
import { HttpError, type SimContext, type SimServer, startSimServer } from "./http.ts";
import { mergeParams, parseJsonObject } from "./http-kit.ts";

/** 32 alphanumerics like a real 2captcha key; a key of another shape is ERROR_WRONG_USER_KEY. */
export const SANDBOX_CAPTCHA_KEY = "5b1e7c0d5a9d4c2e8f3a6b7c9d0e1f2a";

export type CaptchaConfig = {
	host: string;
	/** 0 = a free port. */
	port: number;
	/** Accepted API keys; each starts with `balance`. */
	keys: string[];
	/** Starting balance per key, in USD. */
	balance: number;
	/** Charged per submission, refunded when the task turns out unsolvable. */
	price: number;
	/** Time from submission to a ready answer (real solves take 10-60 s); applies to pending tasks too. */
	solveDelayMs: number;
	/** Share of tasks (0..1) that end in ERROR_CAPTCHA_UNSOLVABLE. */
	unsolvableRate: number;
	/** Tasks in progress at once before submissions get ERROR_NO_SLOT_AVAILABLE. */
	maxPending: number;
	/** How long an issued token stays acceptable to verifyToken. */
	tokenTtlMs: number;
	/** Source of randomness for the unsolvable draw (seeded by the sandbox for reproducible runs). */
	random: () => number;
};

export const defaultCaptchaConfig: CaptchaConfig = {
	host: "127.0.0.1",
	port: 0,
	keys: [SANDBOX_CAPTCHA_KEY],
	balance: 5,
	price: 0.00299,
	solveDelayMs: 1500,
	unsolvableRate: 0,
	maxPending: 100,
	tokenTtlMs: 120_000,
	random: Math.random,
};

/** The run-time knobs (everything but where it listens). */
export type CaptchaKnobs = Omit<CaptchaConfig, "host" | "port" | "keys" | "balance">;

export type SitekeyStats = { submissions: number; solves: number; verified: number; rejected: number };

export type CaptchaStats = {
	submissions: number;
	solves: number;
	unsolvable: number;
	rejectedSubmissions: number;
	polls: number;
	reportsBad: number;
	reportsGood: number;
	verified: number;
	rejected: number;
	bySitekey: Record<string, SitekeyStats>;
};

export type CaptchaHandle = {
	/** Base URL for clients: `${url}/in.php`, `${url}/res.php`, `${url}/createTask`, ... */
	url: string;
	port: number;
	/** The first configured API key. */
	key: string;
	/** The shared simulator server: counters, fault knobs, /__sandbox control routes. */
	server: SimServer;
	configure(patch: Partial<CaptchaKnobs>): void;
	getBalance(key?: string): number;
	setBalance(amount: number, key?: string): void;
	/** True once for a token this simulator issued for `sitekey` that has not expired. */
	verifyToken(sitekey: string, token: string): boolean;
	stats(): CaptchaStats;
	close(): Promise<void>;
};

type Kind = "recaptcha" | "hcaptcha" | "image";

type Task = {
	id: number;
	key: string;
	kind: Kind;
	sitekey: string | null;
	pageurl: string | null;
	createdAt: number;
	/** When the answer became ready (or the task failed); 0 while pending. */
	doneAt: number;
	unsolvable: boolean;
	state: "pending" | "ready" | "failed";
	answer: string | null;
	cost: number;
	reported: "bad" | "good" | null;
};

type Submission = { kind: Kind; sitekey: string | null; pageurl: string | null };

type SubmitResult = { ok: true; task: Task } | { ok: false; error: string };

const KEY_SHAPE = /^[A-Za-z0-9]{32}$/;

/** Running simulators, so the module-level verifyToken can serve the MLS site in the same process. */
const live = new Set<CaptchaSim>();

/**
 * Process-wide check of a captcha token for a sitekey, against every running captcha simulator.
 * Single use: a token that verifies once never verifies again.
 */
export function verifyToken(sitekey: string, token: string): boolean {
	for (const sim of live) if (sim.consume(sitekey, token)) return true;
	for (const sim of live) sim.countRejected(sitekey);
	return false;
}

class CaptchaSim {
	config: CaptchaConfig;
	balances = new Map<string, number>();
	tasks = new Map<number, Task>();
	/** sitekey -> token -> expiry (ms epoch). */
	tokens = new Map<string, Map<string, number>>();
	nextId = 72_345_678_901;
	counters: Omit<CaptchaStats, "bySitekey"> = {
		submissions: 0,
		solves: 0,
		unsolvable: 0,
		rejectedSubmissions: 0,
		polls: 0,
		reportsBad: 0,
		reportsGood: 0,
		verified: 0,
		rejected: 0,
	};
	bySitekey = new Map<string, SitekeyStats>();

	constructor(config: CaptchaConfig) {
		this.config = config;
		for (const key of config.keys) this.balances.set(key, config.balance);
	}

	siteStats(sitekey: string): SitekeyStats {
		let s = this.bySitekey.get(sitekey);
		if (!s) {
			s = { submissions: 0, solves: 0, verified: 0, rejected: 0 };
			this.bySitekey.set(sitekey, s);
		}
		return s;
	}

	/** Legacy error for a key: missing or malformed keys and unknown keys are told apart, as 2captcha does. */
	keyError(key: string | undefined): string | null {
		if (!key || !KEY_SHAPE.test(key)) return "ERROR_WRONG_USER_KEY";
		if (!this.balances.has(key)) return "ERROR_KEY_DOES_NOT_EXIST";
		return null;
	}

	pendingCount(): number {
		let n = 0;
		for (const t of this.tasks.values()) if (t.state === "pending") n++;
		return n;
	}

	submit(key: string, sub: Submission): SubmitResult {
		this.settleAll();
		const balance = this.balances.get(key) ?? 0;
		// Float dust from repeated subtraction must not let a last solve through for free.
		if (balance + 1e-9 < this.config.price) return this.reject("ERROR_ZERO_BALANCE");
		if (this.pendingCount() >= this.config.maxPending) return this.reject("ERROR_NO_SLOT_AVAILABLE");
		const now = Date.now();
		const task: Task = {
			id: this.nextId++,
			key,
			kind: sub.kind,
			sitekey: sub.sitekey,
			pageurl: sub.pageurl,
			createdAt: now,
			doneAt: 0,
			unsolvable: this.config.random() < this.config.unsolvableRate,
			state: "pending",
			answer: null,
			cost: this.config.price,
			reported: null,
		};
		this.balances.set(key, round5(balance - task.cost));
		this.tasks.set(task.id, task);
		this.counters.submissions++;
		if (task.sitekey) this.siteStats(task.sitekey).submissions++;
		return { ok: true, task };
	}

	reject(error: string): SubmitResult {
		this.counters.rejectedSubmissions++;
		return { ok: false, error };
	}

	settle(task: Task, now = Date.now()): Task {
		// Readiness follows the current solveDelayMs, so a test can speed up or stall pending tasks.
		if (task.state !== "pending" || now < task.createdAt + this.config.solveDelayMs) return task;
		task.doneAt = now;
		if (task.unsolvable) {
			task.state = "failed";
			// 2captcha does not charge for captchas it could not solve.
			this.balances.set(task.key, round5((this.balances.get(task.key) ?? 0) + task.cost));
			this.counters.unsolvable++;
			return task;
		}
		task.state = "ready";
		task.answer = makeAnswer(task.kind);
		this.counters.solves++;
		if (task.sitekey) {
			this.siteStats(task.sitekey).solves++;
			let issued = this.tokens.get(task.sitekey);
			if (!issued) {
				issued = new Map();
				this.tokens.set(task.sitekey, issued);
			}
			issued.set(task.answer, now + this.config.tokenTtlMs);
		}
		return task;
	}

	settleAll(): void {
		const now = Date.now();
		for (const task of this.tasks.values()) this.settle(task, now);
	}

	/** Removes the token if this simulator issued it for the sitekey and it is still fresh. */
	consume(sitekey: string, token: string): boolean {
		this.settleAll();
		const issued = this.tokens.get(sitekey);
		const expiresAt = issued?.get(token);
		if (issued === undefined || expiresAt === undefined) return false;
		issued.delete(token);
		if (expiresAt < Date.now()) return false;
		this.counters.verified++;
		this.siteStats(sitekey).verified++;
		return true;
	}

	countRejected(sitekey: string): void {
		this.counters.rejected++;
		this.siteStats(sitekey).rejected++;
	}

	verify(sitekey: string, token: string): boolean {
		if (this.consume(sitekey, token)) return true;
		this.countRejected(sitekey);
		return false;
	}

	stats(): CaptchaStats {
		this.settleAll();
		const bySitekey: Record<string, SitekeyStats> = {};
		for (const [k, v] of this.bySitekey) bySitekey[k] = { ...v };
		return { ...this.counters, bySitekey };
	}
}

function round5(n: number): number {
	return Math.round(n * 100_000) / 100_000;
}

function makeAnswer(kind: Kind): string {
	switch (kind) {
		case "hcaptcha":
			return `P1_${randomBytes(96).toString("base64url")}`;
		case "recaptcha":
			return `03A${randomBytes(120).toString("base64url")}`;
		case "image": {
			const alphabet = "abcdefghjkmnpqrstuvwxyz23456789";
			return Array.from(randomBytes(6), (b) => alphabet[b % alphabet.length]).join("");
		}
	}
}

// ---------- legacy protocol ----------

function legacySubmission(p: Record<string, string>): Submission | null {
	switch (p.method) {
		case "userrecaptcha":
			return p.googlekey && p.pageurl
				? { kind: "recaptcha", sitekey: p.googlekey, pageurl: p.pageurl }
				: null;
		case "hcaptcha":
			return p.sitekey && p.pageurl ? { kind: "hcaptcha", sitekey: p.sitekey, pageurl: p.pageurl } : null;
		case "base64":
			return p.body && isBase64(p.body) ? { kind: "image", sitekey: null, pageurl: null } : null;
		default:
			return null;
	}
}

function isBase64(text: string): boolean {
	return /^[A-Za-z0-9+/=\s]+$/.test(text) && text.replace(/\s/g, "").length >= 4;
}

/** json=1 answers {"status","request"}; without it 2captcha answers plain text `OK|value` or the error code. */
function legacyReply(ctx: SimContext, json: boolean, status: 0 | 1, request: string, okPrefix = true): void {
	if (json) ctx.json(200, { status, request });
	else
		ctx.send(200, status === 1 && okPrefix ? `OK|${request}` : request, {
			"content-type": "text/plain; charset=utf-8",
		});
}

function handleIn(sim: CaptchaSim, p: Record<string, string>, ctx: SimContext): void {
	const json = p.json === "1";
	const keyError = sim.keyError(p.key);
	if (keyError) {
		sim.counters.rejectedSubmissions++;
		legacyReply(ctx, json, 0, keyError);
		return;
	}
	const sub = legacySubmission(p);
	if (!sub) {
		sim.counters.rejectedSubmissions++;
		legacyReply(ctx, json, 0, "ERROR_BAD_PARAMETERS");
		return;
	}
	const result = sim.submit(p.key, sub);
	if (result.ok) legacyReply(ctx, json, 1, String(result.task.id));
	else legacyReply(ctx, json, 0, result.error);
}

function handleRes(sim: CaptchaSim, p: Record<string, string>, ctx: SimContext): void {
	const json = p.json === "1";
	const keyError = sim.keyError(p.key);
	if (keyError) {
		legacyReply(ctx, json, 0, keyError);
		return;
	}
	const key = p.key;
	const ownTask = (): Task | null => {
		const task = /^\d+$/.test(p.id ?? "") ? sim.tasks.get(Number(p.id)) : undefined;
		return task && task.key === key ? sim.settle(task) : null;
	};
	switch (p.action) {
		case "get": {
			sim.counters.polls++;
			const task = ownTask();
			if (!task) legacyReply(ctx, json, 0, "ERROR_WRONG_CAPTCHA_ID");
			else if (task.state === "pending") legacyReply(ctx, json, 0, "CAPCHA_NOT_READY");
			else if (task.state === "failed") legacyReply(ctx, json, 0, "ERROR_CAPTCHA_UNSOLVABLE");
			else legacyReply(ctx, json, 1, task.answer ?? "");
			return;
		}
		case "getbalance": {
			sim.settleAll();
			legacyReply(ctx, json, 1, String(sim.balances.get(key) ?? 0), false);
			return;
		}
		case "reportbad":
		case "reportgood": {
			const task = ownTask();
			if (task?.state !== "ready") {
				legacyReply(ctx, json, 0, "ERROR_WRONG_CAPTCHA_ID");
				return;
			}
			task.reported = p.action === "reportbad" ? "bad" : "good";
			if (task.reported === "bad") sim.counters.reportsBad++;
			else sim.counters.reportsGood++;
			legacyReply(ctx, json, 1, "OK_REPORT_RECORDED", false);
			return;
		}
		default:
			legacyReply(ctx, json, 0, "ERROR_BAD_PARAMETERS");
	}
}

// ---------- JSON API v2 ----------

const V2_ERRORS: Record<string, number> = {
	ERROR_KEY_DOES_NOT_EXIST: 1,
	ERROR_NO_SLOT_AVAILABLE: 2,
	ERROR_ZERO_BALANCE: 10,
	ERROR_CAPTCHA_UNSOLVABLE: 12,
	ERROR_NO_SUCH_CAPCHA_ID: 16,
	ERROR_TASK_NOT_SUPPORTED: 23,
	ERROR_BAD_PARAMETERS: 110,
};

const V2_DESCRIPTIONS: Record<string, string> = {
	ERROR_KEY_DOES_NOT_EXIST: "The authorization key does not exist in the system or has incorrect format",
	ERROR_NO_SLOT_AVAILABLE: "No idle workers are available at the moment",
	ERROR_ZERO_BALANCE: "Account has zero balance",
	ERROR_CAPTCHA_UNSOLVABLE: "Workers could not solve the Captcha",
	ERROR_NO_SUCH_CAPCHA_ID: "The captcha you are requesting does not exist",
	ERROR_TASK_NOT_SUPPORTED: "Task type is not supported or inaccurately spelled",
	ERROR_BAD_PARAMETERS:
		"The required captcha parameters in your request are missing or have incorrect format",
};

function v2Error(ctx: SimContext, code: string): void {
	ctx.json(200, {
		errorId: V2_ERRORS[code] ?? 1,
		errorCode: code,
		errorDescription: V2_DESCRIPTIONS[code] ?? code,
	});
}

function v2Submission(task: unknown): Submission | "unsupported" | null {
	if (task === null || typeof task !== "object") return null;
	const t = task as Record<string, unknown>;
	const str = (k: string) => (typeof t[k] === "string" && t[k] !== "" ? (t[k] as string) : null);
	switch (t.type) {
		case "HCaptchaTask":
		case "HCaptchaTaskProxyless": {
			const sitekey = str("websiteKey");
			const pageurl = str("websiteURL");
			return sitekey && pageurl ? { kind: "hcaptcha", sitekey, pageurl } : null;
		}
		case "RecaptchaV2Task":
		case "RecaptchaV2TaskProxyless": {
			const sitekey = str("websiteKey");
			const pageurl = str("websiteURL");
			return sitekey && pageurl ? { kind: "recaptcha", sitekey, pageurl } : null;
		}
		case "ImageToTextTask": {
			const body = str("body");
			return body && isBase64(body) ? { kind: "image", sitekey: null, pageurl: null } : null;
		}
		default:
			return "unsupported";
	}
}

function v2Solution(task: Task): Record<string, string> {
	const answer = task.answer ?? "";
	if (task.kind === "image") return { text: answer };
	// 2captcha puts the token in both fields for hCaptcha so reCAPTCHA-shaped clients keep working.
	return task.kind === "hcaptcha"
		? { gRecaptchaResponse: answer, token: answer, respKey: `E0_${answer.slice(3, 40)}` }
		: { gRecaptchaResponse: answer, token: answer };
}

async function handleV2(sim: CaptchaSim, path: string, ctx: SimContext): Promise<void> {
	const body = parseJsonObject(await ctx.body());
	if (!body) {
		v2Error(ctx, "ERROR_BAD_PARAMETERS");
		return;
	}
	const key = typeof body.clientKey === "string" ? body.clientKey : undefined;
	if (sim.keyError(key) || key === undefined) {
		if (path === "/createTask") sim.counters.rejectedSubmissions++;
		v2Error(ctx, "ERROR_KEY_DOES_NOT_EXIST");
		return;
	}
	const ownTask = (): Task | null => {
		const task = typeof body.taskId === "number" ? sim.tasks.get(body.taskId) : undefined;
		return task && task.key === key ? sim.settle(task) : null;
	};
	switch (path) {
		case "/createTask": {
			const sub = v2Submission(body.task);
			if (sub === "unsupported" || sub === null) {
				sim.counters.rejectedSubmissions++;
				v2Error(ctx, sub === null ? "ERROR_BAD_PARAMETERS" : "ERROR_TASK_NOT_SUPPORTED");
				return;
			}
			const result = sim.submit(key, sub);
			if (result.ok) ctx.json(200, { errorId: 0, taskId: result.task.id });
			else v2Error(ctx, result.error);
			return;
		}
		case "/getTaskResult": {
			sim.counters.polls++;
			const task = ownTask();
			if (!task) v2Error(ctx, "ERROR_NO_SUCH_CAPCHA_ID");
			else if (task.state === "pending") ctx.json(200, { errorId: 0, status: "processing" });
			else if (task.state === "failed") v2Error(ctx, "ERROR_CAPTCHA_UNSOLVABLE");
			else
				ctx.json(200, {
					errorId: 0,
					status: "ready",
					solution: v2Solution(task),
					// The real API sends the cost as a string.
					cost: task.cost.toFixed(5),
					ip: "127.0.0.1",
					createTime: Math.floor(task.createdAt / 1000),
					endTime: Math.floor(task.doneAt / 1000),
					solveCount: 1,
				});
			return;
		}
		case "/getBalance": {
			sim.settleAll();
			ctx.json(200, { errorId: 0, balance: sim.balances.get(key) ?? 0 });
			return;
		}
		case "/reportIncorrect":
		case "/reportCorrect": {
			const task = ownTask();
			if (task?.state !== "ready") {
				v2Error(ctx, "ERROR_NO_SUCH_CAPCHA_ID");
				return;
			}
			task.reported = path === "/reportIncorrect" ? "bad" : "good";
			if (task.reported === "bad") sim.counters.reportsBad++;
			else sim.counters.reportsGood++;
			ctx.json(200, { errorId: 0, status: "success" });
			return;
		}
	}
}

const V2_PATHS = new Set([
	"/createTask",
	"/getTaskResult",
	"/getBalance",
	"/reportIncorrect",
	"/reportCorrect",
]);

/** Route classes for the request counters. */
function classify(url: URL): string {
	const path = url.pathname;
	if (path === "/in.php" || path === "/createTask") return "submit";
	if (path === "/res.php" || V2_PATHS.has(path)) return "poll";
	if (path === "/siteverify") return "siteverify";
	return "other";
}

async function route(sim: CaptchaSim, ctx: SimContext): Promise<void> {
	const { req, url } = ctx;
	const path = url.pathname;
	if (path === "/in.php" || path === "/res.php") {
		if (req.method !== "GET" && req.method !== "POST") throw new HttpError(405, "GET or POST");
		const params = mergeParams(url, req, req.method === "POST" ? await ctx.body() : "");
		if (path === "/in.php") handleIn(sim, params, ctx);
		else handleRes(sim, params, ctx);
		return;
	}
	if (V2_PATHS.has(path)) {
		if (req.method !== "POST") throw new HttpError(405, "POST only");
		await handleV2(sim, path, ctx);
		return;
	}
	if (path === "/siteverify" && req.method === "POST") {
		// hCaptcha-style server-side check, for a site simulator running in another process.
		const params = mergeParams(url, req, await ctx.body());
		const ok = Boolean(params.sitekey && params.response) && sim.verify(params.sitekey!, params.response!);
		ctx.json(200, ok ? { success: true } : { success: false, "error-codes": ["invalid-input-response"] });
		return;
	}
	throw new HttpError(404, `no route ${req.method} ${path}`);
}

function validate(config: CaptchaConfig): void {
	if (config.keys.length === 0) throw new Error("captcha: at least one API key is required");
	for (const key of config.keys) {
		if (!KEY_SHAPE.test(key)) throw new Error("captcha: API keys are 32 letters or digits");
	}
	validateKnobs(config);
	if (!(config.balance >= 0)) throw new Error("captcha: balance must be >= 0");
}

function validateKnobs(k: Partial<CaptchaKnobs>): void {
	if (k.price !== undefined && !(k.price > 0)) throw new Error("captcha: price must be > 0");
	if (k.solveDelayMs !== undefined && !(k.solveDelayMs >= 0))
		throw new Error("captcha: solveDelayMs must be >= 0");
	if (k.unsolvableRate !== undefined && !(k.unsolvableRate >= 0 && k.unsolvableRate <= 1))
		throw new Error("captcha: unsolvableRate must be within 0..1");
	if (k.maxPending !== undefined && !(Number.isInteger(k.maxPending) && k.maxPending >= 0))
		throw new Error("captcha: maxPending must be an integer >= 0");
	if (k.tokenTtlMs !== undefined && !(k.tokenTtlMs > 0)) throw new Error("captcha: tokenTtlMs must be > 0");
}

export type StartCaptchaOptions = Partial<CaptchaConfig> & {
	/** Transport faults (latency, 5xx, 429, malformed JSON) in front of the API. */
	faults?: Partial<FaultKnobs>;
	seed?: number;
};

export async function startCaptcha(options: StartCaptchaOptions = {}): Promise<CaptchaHandle> {
	const { faults: faultKnobs, seed = 1, ...rest } = options;
	const config: CaptchaConfig = { ...defaultCaptchaConfig, ...rest };
	validate(config);
	const sim = new CaptchaSim(config);
	const counters = new RequestCounters();
	const faults = new FaultInjector(faultKnobs, seed);
	const server = await startSimServer({
		name: "captcha",
		host: config.host,
		port: config.port,
		faults,
		counters,
		classify,
		handle: (ctx) => route(sim, ctx),
		control: {
			"GET captcha": () => sim.stats(),
			"POST captcha": ({ body }) => {
				const patch = parseKnobs(body);
				validateKnobs(patch);
				Object.assign(sim.config, patch);
				return { ...sim.config, random: undefined };
			},
			"POST captcha/balance": ({ body }) => {
				const b = (body ?? {}) as { amount?: unknown; key?: unknown };
				const key = typeof b.key === "string" ? b.key : config.keys[0]!;
				if (typeof b.amount !== "number" || !(b.amount >= 0))
					throw new HttpError(400, "amount must be a number >= 0");
				sim.balances.set(key, b.amount);
				return { key, balance: b.amount };
			},
		},
	});
	live.add(sim);
	const firstKey = config.keys[0]!;
	return {
		url: server.url,
		port: server.port,
		key: firstKey,
		server,
		configure(patch) {
			validateKnobs(patch);
			Object.assign(sim.config, patch);
		},
		getBalance(key = firstKey) {
			sim.settleAll();
			return sim.balances.get(key) ?? 0;
		},
		setBalance(amount, key = firstKey) {
			if (!(amount >= 0)) throw new Error("captcha: balance must be >= 0");
			sim.balances.set(key, amount);
		},
		verifyToken: (sitekey, token) => sim.verify(sitekey, token),
		stats: () => sim.stats(),
		async close() {
			live.delete(sim);
			await server.stop();
		},
	};
}

/** Control-route body -> knob patch; only numeric knobs are settable over HTTP. */
function parseKnobs(body: unknown): Partial<CaptchaKnobs> {
	if (body === null || typeof body !== "object") throw new HttpError(400, "expected a JSON object of knobs");
	const patch: Partial<CaptchaKnobs> = {};
	for (const name of ["price", "solveDelayMs", "unsolvableRate", "maxPending", "tokenTtlMs"] as const) {
		const v = (body as Record<string, unknown>)[name];
		if (v === undefined) continue;
		if (typeof v !== "number") throw new HttpError(400, `${name} must be a number`);
		patch[name] = v;
	}
	try {
		validateKnobs(patch);
	} catch (err) {
		throw new HttpError(400, (err as Error).message);
	}
	return patch;
}
