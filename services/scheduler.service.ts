/**
 * Scheduler: the configured schedules (SCHEDULES), each tick fired once per cluster however many
 * nodes run this service. Logic in src/scheduler/; this file wires it to the broker.
 */
import type { Context, ServiceBroker, ServiceSchema } from "moleculer";
import { type ScheduleNameParams, scheduleNameParams } from "../src/contracts/scheduler.ts";
import type { ServiceFactory } from "../src/node/context.ts";
import { Scheduler } from "../src/scheduler/scheduler.ts";

const schedulerService: ServiceFactory = ({ config, state }) => {
	const jobs = config.jobs;
	let engine: Scheduler;
	const schema: ServiceSchema = {
		name: "scheduler",
		actions: {
			list: {
				handler() {
					return engine.list();
				},
			},
			trigger: {
				params: scheduleNameParams,
				handler(ctx: Context<ScheduleNameParams>) {
					return engine.trigger(ctx.params.name);
				},
			},
			pause: {
				params: scheduleNameParams,
				handler(ctx: Context<ScheduleNameParams>) {
					return engine.pause(ctx.params.name);
				},
			},
			resume: {
				params: scheduleNameParams,
				handler(ctx: Context<ScheduleNameParams>) {
					return engine.resume(ctx.params.name);
				},
			},
		},
		created(this: { broker: ServiceBroker; logger: ServiceBroker["logger"] }) {
			const broker = this.broker;
			engine = new Scheduler({
				state,
				nodeId: broker.nodeID,
				schedules: jobs.schedules,
				timezone: jobs.timezone,
				graceMs: jobs.missedGraceMs,
				roundMs: jobs.roundMs,
				// Longer than a fired call may take, so a slow fire is not claimed twice.
				claimTtlMs: Math.max(60_000, config.core.requestTimeoutMs * 2),
				call: (action, params) => broker.call(action, params),
				broadcast: (event, payload) => void broker.broadcast(event, payload),
				logger: this.logger,
			});
		},
		started() {
			engine.start();
		},
		stopped() {
			engine.stop();
		},
	};
	return schema;
};

export default schedulerService;
