/**
 * Contract tests of the 2captcha simulator (contracts/captcha.md) over real HTTP on loopback: both
 * protocols, the documented error codes, the balance that runs out, and the token registry the MLS
 * site verifies against.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { type CaptchaHandle, startCaptcha, verifyToken } from "../../sandbox/captcha.ts";
import { waitFor } from "../../src/utils/time.ts";

const SITEKEY = "7c1d3f0e-5b2a-4e8f-9a61-3d2c5b4a1e90";
const PAGE = "http://127.0.0.1/mls/x-mls_1/";

let captcha: CaptchaHandle;

type Legacy = { status: number; request: string };
type V2 = {
	errorId: number;
	errorCode?: string;
	taskId?: number;
	status?: string;
	solution?: Record<string, string>;
	cost?: string;
	balance?: number;
};

async function legacy(
	path: "in.php" | "res.php",
	params: Record<string, string>,
	post = false,
): Promise<Legacy> {
	const qs = new URLSearchParams({ json: "1", ...params });
	const res = post
		? await fetch(`${captcha.url}/${path}`, {
				method: "POST",
				headers: { "content-type": "application/x-www-form-urlencoded" },
				body: qs.toString(),
			})
		: await fetch(`${captcha.url}/${path}?${qs}`);
	assert.equal(res.status, 200, "2captcha answers errors with HTTP 200");
	return (await res.json()) as Legacy;
}

async function v2(path: string, body: unknown): Promise<V2> {
	const res = await fetch(`${captcha.url}${path}`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify(body),
	});
	assert.equal(res.status, 200);
	return (await res.json()) as V2;
}

const submitHcaptcha = (key = captcha.key) =>
	legacy("in.php", { key, method: "hcaptcha", sitekey: SITEKEY, pageurl: PAGE });

async function solvedLegacyToken(): Promise<string> {
	const sub = await submitHcaptcha();
	assert.equal(sub.status, 1);
	const done = await waitFor(async () => {
		const r = await legacy("res.php", { key: captcha.key, action: "get", id: sub.request });
		return r.request === "CAPCHA_NOT_READY" ? null : r;
	}, "captcha solved");
	assert.equal(done.status, 1);
	return done.request;
}

before(async () => {
	captcha = await startCaptcha({ solveDelayMs: 0, seed: 7 });
});

after(async () => {
	await captcha.close();
});

beforeEach(() => {
	captcha.configure({ solveDelayMs: 0, unsolvableRate: 0, maxPending: 100, price: 0.00299 });
	captcha.setBalance(5);
});

describe("legacy protocol (in.php / res.php)", () => {
	test("answers CAPCHA_NOT_READY (sic) until solved, then the token", async () => {
		captcha.configure({ solveDelayMs: 3_600_000 });
		const sub = await submitHcaptcha();
		assert.equal(sub.status, 1);
		assert.match(sub.request, /^\d+$/);
		const poll = () => legacy("res.php", { key: captcha.key, action: "get", id: sub.request });
		assert.deepEqual(await poll(), { status: 0, request: "CAPCHA_NOT_READY" });
		assert.deepEqual(await poll(), { status: 0, request: "CAPCHA_NOT_READY" });
		// The delay knob applies to pending tasks, so the test need not wait for a real solve time.
		captcha.configure({ solveDelayMs: 0 });
		const ready = await poll();
		assert.equal(ready.status, 1);
		assert.match(ready.request, /^P1_[\w-]{40,}$/);
	});

	test("accepts POST form bodies, reCAPTCHA and base64 images", async () => {
		const rc = await legacy(
			"in.php",
			{ key: captcha.key, method: "userrecaptcha", googlekey: "6Le-recaptcha-site-key", pageurl: PAGE },
			true,
		);
		assert.equal(rc.status, 1);
		const img = await legacy(
			"in.php",
			{ key: captcha.key, method: "base64", body: Buffer.from("fake png bytes").toString("base64") },
			true,
		);
		assert.equal(img.status, 1);
		const rcAnswer = await legacy("res.php", { key: captcha.key, action: "get", id: rc.request });
		assert.match(rcAnswer.request, /^03A/);
		const imgAnswer = await legacy("res.php", { key: captcha.key, action: "get", id: img.request });
		assert.match(imgAnswer.request, /^[a-z0-9]{6}$/);
	});

	test("without json=1 answers plain text OK|id and bare error codes", async () => {
		const ok = await fetch(
			`${captcha.url}/in.php?${new URLSearchParams({ key: captcha.key, method: "hcaptcha", sitekey: SITEKEY, pageurl: PAGE })}`,
		);
		assert.match(await ok.text(), /^OK\|\d+$/);
		const bad = await fetch(`${captcha.url}/in.php?key=nope&method=hcaptcha`);
		assert.equal(await bad.text(), "ERROR_WRONG_USER_KEY");
	});

	test("key, parameter and id errors", async () => {
		assert.deepEqual(await submitHcaptcha("short"), { status: 0, request: "ERROR_WRONG_USER_KEY" });
		assert.deepEqual(await submitHcaptcha("0".repeat(32)), {
			status: 0,
			request: "ERROR_KEY_DOES_NOT_EXIST",
		});
		assert.deepEqual(await legacy("in.php", { key: captcha.key, method: "hcaptcha", pageurl: PAGE }), {
			status: 0,
			request: "ERROR_BAD_PARAMETERS",
		});
		assert.deepEqual(await legacy("in.php", { key: captcha.key, method: "funcaptcha" }), {
			status: 0,
			request: "ERROR_BAD_PARAMETERS",
		});
		assert.deepEqual(await legacy("res.php", { key: captcha.key, action: "get", id: "999" }), {
			status: 0,
			request: "ERROR_WRONG_CAPTCHA_ID",
		});
	});

	test("the balance runs out: ERROR_ZERO_BALANCE, and getbalance reports it", async () => {
		captcha.setBalance(0.00299 * 2);
		assert.equal((await submitHcaptcha()).status, 1);
		assert.equal((await submitHcaptcha()).status, 1);
		assert.deepEqual(await submitHcaptcha(), { status: 0, request: "ERROR_ZERO_BALANCE" });
		const balance = await legacy("res.php", { key: captcha.key, action: "getbalance" });
		assert.equal(balance.status, 1);
		assert.equal(Number(balance.request), 0);
	});

	test("ERROR_NO_SLOT_AVAILABLE when too many tasks are in progress", async () => {
		captcha.configure({ solveDelayMs: 3_600_000, maxPending: 1 });
		const first = await submitHcaptcha();
		assert.equal(first.status, 1);
		assert.deepEqual(await submitHcaptcha(), { status: 0, request: "ERROR_NO_SLOT_AVAILABLE" });
		captcha.configure({ solveDelayMs: 0 });
		assert.equal((await legacy("res.php", { key: captcha.key, action: "get", id: first.request })).status, 1);
	});

	test("unsolvable tasks answer ERROR_CAPTCHA_UNSOLVABLE and are not charged", async () => {
		captcha.configure({ unsolvableRate: 1 });
		const before = captcha.getBalance();
		const sub = await submitHcaptcha();
		const res = await legacy("res.php", { key: captcha.key, action: "get", id: sub.request });
		assert.deepEqual(res, { status: 0, request: "ERROR_CAPTCHA_UNSOLVABLE" });
		assert.equal(captcha.getBalance(), before);
	});

	test("reportbad / reportgood answer OK_REPORT_RECORDED", async () => {
		const sub = await submitHcaptcha();
		await legacy("res.php", { key: captcha.key, action: "get", id: sub.request });
		for (const action of ["reportbad", "reportgood"]) {
			assert.deepEqual(await legacy("res.php", { key: captcha.key, action, id: sub.request }), {
				status: 1,
				request: "OK_REPORT_RECORDED",
			});
		}
		assert.deepEqual(await legacy("res.php", { key: captcha.key, action: "reportbad", id: "1" }), {
			status: 0,
			request: "ERROR_WRONG_CAPTCHA_ID",
		});
	});
});

describe("JSON API v2", () => {
	test("createTask -> processing -> ready with solution and cost as a string", async () => {
		captcha.configure({ solveDelayMs: 3_600_000 });
		const created = await v2("/createTask", {
			clientKey: captcha.key,
			task: { type: "HCaptchaTaskProxyless", websiteURL: PAGE, websiteKey: SITEKEY },
		});
		assert.equal(created.errorId, 0);
		assert.equal(typeof created.taskId, "number");
		const poll = () => v2("/getTaskResult", { clientKey: captcha.key, taskId: created.taskId });
		assert.deepEqual(await poll(), { errorId: 0, status: "processing" });
		captcha.configure({ solveDelayMs: 0 });
		const ready = await poll();
		assert.equal(ready.errorId, 0);
		assert.equal(ready.status, "ready");
		assert.equal(ready.cost, "0.00299");
		assert.match(ready.solution?.gRecaptchaResponse ?? "", /^P1_/);
		assert.equal(ready.solution?.token, ready.solution?.gRecaptchaResponse);
	});

	test("reCAPTCHA and image tasks", async () => {
		const rc = await v2("/createTask", {
			clientKey: captcha.key,
			task: { type: "RecaptchaV2TaskProxyless", websiteURL: PAGE, websiteKey: "6Le-recaptcha-site-key" },
		});
		const rcResult = await v2("/getTaskResult", { clientKey: captcha.key, taskId: rc.taskId });
		assert.match(rcResult.solution?.gRecaptchaResponse ?? "", /^03A/);
		const img = await v2("/createTask", {
			clientKey: captcha.key,
			task: { type: "ImageToTextTask", body: Buffer.from("png").toString("base64") },
		});
		const imgResult = await v2("/getTaskResult", { clientKey: captcha.key, taskId: img.taskId });
		assert.match(imgResult.solution?.text ?? "", /^[a-z0-9]{6}$/);
	});

	test("errors: bad key, unsupported type, missing fields, unknown task, unsolvable, zero balance", async () => {
		const task = { type: "HCaptchaTaskProxyless", websiteURL: PAGE, websiteKey: SITEKEY };
		assert.equal(
			(await v2("/createTask", { clientKey: "x".repeat(32), task })).errorCode,
			"ERROR_KEY_DOES_NOT_EXIST",
		);
		const unsupported = await v2("/createTask", { clientKey: captcha.key, task: { type: "FunCaptchaTask" } });
		assert.equal(unsupported.errorCode, "ERROR_TASK_NOT_SUPPORTED");
		const missing = await v2("/createTask", {
			clientKey: captcha.key,
			task: { type: "HCaptchaTaskProxyless" },
		});
		assert.equal(missing.errorCode, "ERROR_BAD_PARAMETERS");
		const unknown = await v2("/getTaskResult", { clientKey: captcha.key, taskId: 1 });
		assert.equal(unknown.errorCode, "ERROR_NO_SUCH_CAPCHA_ID");

		captcha.configure({ unsolvableRate: 1 });
		const doomed = await v2("/createTask", { clientKey: captcha.key, task });
		const failed = await v2("/getTaskResult", { clientKey: captcha.key, taskId: doomed.taskId });
		assert.equal(failed.errorId, 12);
		assert.equal(failed.errorCode, "ERROR_CAPTCHA_UNSOLVABLE");

		captcha.setBalance(0);
		const broke = await v2("/createTask", { clientKey: captcha.key, task });
		assert.equal(broke.errorId, 10);
		assert.equal(broke.errorCode, "ERROR_ZERO_BALANCE");
	});

	test("getBalance goes down by the price per solve", async () => {
		captcha.setBalance(1);
		await v2("/createTask", {
			clientKey: captcha.key,
			task: { type: "HCaptchaTaskProxyless", websiteURL: PAGE, websiteKey: SITEKEY },
		});
		const b = await v2("/getBalance", { clientKey: captcha.key });
		assert.equal(b.errorId, 0);
		assert.equal(b.balance, 0.99701);
	});
});

describe("issued tokens", () => {
	test("verify once for their sitekey, in process; made-up and reused tokens do not", async () => {
		const token = await solvedLegacyToken();
		assert.equal(verifyToken("another-sitekey", token), false);
		assert.equal(verifyToken(SITEKEY, "P1_made-up-token"), false);
		assert.equal(verifyToken(SITEKEY, token), true);
		assert.equal(verifyToken(SITEKEY, token), false, "single use");
		const viaHandle = await solvedLegacyToken();
		assert.equal(captcha.verifyToken(SITEKEY, viaHandle), true);
	});

	test("verify over HTTP (/siteverify), single use", async () => {
		const token = await solvedLegacyToken();
		const check = async () => {
			const res = await fetch(`${captcha.url}/siteverify`, {
				method: "POST",
				headers: { "content-type": "application/x-www-form-urlencoded" },
				body: new URLSearchParams({ sitekey: SITEKEY, response: token }).toString(),
			});
			return (await res.json()) as { success: boolean };
		};
		assert.equal((await check()).success, true);
		assert.equal((await check()).success, false);
	});

	test("expire after tokenTtlMs", async () => {
		captcha.configure({ tokenTtlMs: 1 });
		const token = await solvedLegacyToken();
		await waitFor(() => !captcha.verifyToken(SITEKEY, token), "token expiry");
		captcha.configure({ tokenTtlMs: 120_000 });
	});

	test("are counted per sitekey", async () => {
		const before = captcha.stats().bySitekey[SITEKEY] ?? {
			submissions: 0,
			solves: 0,
			verified: 0,
			rejected: 0,
		};
		const token = await solvedLegacyToken();
		captcha.verifyToken(SITEKEY, token);
		captcha.verifyToken(SITEKEY, token);
		const now = captcha.stats().bySitekey[SITEKEY]!;
		assert.equal(now.submissions, before.submissions + 1);
		assert.equal(now.solves, before.solves + 1);
		assert.equal(now.verified, before.verified + 1);
		assert.equal(now.rejected, before.rejected + 1);
	});
});

describe("shared simulator skeleton", () => {
	test("counters and fault knobs apply to the captcha API", async () => {
		const before = captcha.server.counters.total({ kind: "submit" });
		await submitHcaptcha();
		assert.equal(captcha.server.counters.total({ kind: "submit" }), before + 1);
		captcha.server.faults.set({ errorRate: 1, errorStatuses: [503] });
		try {
			const res = await fetch(`${captcha.url}/res.php?key=${captcha.key}&action=getbalance`);
			assert.equal(res.status, 503);
			await res.arrayBuffer();
		} finally {
			captcha.server.faults.reset();
		}
	});
});
