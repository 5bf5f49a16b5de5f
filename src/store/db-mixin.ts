/**
 * moleculer-db's mixin, as the store's services take it. At run time its default export is a
 * service schema (`{ name, settings, actions, methods, ... }`); its typings declare a class (to
 * `extends`), which a mixin list does not take. The export is checked once here for what it is.
 */
import type { ServiceSchema } from "moleculer";
import DbService, { type DbAdapter, type DbServiceSettings } from "moleculer-db";

function isServiceSchema(value: unknown): value is Partial<ServiceSchema> {
	return typeof value === "object" && value !== null && "actions" in value && "methods" in value;
}

const exported: unknown = DbService;
if (!isServiceSchema(exported)) throw new Error("moleculer-db's default export is not a service schema");

/** moleculer-db's service mixin (actions list/count/find/get..., methods, adapter lifecycle). */
export const dbMixin: Partial<ServiceSchema> = exported;

/** A moleculer-db service's schema: its adapter, and the hook run once that adapter connected. */
export type DbServiceSchema = ServiceSchema<DbServiceSettings> & {
	adapter: DbAdapter;
	/** `this.adapter` is the service's own (Moleculer's schema merge may copy the one given). */
	afterConnected(this: { adapter: DbAdapter }): Promise<void>;
};
