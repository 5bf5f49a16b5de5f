/**
 * Job planning: validate a collection request against the sources the cluster can run, then split it
 * into tasks (source x ZIP, plus one enrichment task per ZIP when asked).
 */
import type { Job, JobSpec, Task, TaskKind } from "./types.ts";

export const ZIP_SHAPE = /^\d{5}$/;
/** Job ids are generated (`job-<time>-<random>`) or given by a caller as an idempotency key. */
export const JOB_ID_SHAPE = /^[A-Za-z0-9._:-]{1,120}$/;

export interface CollectRequest {
	zips: string[];
	sources?: string[];
	enrich?: boolean;
	priority?: number;
}

export class PlanError extends Error {
	readonly problems: string[];
	constructor(problems: string[]) {
		super(`Cannot plan the job: ${problems.join("; ")}`);
		this.name = "PlanError";
		this.problems = problems;
	}
}

/**
 * Check a request and return its normalized spec. `available` are the sources with a
 * `collectZip` action somewhere in the cluster; `defaultSources` apply when none are named, except
 * that an empty `sources` with `enrich` asks for enrichment only.
 */
export function validateRequest(
	req: CollectRequest,
	available: readonly string[],
	defaultSources: readonly string[],
	enrichAvailable: boolean,
): JobSpec {
	const problems: string[] = [];
	const zips = [...new Set((req.zips ?? []).map((z) => String(z).trim()))];
	if (zips.length === 0) problems.push("no ZIP codes given");
	const malformed = zips.filter((z) => !ZIP_SHAPE.test(z));
	if (malformed.length > 0) {
		problems.push(`malformed ZIP code(s) ${malformed.map((z) => `'${z}'`).join(", ")} (expected 5 digits)`);
	}
	const enrich = req.enrich === true;
	// `sources: []` with `enrich` is an enrichment-only job (the nightly schedule): no collect tasks.
	const enrichOnly = enrich && Array.isArray(req.sources) && req.sources.length === 0;
	const sources = enrichOnly
		? []
		: [...new Set(req.sources && req.sources.length > 0 ? req.sources : defaultSources)];
	if (sources.length === 0 && !enrichOnly) problems.push("no sources given and no source service is running");
	const unknown = sources.filter((s) => !available.includes(s));
	if (unknown.length > 0) {
		problems.push(
			`unknown or unavailable source(s) ${unknown.map((s) => `'${s}'`).join(", ")} (available: ${
				available.length > 0 ? available.join(", ") : "none"
			})`,
		);
	}
	if (enrich && !enrichAvailable) problems.push("enrichment asked but no llm service is running");
	if (problems.length > 0) throw new PlanError(problems);
	return { zips, sources, enrich, priority: req.priority ?? 0 };
}

export function newJobId(now: number, random: string): string {
	return `job-${new Date(now)
		.toISOString()
		.replace(/[-:]/g, "")
		.replace(/\.\d+Z$/, "Z")}-${random}`;
}

export function taskId(jobId: string, kind: TaskKind, source: string, zip: string): string {
	return `${jobId}/${kind === "collect" ? source : "enrich"}/${zip}`;
}

/** The job and its tasks, all pending. */
export function planJob(id: string, spec: JobSpec, now: number, origin: string): { job: Job; tasks: Task[] } {
	const tasks: Task[] = [];
	const make = (kind: TaskKind, source: string, zip: string): Task => ({
		id: taskId(id, kind, source, zip),
		jobId: id,
		kind,
		source,
		zip,
		state: "pending",
		attempts: 0,
		notBefore: 0,
		node: null,
		leaseToken: null,
		startedAt: null,
		finishedAt: null,
		counts: null,
		errors: [],
	});
	// ZIP-major order interleaves sources, so every source starts working at once.
	for (const zip of spec.zips) for (const source of spec.sources) tasks.push(make("collect", source, zip));
	if (spec.enrich) for (const zip of spec.zips) tasks.push(make("enrich", "llm", zip));
	const job: Job = {
		id,
		spec,
		status: "running",
		createdAt: now,
		finishedAt: null,
		origin,
		taskIds: tasks.map((t) => t.id),
		deadLetters: [],
		leader: null,
	};
	return { job, tasks };
}
