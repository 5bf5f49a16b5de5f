/** The in-memory state never shares a stored value with a caller, whichever way it copies it. */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { MemorySharedState } from "../../src/shared-state/index.ts";

describe("memory state copies", () => {
	const state = new MemorySharedState();
	after(() => state.close());

	test("a flat record: neither the written nor a read object reaches the stored one", async () => {
		const written = { proxyId: "a", slotKey: null, at: 1, n: undefined as number | undefined };
		await state.set("k:flat", written);
		written.proxyId = "changed";
		const read = (await state.get<typeof written>("k:flat"))!;
		assert.deepEqual(read, { proxyId: "a", slotKey: null, at: 1, n: undefined });
		assert.ok("n" in read, "an own undefined field is kept, as structuredClone keeps it");
		read.at = 2;
		const [again] = await state.getMany<typeof written>(["k:flat"]);
		assert.equal(again!.at, 1);
		assert.notEqual(again, read);
	});

	test("nested values, arrays, dates and an own __proto__ key are copied as structuredClone copies", async () => {
		const nested = { a: { b: [1, 2] }, when: new Date(5) };
		await state.set("k:nested", nested);
		nested.a.b.push(3);
		const read = (await state.get<typeof nested>("k:nested"))!;
		assert.deepEqual(read.a.b, [1, 2]);
		assert.ok(read.when instanceof Date);
		read.a.b.push(4);
		assert.deepEqual((await state.get<typeof nested>("k:nested"))!.a.b, [1, 2]);

		const odd = JSON.parse('{"__proto__": 1, "x": 2}') as Record<string, number>;
		await state.set("k:proto", odd);
		const back = (await state.get<Record<string, number>>("k:proto"))!;
		assert.ok(Object.hasOwn(back, "__proto__"));
		assert.equal(Object.getPrototypeOf(back), Object.prototype);

		const bare = Object.assign(Object.create(null) as Record<string, number>, { y: 1 });
		assert.equal(await state.setIfAbsent("k:bare", bare), true);
		bare.y = 2;
		assert.deepEqual(await state.get("k:bare"), { y: 1 });
		await assert.rejects(state.set("k:fn", { f: () => 1 }), /could not be cloned/);
	});
});
