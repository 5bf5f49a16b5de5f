/**
 * A failed captcha solve is answered over the bus by the error taxonomy (toBusError), as the
 * proxy-pool service answered it with its own translation before: spent budgets 429 and refused
 * challenges 422 (client errors, which trip no breaker), the rest 502; none retryable.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import moleculer from "moleculer";
import { errorKindOf, toBusError } from "../../src/core/errors.ts";
import { CaptchaError } from "../../src/proxy/captcha.ts";

const { MoleculerClientError, MoleculerError } = moleculer.Errors;

describe("captcha errors on the bus", () => {
	const cases: [code: string, status: number, client: boolean, kind: string][] = [
		["ERROR_BUDGET_EXCEEDED", 429, true, "transient"],
		["ERROR_ZERO_BALANCE", 429, true, "transient"],
		["ERROR_BAD_PARAMETERS", 422, true, "permanent"],
		["ERROR_WRONG_CAPTCHA_ID", 422, true, "permanent"],
		["ERROR_NO_SUCH_CAPCHA_ID", 422, true, "permanent"],
		["ERROR_CAPTCHA_UNSOLVABLE", 422, true, "permanent"],
		["ERROR_TIMEOUT", 502, false, "upstream"],
		["ERROR_KEY_DOES_NOT_EXIST", 502, false, "upstream"],
	];
	for (const [code, status, client, kind] of cases) {
		test(`${code}: ${status}, ${kind}`, () => {
			const bus = toBusError(new CaptchaError(code, `${code}: the key sk-secret is wrong`), "proxy-pool");
			assert.ok(bus instanceof (client ? MoleculerClientError : MoleculerError));
			const e = bus as InstanceType<typeof MoleculerError>;
			assert.equal(e.code, status);
			assert.equal(e.type, code);
			assert.equal(e.retryable, false);
			assert.equal(errorKindOf(bus), kind);
		});
	}
});
