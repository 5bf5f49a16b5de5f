import type { ServiceSchema } from "moleculer";
import type { Config } from "../config/index.ts";
import type { SharedState } from "../shared-state/index.ts";

/** What every service of a node is built with: the validated config and the cluster-wide state. */
export interface NodeContext {
	config: Config;
	state: SharedState;
}

/**
 * `services/<name>.service.ts` default-exports a factory. A role may bring several Moleculer
 * services (the store brings `raw` and `properties`), hence the array form.
 */
export type ServiceFactory = (ctx: NodeContext) => AnyServiceSchema | AnyServiceSchema[];

/**
 * A schema typed for its own `this` (settings, methods, variables: `ServiceSchema<S, M, V>`), as
 * `broker.createService` takes it: a service may type what its mixins give it.
 */
// biome-ignore lint/suspicious/noExplicitAny: Moleculer's own createService signature
export type AnyServiceSchema = ServiceSchema<any, any, any>;
