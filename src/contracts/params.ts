/**
 * Actions' params schemas (fastest-validator, as Moleculer validates them) are declared in the
 * contract of their service (`src/contracts/<service>.ts`), beside the params type they validate:
 * `export const fooParams = { ... } as const satisfies ParamsSchema<FooParams>`, and the service's
 * action says `params: fooParams` with `ctx: Context<FooParams>`. `ParamsSchema` makes the two agree
 * on the parameters' names: one rule per parameter, none missing, none extra.
 *
 * The source contract's rules (zip, page, job and task ids) live with it in
 * src/jobs/source-contract.ts; a source's action composes them with its contract's own.
 */
import type { ActionParamTypes } from "moleculer";

/** A params schema for `P`: one validation rule per parameter of `P`, optional ones included. */
export type ParamsSchema<P> = { readonly [K in keyof P]-?: ActionParamTypes };

/** `force`: do the work again even where it looks done (optional; "true" converted). */
export interface ForceParams {
	force?: boolean;
}

export const forceParams = {
	force: { type: "boolean", optional: true, convert: true },
} as const satisfies ParamsSchema<ForceParams>;
