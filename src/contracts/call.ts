/**
 * Typed calls between services. Each `src/contracts/<service>.ts` lists its actions as
 * `{ params, result }` pairs and exports a call helper made here, so a caller writes
 * `callStore(ctx, "properties.get", { key })` and gets the action's result type — no cast at the
 * call site, and a renamed action or a changed parameter is a type error where it is used.
 */
import type { CallingOptions } from "moleculer";

/** What a call needs of a Moleculer Context or ServiceBroker (both fit). */
export interface Caller {
	call<T, P>(action: string, params: P, opts?: CallingOptions): Promise<T>;
}

/** An action's parameters and answer. */
export interface Action<P, R> {
	params: P;
	result: R;
}

// biome-ignore lint/suspicious/noExplicitAny: a catalog of actions of any shape
export type ActionCatalog = Record<string, Action<any, any>>;

export type ParamsOf<C extends ActionCatalog, A extends keyof C> = C[A]["params"];
export type ResultOf<C extends ActionCatalog, A extends keyof C> = C[A]["result"];

/** The call helper of one service's catalog. */
export function callerOf<C extends ActionCatalog>() {
	return function call<A extends keyof C & string>(
		caller: Caller,
		action: A,
		params: ParamsOf<C, A>,
		opts?: CallingOptions,
	): Promise<ResultOf<C, A>> {
		return caller.call<ResultOf<C, A>, ParamsOf<C, A>>(action, params, opts);
	};
}
