/** Generic helpers of src/utils. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { chunksOf } from "../../src/utils/chunks.ts";

describe("chunksOf", () => {
	test("cuts by count and by JSON size; an oversized item travels alone", () => {
		assert.deepEqual(chunksOf([1, 2, 3, 4, 5], 2, 1000), [[1, 2], [3, 4], [5]]);
		const big = "x".repeat(100);
		const chunks = chunksOf(["a", big, "b", "c"], 10, 50);
		assert.deepEqual(chunks, [["a"], [big], ["b", "c"]]);
		assert.deepEqual(chunksOf([], 3, 10), []);
	});
});
