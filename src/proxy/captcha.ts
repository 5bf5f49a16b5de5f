/**
 * 2captcha client (legacy in.php/res.php and JSON API v2, base URL configurable so the same code
 * talks to the sandbox) and a cluster-wide solver around it: one solve per challenge however many
 * callers ask at once (on this node or any other), a daily cost budget shared by the cluster, a
 * timeout, and reports of bad tokens.
 */
import { createHash } from "node:crypto";
import type {
	CaptchaChallenge,
	CaptchaKind,
	CaptchaSolution,
	SolveCaptchaResult,
} from "../contracts/proxy-pool.ts";
import { type ErrorKind, SaguaroError } from "../core/errors.ts";
import { type HttpResponse, httpRequest } from "../core/http.ts";
import type { SharedState } from "../shared-state/index.ts";
import { sleep } from "../utils/time.ts";

export type { CaptchaChallenge, CaptchaKind, CaptchaSolution };

export type CaptchaProtocol = "legacy" | "v2";

/** 2captcha's answers that no retry of the same request changes (bad input, an unknown id). */
const CAPTCHA_PERMANENT = new Set([
	"ERROR_BAD_PARAMETERS",
	"ERROR_WRONG_CAPTCHA_ID",
	"ERROR_NO_SUCH_CAPCHA_ID",
	"ERROR_CAPTCHA_UNSOLVABLE",
]);
/** Out of money (ours today, or the account's): later, once the budget or the balance is back. */
const CAPTCHA_OUT_OF_BUDGET = new Set(["ERROR_BUDGET_EXCEEDED", "ERROR_ZERO_BALANCE"]);

/**
 * A solve that failed, typed by 2captcha's error code (`type`: ERROR_ZERO_BALANCE, ...), which is
 * also the bus error's type. Its kind in the taxonomy (src/core/errors.ts) is what the code means:
 * out of budget is transient (429), a refused or unsolvable challenge permanent (422), anything else
 * the solver failing (upstream, 502); none is retried by the bus.
 */
export class CaptchaError extends SaguaroError {
	constructor(captchaCode: string, message = captchaCode) {
		const [kind, code]: [ErrorKind, number] = CAPTCHA_OUT_OF_BUDGET.has(captchaCode)
			? ["transient", 429]
			: CAPTCHA_PERMANENT.has(captchaCode)
				? ["permanent", 422]
				: ["upstream", 502];
		super(kind, message, { type: captchaCode, code, retryable: false });
	}
}

export const DEFAULT_CAPTCHA_BASE_URLS: Record<CaptchaProtocol, string> = {
	legacy: "https://2captcha.com",
	v2: "https://api.2captcha.com",
};

export interface TwoCaptchaOptions {
	baseUrl: string;
	key: string;
	protocol: CaptchaProtocol;
	/** Time between result polls (2captcha asks for about 5 s). */
	pollIntervalMs: number;
	/** Cost assumed when the API does not report one (legacy protocol). */
	priceUsd: number;
	httpTimeoutMs?: number;
}

type Poll = { status: "pending" } | { status: "ready"; token: string; costUsd: number | null };

export class TwoCaptchaClient {
	readonly options: TwoCaptchaOptions;
	readonly #base: string;

	constructor(options: TwoCaptchaOptions) {
		this.options = options;
		this.#base = options.baseUrl.replace(/\/+$/, "");
	}

	async submit(ch: CaptchaChallenge): Promise<string> {
		validateChallenge(ch);
		if (this.options.protocol === "legacy") {
			const params: Record<string, string> = { key: this.options.key, json: "1" };
			if (ch.type === "recaptcha")
				Object.assign(params, { method: "userrecaptcha", googlekey: ch.sitekey!, pageurl: ch.pageurl! });
			else if (ch.type === "hcaptcha")
				Object.assign(params, { method: "hcaptcha", sitekey: ch.sitekey!, pageurl: ch.pageurl! });
			else Object.assign(params, { method: "base64", body: ch.body! });
			const r = await this.#legacy("/in.php", params, "POST");
			if (r.status !== 1) throw new CaptchaError(r.request);
			return r.request;
		}
		const task =
			ch.type === "image"
				? { type: "ImageToTextTask", body: ch.body }
				: {
						type: ch.type === "hcaptcha" ? "HCaptchaTaskProxyless" : "RecaptchaV2TaskProxyless",
						websiteURL: ch.pageurl,
						websiteKey: ch.sitekey,
					};
		const r = await this.#v2("/createTask", { task });
		const id = r.taskId;
		if (typeof id !== "number" && typeof id !== "string")
			throw new CaptchaError("ERROR_BAD_ANSWER", "createTask answered without taskId");
		return String(id);
	}

	async poll(id: string): Promise<Poll> {
		if (this.options.protocol === "legacy") {
			const r = await this.#legacy(
				"/res.php",
				{ key: this.options.key, action: "get", id, json: "1" },
				"GET",
			);
			if (r.status === 1) return { status: "ready", token: r.request, costUsd: null };
			if (r.request === "CAPCHA_NOT_READY") return { status: "pending" };
			throw new CaptchaError(r.request);
		}
		const r = await this.#v2("/getTaskResult", { taskId: numericId(id) });
		if (r.status === "processing") return { status: "pending" };
		if (r.status !== "ready")
			throw new CaptchaError("ERROR_BAD_ANSWER", `unexpected task status '${String(r.status)}'`);
		const solution = (r.solution ?? {}) as Record<string, unknown>;
		const token = solution.gRecaptchaResponse ?? solution.token ?? solution.text;
		if (typeof token !== "string" || token === "")
			throw new CaptchaError("ERROR_BAD_ANSWER", "ready task without a token");
		const cost = typeof r.cost === "string" || typeof r.cost === "number" ? Number(r.cost) : Number.NaN;
		return { status: "ready", token, costUsd: Number.isFinite(cost) ? cost : null };
	}

	/** Submit and poll until ready, `timeoutMs` passes or `signal` aborts. */
	async solve(ch: CaptchaChallenge, timeoutMs: number, signal?: AbortSignal): Promise<CaptchaSolution> {
		const deadline = Date.now() + timeoutMs;
		let id: string | null = null;
		while (id === null) {
			try {
				id = await this.submit(ch);
			} catch (err) {
				// No worker free right now: 2captcha asks to retry the submission shortly.
				if (
					!(err instanceof CaptchaError && err.type === "ERROR_NO_SLOT_AVAILABLE") ||
					Date.now() + this.options.pollIntervalMs > deadline
				)
					throw err;
				await sleep(this.options.pollIntervalMs, signal);
			}
		}
		while (Date.now() < deadline) {
			await sleep(Math.min(this.options.pollIntervalMs, Math.max(0, deadline - Date.now())), signal);
			const r = await this.poll(id);
			if (r.status === "ready") return { id, token: r.token, costUsd: r.costUsd ?? this.options.priceUsd };
		}
		throw new CaptchaError("ERROR_TIMEOUT", `captcha ${id} not solved within ${timeoutMs} ms`);
	}

	/** Tell 2captcha a token was rejected by the site (refunds it) or accepted. */
	async report(id: string, correct: boolean): Promise<void> {
		if (this.options.protocol === "legacy") {
			const r = await this.#legacy(
				"/res.php",
				{ key: this.options.key, action: correct ? "reportgood" : "reportbad", id, json: "1" },
				"GET",
			);
			if (r.request !== "OK_REPORT_RECORDED") throw new CaptchaError(r.request);
			return;
		}
		await this.#v2(correct ? "/reportCorrect" : "/reportIncorrect", { taskId: numericId(id) });
	}

	async balance(): Promise<number> {
		if (this.options.protocol === "legacy") {
			const r = await this.#legacy(
				"/res.php",
				{ key: this.options.key, action: "getbalance", json: "1" },
				"GET",
			);
			const n = Number(r.request);
			if (r.status !== 1 || !Number.isFinite(n))
				throw new CaptchaError(r.status === 1 ? "ERROR_BAD_ANSWER" : r.request);
			return n;
		}
		const r = await this.#v2("/getBalance", {});
		if (typeof r.balance !== "number")
			throw new CaptchaError("ERROR_BAD_ANSWER", "getBalance answered without balance");
		return r.balance;
	}

	async #http(
		path: string,
		init: { method: "GET" | "POST"; body?: string; headers?: Record<string, string> },
	): Promise<unknown> {
		let res: HttpResponse;
		try {
			res = await httpRequest(`${this.#base}${path}`, {
				...init,
				timeoutMs: this.options.httpTimeoutMs ?? 30_000,
				maxBytes: 1024 * 1024,
			});
		} catch (err) {
			// The URL may carry the key (legacy GET): report the path only.
			throw new CaptchaError("ERROR_NETWORK", `captcha API ${path} unreachable: ${(err as Error).name}`);
		}
		if (res.status < 200 || res.status >= 300)
			throw new CaptchaError("ERROR_HTTP", `captcha API ${path} answered HTTP ${res.status}`);
		try {
			return JSON.parse(res.body);
		} catch {
			throw new CaptchaError("ERROR_BAD_ANSWER", `captcha API ${path} answered non-JSON`);
		}
	}

	async #legacy(
		path: string,
		params: Record<string, string>,
		method: "GET" | "POST",
	): Promise<{ status: number; request: string }> {
		const query = new URLSearchParams(params).toString();
		const body =
			method === "GET"
				? await this.#http(`${path}?${query}`, { method })
				: await this.#http(path, {
						method,
						body: query,
						headers: { "content-type": "application/x-www-form-urlencoded" },
					});
		const b = body as { status?: unknown; request?: unknown } | null;
		if (!b || typeof b !== "object" || (b.status !== 0 && b.status !== 1) || typeof b.request !== "string") {
			throw new CaptchaError("ERROR_BAD_ANSWER", `captcha API ${path} answered an unexpected shape`);
		}
		return { status: b.status, request: b.request };
	}

	async #v2(path: string, payload: Record<string, unknown>): Promise<Record<string, unknown>> {
		const body = await this.#http(path, {
			method: "POST",
			body: JSON.stringify({ clientKey: this.options.key, ...payload }),
			headers: { "content-type": "application/json" },
		});
		const b = body as Record<string, unknown> | null;
		if (!b || typeof b !== "object" || typeof b.errorId !== "number") {
			throw new CaptchaError("ERROR_BAD_ANSWER", `captcha API ${path} answered an unexpected shape`);
		}
		if (b.errorId !== 0) {
			const code = typeof b.errorCode === "string" ? b.errorCode : `ERROR_ID_${b.errorId}`;
			throw new CaptchaError(
				code,
				typeof b.errorDescription === "string" ? `${code}: ${b.errorDescription}` : code,
			);
		}
		return b;
	}
}

function numericId(id: string): number | string {
	return /^\d+$/.test(id) && Number.isSafeInteger(Number(id)) ? Number(id) : id;
}

export function validateChallenge(ch: CaptchaChallenge): void {
	if (ch.type === "image") {
		if (!ch.body) throw new CaptchaError("ERROR_BAD_PARAMETERS", "an image captcha needs body (base64)");
		return;
	}
	if (!ch.sitekey || !ch.pageurl)
		throw new CaptchaError("ERROR_BAD_PARAMETERS", `a ${ch.type} captcha needs sitekey and pageurl`);
}

/** Identity of a challenge: the same site key on the same page is the same captcha. */
export function challengeKey(ch: CaptchaChallenge): string {
	const basis = ch.type === "image" ? `image|${ch.body}` : `${ch.type}|${ch.sitekey}|${ch.pageurl}`;
	return createHash("sha256").update(basis).digest("hex").slice(0, 32);
}

export interface SolverOptions {
	/** USD per UTC day for the whole cluster; 0 = no solving at all. */
	budgetUsdPerDay: number;
	timeoutMs: number;
	/** Who holds an in-flight solve (shown to waiters). */
	nodeId: string;
	/** How long a solved token is handed to late joiners of the same challenge. */
	resultTtlMs?: number;
	now?: () => number;
}

export interface SolverEvents {
	onSolved?(r: CaptchaSolution, ch: CaptchaChallenge): void;
	onFailed?(code: string): void;
	onBudgetRefused?(): void;
}

const MICRO = 1_000_000;
const C = "captcha:";

/** Cluster-wide deduplicating, budgeted solver. */
export class CaptchaSolver {
	readonly client: TwoCaptchaClient;
	readonly state: SharedState;
	readonly options: SolverOptions;
	readonly events: SolverEvents;
	readonly #inflight = new Map<string, Promise<SolveCaptchaResult>>();
	readonly #abort = new AbortController();

	constructor(
		client: TwoCaptchaClient,
		state: SharedState,
		options: SolverOptions,
		events: SolverEvents = {},
	) {
		this.client = client;
		this.state = state;
		this.options = options;
		this.events = events;
	}

	solve(ch: CaptchaChallenge): Promise<SolveCaptchaResult> {
		validateChallenge(ch);
		const key = challengeKey(ch);
		const local = this.#inflight.get(key);
		if (local) return local.then((r) => ({ ...r, shared: true }));
		const p = this.#solveClusterWide(key, ch).finally(() => this.#inflight.delete(key));
		this.#inflight.set(key, p);
		return p;
	}

	async #solveClusterWide(key: string, ch: CaptchaChallenge): Promise<SolveCaptchaResult> {
		const deadline = this.#now() + this.options.timeoutMs;
		while (this.#now() < deadline) {
			const done = await this.state.get<CaptchaSolution>(`${C}result:${key}`);
			if (done) return { ...done, shared: true };
			const ttl = this.options.timeoutMs + 10_000;
			if (await this.state.setIfAbsent(`${C}inflight:${key}`, this.options.nodeId, ttl)) {
				try {
					const r = await this.#paidSolve(ch, Math.max(1000, deadline - this.#now()));
					await this.state.set(`${C}result:${key}`, r, this.options.resultTtlMs ?? 30_000);
					return { ...r, shared: false };
				} finally {
					await this.state.del(`${C}inflight:${key}`);
				}
			}
			// Another node is solving it: wait for its result (or for its claim to go away).
			await sleep(Math.min(250, Math.max(10, deadline - this.#now())), this.#abort.signal);
		}
		this.events.onFailed?.("ERROR_TIMEOUT");
		throw new CaptchaError("ERROR_TIMEOUT", `captcha not solved within ${this.options.timeoutMs} ms`);
	}

	async #paidSolve(ch: CaptchaChallenge, timeoutMs: number): Promise<CaptchaSolution> {
		const spendKey = this.spendKey();
		const estimate = Math.round(this.client.options.priceUsd * MICRO);
		// Reserve the estimate first so concurrent solves cannot overspend together.
		const after = await this.state.incr(spendKey, estimate, 2 * 86_400_000);
		if (after > this.options.budgetUsdPerDay * MICRO) {
			await this.state.incr(spendKey, -estimate);
			this.events.onBudgetRefused?.();
			throw new CaptchaError(
				"ERROR_BUDGET_EXCEEDED",
				`daily captcha budget of $${this.options.budgetUsdPerDay} reached (spent $${((after - estimate) / MICRO).toFixed(5)})`,
			);
		}
		try {
			const r = await this.client.solve(ch, timeoutMs, this.#abort.signal);
			const actual = Math.round(r.costUsd * MICRO);
			if (actual !== estimate) await this.state.incr(spendKey, actual - estimate);
			this.events.onSolved?.(r, ch);
			return r;
		} catch (err) {
			// Unsolved captchas are not charged by 2captcha: give the reservation back.
			await this.state.incr(spendKey, -estimate);
			this.events.onFailed?.(err instanceof CaptchaError ? err.type : "ERROR_UNKNOWN");
			throw err;
		}
	}

	/** USD spent today by the whole cluster. */
	async spentToday(): Promise<number> {
		return (await this.state.incr(this.spendKey(), 0, 2 * 86_400_000)) / MICRO;
	}

	spendKey(): string {
		return `${C}spend:${new Date(this.#now()).toISOString().slice(0, 10)}`;
	}

	async report(id: string, correct: boolean): Promise<void> {
		await this.client.report(id, correct);
	}

	/** Ends waits and polls (node shutdown). */
	close(): void {
		this.#abort.abort(new CaptchaError("ERROR_STOPPED", "captcha solver stopped"));
	}

	#now(): number {
		return (this.options.now ?? Date.now)();
	}
}
