/**
 * Two regions on loopback (issue 15): each has its own nats-server, joined as a supercluster by
 * gateways through toxiproxy with 50 ms each way; one Redis in region a, reached by region b through
 * toxiproxy with the same latency (test/harness/regions.ts). Region a runs the store, an orchestrator
 * and a maricopa worker; region b an orchestrator (started first: it leads) and a maricopa worker.
 *
 * - Calls from each region stay in it while it has endpoints (counted by the region strategy and by
 *   the node each call reached); a call to a service only region a runs crosses.
 * - A county job (COUNTY_ZIPS, several pages a ZIP) is spread over both regions' workers and
 *   completes with every parcel stored once; the host budgets hold in every sliding window, across
 *   both regions (the sandbox's own request log).
 * - The link between the regions is cut mid-job (gateways and b's Redis link), with region b's
 *   orchestrator leading: region a's orchestrator takes over, the tasks held by region b expire and
 *   run again in region a, the job completes with every parcel stored once, and no window is over
 *   budget (region b, cut from the budget's holder, sends nothing). The link heals: region b's nodes
 *   are back in region a's registry and its orchestrator follows, with no operator action, and a
 *   new job runs in both regions again.
 * - Only region b's link to Redis is cut (NATS still joined): its nodes' marks in Redis expire, and a
 *   job runs in region a alone (region b could not claim a request slot); after the heal, region b
 *   gets tasks again.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type moleculer from "moleculer";
import { type Sandbox, startSandbox } from "../../sandbox/index.ts";
import {
	RegionStrategy,
	regionCallCounts,
	regionCallsMiddleware,
} from "../../src/cluster/region-strategy.ts";
import type { JobStatusView } from "../../src/jobs/orchestrator.ts";
import { sleep, waitFor } from "../../src/utils/time.ts";
import { clientBroker, type NodeProcess, spawnNode } from "../harness/cluster.ts";
import { type Regions, startRegions } from "../harness/regions.ts";

const COUNTY = ["85031", "85033", "85008"];
const SECOND = ["85301", "85379", "85251"];
const THIRD = ["85004", "85006"];
const FOURTH = ["85020", "85021", "85022"];
const PARCELS_PER_ZIP = 40;
const PAGE_SIZE = 20;
/** The budget of each Assessor host, per 1 s window, whole cluster. */
const BUDGET = 8;
const WINDOW_MS = 1000;
const LATENCY_MS = 50;

interface KeysetPage {
	rows: { key: string; apn: string | null; zip: string | null }[];
	nextKey: string | null;
}

describe("two regions: gateways, region-aware calls, one budget, region loss", () => {
	let regions: Regions;
	let sandbox: Sandbox;
	let clientA: moleculer.ServiceBroker;
	let clientB: moleculer.ServiceBroker;
	const nodes: NodeProcess[] = [];
	const dataDir = mkdtempSync(join(tmpdir(), "saguaro-regions-"));

	const regionOfNode = (id: string) => (id.startsWith("b-") ? "b" : "a");

	before(async () => {
		[regions, sandbox] = await Promise.all([
			startRegions(),
			startSandbox({
				world: { zips: [...COUNTY, ...SECOND, ...THIRD, ...FOURTH], parcelsPerZip: PARCELS_PER_ZIP },
			}),
		]);
		await regions.latency(LATENCY_MS);
		const slow = { latency: { minMs: 20, maxMs: 40 } };
		sandbox.maricopa.faults.set(slow);
		sandbox.gis.faults.set(slow);
		const env = (region: "a" | "b") => ({
			REGION: region,
			TRANSPORTER: regions.nats[region].url,
			REDIS_URL: regions.redisUrl[region],
			API_PORT: "0",
			LOG_LEVEL: "warn",
			HEARTBEAT_INTERVAL_S: "1",
			HEARTBEAT_TIMEOUT_S: "3",
			ENABLE_METRICS: "false",
		});
		const worker = (region: "a" | "b") => ({
			...env(region),
			SERVICES: "maricopa",
			MARICOPA_BASE_URL: sandbox.env.MARICOPA_BASE_URL!,
			MARICOPA_TOKEN: sandbox.env.MARICOPA_TOKEN!,
			MARICOPA_GIS_URL: sandbox.env.MARICOPA_GIS_URL!,
			MARICOPA_RATE_PER_MIN: String(BUDGET),
			MARICOPA_GIS_RATE_PER_MIN: String(BUDGET),
			MARICOPA_RATE_WINDOW_S: String(WINDOW_MS / 1000),
			MARICOPA_CONCURRENCY: "4",
			MARICOPA_GIS_PAGE_SIZE: String(PAGE_SIZE),
			MARICOPA_TIMEOUT_MS: "5000",
			MARICOPA_BACKOFF_BASE_MS: "100",
			MARICOPA_BACKOFF_MAX_MS: "800",
			MARICOPA_DETAIL_BATCH: "5",
			STORE_CALL_TIMEOUT_S: "10",
		});
		const orchestrator = (region: "a" | "b") => ({
			...env(region),
			SERVICES: "orchestrator",
			COUNTY_ZIPS: COUNTY.join(","),
			ORCHESTRATOR_TASK_LEASE_S: "3",
			ORCHESTRATOR_LEADER_TTL_S: "3",
			ORCHESTRATOR_TICK_MS: "200",
			ORCHESTRATOR_BACKOFF_BASE_MS: "200",
			ORCHESTRATOR_CONCURRENCY_PER_SOURCE: "2",
		});
		nodes.push(spawnNode({ nodeId: "a-store", env: { ...env("a"), SERVICES: "store", DATA_DIR: dataDir } }));
		nodes.push(spawnNode({ nodeId: "a-work", env: worker("a") }));
		nodes.push(spawnNode({ nodeId: "b-work", env: worker("b") }));
		// Region b's orchestrator starts first and leads, so the cut costs the cluster its leader.
		nodes.push(spawnNode({ nodeId: "b-orch", env: orchestrator("b") }));
		const regionClient = (region: "a" | "b") =>
			clientBroker(regions.nats[region].url, `test-${region}`, {
				metadata: { region },
				registry: { strategy: RegionStrategy, preferLocal: true },
				middlewares: [regionCallsMiddleware()],
				requestTimeout: 20_000,
			});
		clientA = regionClient("a");
		clientB = regionClient("b");
		await Promise.all([clientA.start(), clientB.start()]);
		await waitFor(
			async () =>
				(
					(await clientB.call("orchestrator.leader", {}, { nodeID: "b-orch" }).catch(() => null)) as {
						leader?: boolean;
					} | null
				)?.leader === true,
			"region b's orchestrator to lead",
			60_000,
			200,
		);
		nodes.push(spawnNode({ nodeId: "a-orch", env: orchestrator("a") }));
		await waitFor(
			() =>
				[clientA, clientB].every(
					(c) =>
						endpoints(c, "maricopa.collectZip").length === 2 &&
						endpoints(c, "orchestrator.leader").length === 2 &&
						endpoints(c, "properties.find").length === 1,
				),
			"both regions' nodes to be seen from both regions",
			120_000,
			100,
		).catch((err: Error) => {
			const seen = [clientA, clientB].map((c) =>
				["maricopa.collectZip", "orchestrator.leader", "properties.find"].map(
					(a) => `${c.nodeID} ${a}: ${endpoints(c, a).join(",")}`,
				),
			);
			const out = nodes.map((n) => `--- ${n.nodeId} ---\n${n.output().slice(-1500)}`);
			throw new Error(`${err.message}\n${seen.flat().join("\n")}\n${out.join("\n")}`);
		});
	});

	after(async () => {
		await Promise.all([clientA, clientB].map((c) => c?.stop().catch(() => {})));
		await Promise.all(nodes.map((n) => n.stop()));
		await Promise.all([regions?.stop(), sandbox?.stop()]);
		rmSync(dataDir, { recursive: true, force: true });
	});

	function endpoints(c: moleculer.ServiceBroker, action: string): string[] {
		const list = c.registry.getActionEndpoints(action) as unknown as
			| { endpoints: { id: string; isAvailable: boolean }[] }
			| undefined;
		return (list?.endpoints ?? []).filter((e) => e.isAvailable).map((e) => e.id);
	}

	/** Call and say which node answered. */
	async function callAt(c: moleculer.ServiceBroker, action: string, params = {}) {
		const p = c.call(action, params) as Promise<unknown> & { ctx?: { nodeID: string } };
		await p;
		return p.ctx?.nodeID ?? "?";
	}

	const status = (id: string) =>
		clientA.call("orchestrator.status", { id, tasks: true }) as Promise<JobStatusView>;

	async function finished(id: string, timeoutMs: number): Promise<JobStatusView> {
		return waitFor(
			async () => {
				const view = await status(id).catch(() => null);
				return view && !["running", "cancelling"].includes(view.job.status) ? view : null;
			},
			`job ${id} to finish`,
			timeoutMs,
			250,
		);
	}

	async function storedOf(zip: string): Promise<string[]> {
		const apns: string[] = [];
		for (let afterKey: string | null = ""; afterKey !== null; ) {
			const res = (await clientA.call("properties.find", { zip, afterKey, pageSize: 25 })) as KeysetPage;
			for (const row of res.rows) apns.push(row.apn ?? "(no apn)");
			afterKey = res.nextKey;
		}
		return apns;
	}

	async function assertStoredExactlyOnce(zips: string[]) {
		for (const zip of zips) {
			const truth = (sandbox.world.byZip.get(zip) ?? []).map((p) => p.apn).sort();
			assert.equal(truth.length, PARCELS_PER_ZIP);
			const stored = await storedOf(zip);
			assert.deepEqual(stored.sort(), truth, `${zip}: every parcel stored once, none extra`);
		}
	}

	/** The busiest sliding window of each Assessor host over the whole run so far. */
	function assertBudgetHeld(phase: string) {
		const rest = sandbox.maricopa.counters.maxInWindow(WINDOW_MS);
		const gis = sandbox.gis.counters.maxInWindow(WINDOW_MS);
		console.log(`${phase}: busiest ${WINDOW_MS} ms window: REST ${rest}/${BUDGET}, GIS ${gis}/${BUDGET}`);
		assert.ok(rest <= BUDGET, `${phase}: REST at most ${BUDGET} in any window, saw ${rest}`);
		assert.ok(gis <= BUDGET, `${phase}: GIS at most ${BUDGET} in any window, saw ${gis}`);
	}

	test("calls stay in their region while it has endpoints; they cross only when it has none", async () => {
		const before = { a: { ...regionCallCounts(clientA) }, b: { ...regionCallCounts(clientB) } };
		const reached = { a: new Set<string>(), b: new Set<string>() };
		for (let i = 0; i < 20; i++) {
			reached.a.add(await callAt(clientA, "maricopa.status"));
			reached.b.add(await callAt(clientB, "maricopa.status"));
		}
		assert.deepEqual([...reached.a], ["a-work"]);
		assert.deepEqual([...reached.b], ["b-work"]);
		assert.equal(regionCallCounts(clientA).local - before.a.local, 20);
		assert.equal(regionCallCounts(clientB).local - before.b.local, 20);
		assert.equal(regionCallCounts(clientA).cross, before.a.cross);
		assert.equal(regionCallCounts(clientB).cross, before.b.cross);
		// The store runs in region a only: region b's calls to it cross, and are counted as such.
		for (let i = 0; i < 5; i++) assert.equal(await callAt(clientB, "properties.stats"), "a-store");
		assert.equal(regionCallCounts(clientB).cross - before.b.cross, 5);
		console.log(
			`calls: region a ${JSON.stringify(regionCallCounts(clientA))}, region b ${JSON.stringify(regionCallCounts(clientB))}`,
		);
	});

	test("a county job is spread over both regions and stores every parcel once, within the budget", {
		timeout: 150_000,
	}, async () => {
		const started = (await clientA.call("orchestrator.collect", {
			county: true,
			sources: ["maricopa"],
		})) as JobStatusView;
		const done = await finished(started.job.id, 120_000);
		assert.equal(done.job.status, "completed", JSON.stringify(done.job.deadLetters));
		await assertStoredExactlyOnce(COUNTY);
		const byRegion = { a: 0, b: 0 } as Record<string, number>;
		for (const t of done.tasks ?? []) if (t.state === "done" && t.node) byRegion[regionOfNode(t.node)]++;
		console.log(`county job: tasks done by region ${JSON.stringify(byRegion)}`);
		assert.ok(byRegion.a > 0 && byRegion.b > 0, `tasks in both regions: ${JSON.stringify(byRegion)}`);
		assertBudgetHeld("county job");
	});

	test("the link is cut mid-job: region a takes over, the job completes once, no window over budget; the link heals and region b rejoins", {
		timeout: 180_000,
	}, async () => {
		const started = (await clientA.call("orchestrator.collect", {
			zips: SECOND,
			sources: ["maricopa"],
		})) as JobStatusView;
		// Mid-job: some page done, and region b's worker holding a task.
		await waitFor(
			async () => {
				const view = await status(started.job.id);
				const tasks = view.tasks ?? [];
				return (
					tasks.some((t) => t.state === "done") &&
					tasks.some((t) => t.state === "leased" && t.node === "b-work")
				);
			},
			"the job under way in both regions",
			60_000,
			100,
		);
		const leader = (await clientB.call("orchestrator.leader", {}, { nodeID: "b-orch" })) as {
			leader: boolean;
		};
		await regions.cut();
		const cutAt = Date.now();
		const done = await finished(started.job.id, 120_000);
		assert.equal(done.job.status, "completed", JSON.stringify(done.job.deadLetters));
		assert.equal(done.job.leader, "a-orch", "finished by region a's orchestrator");
		await assertStoredExactlyOnce(SECOND);
		const requeued = (done.tasks ?? []).filter((t) => t.errors.some((e) => e.node === "b-work"));
		console.log(
			`cut at +${cutAt - started.job.createdAt} ms (b-orch leading: ${leader.leader}); ${requeued.length} task(s) of region b re-dispatched; finished ${Date.now() - cutAt} ms after the cut`,
		);
		for (const t of done.tasks ?? []) assert.equal(t.state, "done");
		assertBudgetHeld("cut mid-job");

		// Heal: region b comes back on its own.
		await regions.heal();
		await regions.latency(LATENCY_MS);
		await waitFor(
			() =>
				endpoints(clientA, "maricopa.collectZip").includes("b-work") &&
				endpoints(clientA, "orchestrator.leader").includes("b-orch"),
			"region b's nodes back in region a's registry",
			60_000,
			200,
		);
		const bLeads = await waitFor(
			async () =>
				(await clientB.call("orchestrator.leader", {}, { nodeID: "b-orch" }).catch(() => null)) as {
					leader: boolean;
				} | null,
			"region b's orchestrator to answer",
			30_000,
			200,
		);
		assert.equal(bLeads.leader, false, "region b's orchestrator follows the new leader");
		const third = (await clientA.call("orchestrator.collect", {
			zips: THIRD,
			sources: ["maricopa"],
		})) as JobStatusView;
		const thirdDone = await finished(third.job.id, 90_000);
		assert.equal(thirdDone.job.status, "completed");
		await assertStoredExactlyOnce(THIRD);
		const nodesUsed = new Set((thirdDone.tasks ?? []).map((t) => t.node));
		assert.ok(nodesUsed.has("b-work"), `region b's worker works again: ${[...nodesUsed].join(", ")}`);
		assertBudgetHeld("after the heal");
	});

	test("region b loses Redis alone: tasks go to region a while it lasts, and to both again after", {
		timeout: 150_000,
	}, async () => {
		const redisLink = regions.links.find((l) => l.name === "redis-from-b")!;
		await redisLink.partition();
		// Region b's marks expire (HEARTBEAT_TIMEOUT_S) and the leader sees it on its next look.
		await sleep(5000);
		const during = (await clientA.call("orchestrator.collect", {
			zips: [FOURTH[0]],
			sources: ["maricopa"],
		})) as JobStatusView;
		const duringDone = await finished(during.job.id, 90_000);
		assert.equal(duringDone.job.status, "completed");
		const usedDuring = new Set((duringDone.tasks ?? []).map((t) => t.node));
		assert.deepEqual([...usedDuring], ["a-work"], "only region a's worker, which reaches Redis");
		await redisLink.heal();
		await redisLink.latency(LATENCY_MS);
		await sleep(3000);
		const afterHeal = (await clientA.call("orchestrator.collect", {
			zips: FOURTH.slice(1),
			sources: ["maricopa"],
		})) as JobStatusView;
		const afterDone = await finished(afterHeal.job.id, 90_000);
		assert.equal(afterDone.job.status, "completed");
		await assertStoredExactlyOnce(FOURTH);
		const usedAfter = new Set((afterDone.tasks ?? []).map((t) => t.node));
		console.log(
			`Redis cut for region b: tasks on ${[...usedDuring].join(", ")}; after the heal on ${[...usedAfter].join(", ")}`,
		);
		assert.ok(usedAfter.has("b-work"), `region b works again: ${[...usedAfter].join(", ")}`);
		assertBudgetHeld("region b cut from Redis");
	});
});
