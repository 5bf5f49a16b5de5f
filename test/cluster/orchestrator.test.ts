/**
 * Durable jobs across real Saguaro processes over real NATS and Redis, collecting from the sandbox:
 * SIGKILL a worker mid-job, then SIGKILL the leading orchestrator mid-job; each job still completes
 * and every parcel of the sandbox's ground truth for its ZIPs is stored exactly once.
 * Every node runs the orchestrator (one leads) and the fixture source.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import type moleculer from "moleculer";
import type { Sandbox } from "../../sandbox/index.ts";
import { startSandbox } from "../../sandbox/index.ts";
import type { JobStatusView } from "../../src/jobs/orchestrator.ts";
import { RedisSharedState } from "../../src/shared-state/index.ts";
import { waitFor } from "../../src/utils/time.ts";
import { clientBroker, type NodeProcess, spawnNode } from "../harness/cluster.ts";
import { type RunningServer, startNats, startRedis } from "../harness/servers.ts";

const FIXTURE = resolve(import.meta.dirname, "../fixtures/fixture-source.service.ts");
const FIRST = ["85031", "85033", "85008"];
const SECOND = ["85301", "85379", "85035"];

describe("orchestrator in a cluster", () => {
	let nats: RunningServer;
	let redis: RunningServer;
	let sandbox: Sandbox;
	let client: moleculer.ServiceBroker;
	let state: RedisSharedState;
	const nodes: NodeProcess[] = [];

	before(async () => {
		[nats, redis, sandbox] = await Promise.all([
			startNats(),
			startRedis(),
			startSandbox({ world: { zips: [...FIRST, ...SECOND], parcelsPerZip: 50 } }),
		]);
		state = new RedisSharedState(redis.url, "saguaro");
		for (const id of ["node-a", "node-b", "node-c", "node-d"]) {
			nodes.push(
				spawnNode({
					nodeId: id,
					extraServiceFiles: [FIXTURE],
					env: {
						TRANSPORTER: nats.url,
						REDIS_URL: redis.url,
						SERVICES: "orchestrator",
						LOG_LEVEL: "warn",
						HEARTBEAT_INTERVAL_S: "1",
						HEARTBEAT_TIMEOUT_S: "3",
						ORCHESTRATOR_TASK_LEASE_S: "3",
						ORCHESTRATOR_LEADER_TTL_S: "3",
						ORCHESTRATOR_TICK_MS: "200",
						ORCHESTRATOR_BACKOFF_BASE_MS: "200",
						ORCHESTRATOR_CONCURRENCY_PER_SOURCE: "3",
						FIXTURE_SOURCE_NAME: "fixture",
						FIXTURE_GIS_URL: sandbox.urls.gis,
						FIXTURE_PAGE_SIZE: "10",
						FIXTURE_PAGE_DELAY_MS: "400",
					},
				}),
			);
		}
		// The "started" line is printed at info level; warn-level nodes are awaited through the registry.
		client = clientBroker(nats.url);
		await client.start();
		await waitFor(
			async () => {
				const list = client.registry.getActionEndpoints("fixture.collectZip") as unknown as {
					endpoints: unknown[];
				};
				return list?.endpoints.length === 4;
			},
			"4 nodes offering fixture.collectZip",
			60_000,
			100,
		);
	});

	after(async () => {
		await client?.stop().catch(() => {});
		await Promise.all(nodes.map((n) => n.stop()));
		await state?.close();
		await Promise.all([nats?.stop(), redis?.stop(), sandbox?.stop()]);
	});

	const status = (id: string) =>
		client.call("orchestrator.status", { id, tasks: true }) as Promise<JobStatusView>;

	async function leaderNode(): Promise<NodeProcess> {
		const id = await waitFor(
			async () => {
				for (const n of nodes.filter((x) => x.process.exitCode === null && x.process.signalCode === null)) {
					const r = (await client.call("orchestrator.leader", {}, { nodeID: n.nodeId })) as {
						leader: boolean;
					};
					if (r.leader) return n.nodeId;
				}
				return null;
			},
			"an orchestrator leader",
			20_000,
			100,
		);
		return nodes.find((n) => n.nodeId === id) as NodeProcess;
	}

	async function storedApns(zips: string[]): Promise<string[]> {
		const records = await state.getMany<{ apn: string; zip: string }>(await state.keys("fixture:prop:"));
		return records.filter((r) => r && zips.includes(r.zip)).map((r) => (r as { apn: string }).apn);
	}

	const truthFor = (zips: string[]) =>
		sandbox.world.parcels.filter((p) => zips.includes(p.zip)).map((p) => p.apn);

	async function runJobKilling(
		zips: string[],
		victimOf: (view: JobStatusView, leader: string) => string | null,
	) {
		const started = (await client.call("orchestrator.collect", { zips })) as JobStatusView;
		const leader = (await leaderNode()).nodeId;
		// Wait until a victim holds a task that has written some parcels, then SIGKILL it.
		const victimId = await waitFor(
			async () => {
				const view = await status(started.job.id);
				const writes = await state.hgetall("fixture:writes");
				return Object.keys(writes).length > 0 ? victimOf(view, leader) : null;
			},
			"a task running on the victim",
			20_000,
			50,
		);
		const victim = nodes.find((n) => n.nodeId === victimId) as NodeProcess;
		victim.kill("SIGKILL");
		await victim.exited;
		const done = await waitFor(
			async () => {
				const view = await status(started.job.id);
				return ["running", "cancelling"].includes(view.job.status) ? null : view;
			},
			`job ${started.job.id} to finish`,
			90_000,
			200,
		);
		return { done, victimId, leader };
	}

	test("SIGKILL of a worker mid-job: the job completes, each parcel stored once", async () => {
		const { done, victimId } = await runJobKilling(FIRST, (view, leader) => {
			const running = view.tasks?.find((t) => t.state === "leased" && t.node && t.node !== leader);
			return running?.node ?? null;
		});
		assert.equal(done.job.status, "completed", JSON.stringify(done.job.deadLetters));
		const truth = truthFor(FIRST);
		const stored = await storedApns(FIRST);
		assert.equal(stored.length, truth.length);
		assert.deepEqual(stored.sort(), truth.sort());
		// The victim's task was dispatched again elsewhere and finished there.
		const redone = done.tasks?.filter((t) => t.errors.some((e) => e.node === victimId)) ?? [];
		assert.ok(redone.length >= 1, "a task of the killed worker was re-dispatched");
		for (const t of redone) {
			assert.equal(t.state, "done");
			assert.notEqual(t.node, victimId);
			assert.ok(t.attempts >= 2);
		}
		assert.equal(done.progress.tasks.done, FIRST.length);
	});

	test("SIGKILL of the leading orchestrator mid-job: another takes over and completes it", async () => {
		const { done, victimId, leader } = await runJobKilling(SECOND, (view, leaderId) =>
			view.tasks?.some((t) => t.state === "leased") ? leaderId : null,
		);
		assert.equal(victimId, leader);
		assert.equal(done.job.status, "completed", JSON.stringify(done.job.deadLetters));
		assert.notEqual(done.job.leader, victimId, "finished by a new leader");
		const truth = truthFor(SECOND);
		const stored = await storedApns(SECOND);
		assert.equal(stored.length, truth.length);
		assert.deepEqual(stored.sort(), truth.sort());
		// New parcels were counted once per parcel even though some tasks ran twice.
		assert.ok(done.progress.counts.items >= truth.length);
	});
});
