/**
 * Every action of the services below validates its params with rules declared in a contract
 * (src/contracts/<service>.ts, beside the params type), or with the source contract's rules
 * (src/jobs/source-contract.ts): no rule is written inline in a service. Checked by identity: each
 * rule object of an action's `params` is one a contract exports.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { describe, test } from "node:test";
import { loadConfig } from "../../src/config/index.ts";
import * as sourceContract from "../../src/jobs/source-contract.ts";
import type { ServiceFactory } from "../../src/node/context.ts";
import { MemorySharedState } from "../../src/shared-state/index.ts";

const SERVICES = ["proxy-pool", "browser-pool", "mls", "maricopa", "llm", "photos", "scheduler"];

/**
 * Rules built on ZIP_PARAM (src/jobs/plan.ts), which sits above the contracts' layer: they move to
 * src/contracts/llm.ts when the ZIP rule moves down to the contracts.
 */
const KNOWN_INLINE = ["llm.enrichPending: zip", "llm.enrichPending: zips"];

const contractsDir = new URL("../../src/contracts/", import.meta.url);

/** Every rule of every params schema the contracts export (objects with rules as values). */
async function contractRules(): Promise<Set<unknown>> {
	const rules = new Set<unknown>();
	const modules: Record<string, unknown>[] = [sourceContract];
	for (const file of readdirSync(contractsDir).filter((f) => f.endsWith(".ts")))
		modules.push(await import(new URL(file, contractsDir).href));
	for (const mod of modules) {
		for (const [name, value] of Object.entries(mod)) {
			if (!/Params$/.test(name) || typeof value !== "object" || value === null) continue;
			for (const rule of Object.values(value)) rules.add(rule);
		}
	}
	return rules;
}

describe("action params come from the contracts", () => {
	test("no service of the list writes a params rule inline", async () => {
		const rules = await contractRules();
		const config = loadConfig({});
		const state = new MemorySharedState();
		const inline: string[] = [];
		let checked = 0;
		for (const name of SERVICES) {
			const factory = (await import(`../../services/${name}.service.ts`)).default as ServiceFactory;
			const made = factory({ config, state });
			for (const schema of Array.isArray(made) ? made : [made]) {
				const actions = (schema.actions ?? {}) as Record<string, { params?: Record<string, unknown> }>;
				for (const [action, def] of Object.entries(actions)) {
					if (typeof def !== "object" || !def.params) continue;
					for (const [param, rule] of Object.entries(def.params)) {
						checked++;
						const where = `${schema.name}.${action}: ${param}`;
						if (!rules.has(rule) && !KNOWN_INLINE.includes(where)) inline.push(where);
					}
				}
			}
		}
		assert.ok(checked > 20, `only ${checked} params seen: the walk over the actions is broken`);
		assert.deepEqual(inline, [], "declare these rules in the service's contract (src/contracts/)");
	});
});
