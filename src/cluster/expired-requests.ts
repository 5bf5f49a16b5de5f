/**
 * Requests whose caller has already given up are not started.
 *
 * A call waits in the bulkhead's queue when its action is busy. Moleculer's timeout answers the
 * caller when the time is up, but the queued handler still runs later, for nobody: under overload
 * (a store behind on its database) the queue fills with work whose callers have timed out and
 * retried, and the node never catches up. This middleware sits inside the bulkhead, so it runs when a
 * queued call is finally let through, and refuses it (retryable, small) if its time has passed. The
 * timeout middleware, outside the bulkhead, starts the clock when the request arrives.
 */
import moleculer, { type Context, type Middleware, type Service } from "moleculer";

type Handler = Parameters<NonNullable<Middleware["localAction"]>>[0];

function elapsedMs(start: [number, number]): number {
	const [s, ns] = process.hrtime(start);
	return s * 1000 + ns / 1e6;
}

export function expiredRequestsMiddleware(): Middleware {
	return {
		name: "ExpiredRequests",
		localAction(next: Handler): Handler {
			return function (this: Service, ctx: Context) {
				const timeout = ctx.options.timeout ?? 0;
				const started = ctx.startHrTime as [number, number] | null;
				if (timeout > 0 && started && elapsedMs(started) >= timeout) {
					return Promise.reject(
						new moleculer.Errors.MoleculerRetryableError(
							`'${ctx.action?.name}' waited past its caller's ${timeout} ms in the queue; not started`,
							503,
							"REQUEST_EXPIRED",
						),
					);
				}
				return next.call(this, ctx);
			};
		},
	};
}
