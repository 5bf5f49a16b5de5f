/**
 * Moleculer's circuit breaker, judged by callers only.
 *
 * The built-in middleware wraps local actions too, so the node that serves an action keeps a breaker
 * over its own handler: a burst of slow answers (a store under load, a database restarting) trips it
 * and sets the local endpoint unavailable. From then on every request the node receives is refused
 * with "Service '…' is not available locally" before it reaches the handler, so no call can succeed and
 * close the breaker again; the callers' breakers stay open and a job waits on a node that is healthy
 * (the chaos suite's Redis and store rows hung this way). Callers already keep a breaker per endpoint
 * (`remoteAction`), and the cluster breaker shares their verdicts, so a request that comes from another
 * node skips the serving side's breaker. Calls a node makes to itself keep it.
 */
import moleculer, { type Middleware, type Service, type ServiceBroker } from "moleculer";

type Handler = Parameters<NonNullable<Middleware["localAction"]>>[0];
type Action = Parameters<NonNullable<Middleware["localAction"]>>[1];
type BuiltInBreaker = Required<Pick<Middleware, "localAction" | "remoteAction">> & Middleware;

export function callerCircuitBreakerMiddleware(): Middleware {
	let builtIn: BuiltInBreaker | undefined;
	// Created on first use: the broker wraps its internal services' actions before `created` runs.
	const breakerOf = (broker: ServiceBroker): BuiltInBreaker => {
		if (!builtIn) {
			const factory: (b: ServiceBroker) => BuiltInBreaker = Reflect.get(
				moleculer,
				"Middlewares",
			).CircuitBreaker;
			builtIn = factory.call(broker, broker);
		}
		return builtIn;
	};
	return {
		name: "CircuitBreaker",
		created(broker) {
			breakerOf(broker).created?.(broker);
		},
		localAction(this: ServiceBroker, handler: Handler, action: Action): Handler {
			const judged = breakerOf(this).localAction.call(this, handler, action);
			if (judged === handler) return handler;
			const nodeID = this.nodeID;
			return function (this: Service, ctx) {
				return ctx.nodeID && ctx.nodeID !== nodeID ? handler.call(this, ctx) : judged.call(this, ctx);
			};
		},
		remoteAction(this: ServiceBroker, handler: Handler, action: Action): Handler {
			return breakerOf(this).remoteAction.call(this, handler, action);
		},
		stopped(broker) {
			return breakerOf(broker).stopped?.(broker) ?? Promise.resolve();
		},
	};
}
