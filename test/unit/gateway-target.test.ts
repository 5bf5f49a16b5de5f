import assert from "node:assert/strict";
import { test } from "node:test";
import { httpTargetOf } from "../../src/proxy/gateway-http.ts";

// The gateway reads a request's target without a URL object where it can: it must agree with URL.
test("the gateway reads an absolute-form target as URL does", () => {
	const urls = [
		"http://127.0.0.1:4000/bench",
		"http://Example.COM/x?y",
		"http://example.com:80/",
		"http://example.com:080/",
		"http://ex.com:8080",
		"http://ex-a.b-c.io#f",
		"http://ex.com:/",
		"http://ex.com:0/",
		"http://010.0.0.1/",
		"http://0x7f.1/",
		"http://1.2/",
		"http://user:pw@ex.com/",
		"http://[::1]:81/",
		"http://ex.com.:81/",
		"https://x.com/",
		"http://bücher.de/",
	];
	for (const url of urls) {
		const u = new URL(url);
		assert.deepEqual(httpTargetOf(url), { hostname: u.hostname, host: u.host }, url);
	}
	for (const bad of ["http://a.0x1/", "http://ex.com:99999/", "http://256.1.1.1/", "/relative", ""])
		assert.equal(httpTargetOf(bad), null, bad);
});
