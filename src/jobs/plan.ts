/**
 * Job planning: validate a collection request against the sources the cluster can run, then split it
 * into tasks: page 1 of each source x ZIP (a paged source reports the ZIP's other pages, planned
 * while the job runs by `pageTasks`), plus one enrichment task per ZIP when asked.
 */
import { InvalidInputError } from "../core/errors.ts";
import type { Job, JobSpec, Task, TaskKind } from "./types.ts";

// [0-9], not \d: fastest-validator prints a pattern's backslashes away in a 422's `expected`.
export const ZIP_SHAPE = /^[0-9]{5}$/;

/** An action's ZIP parameter: its 422 says "5 digits" in words. */
export const ZIP_PARAM = {
	type: "string",
	pattern: ZIP_SHAPE,
	messages: { stringPattern: "The '{field}' field must be 5 digits (a ZIP code such as 85031)." },
} as const;
/** Job ids are generated (`job-<time>-<random>`) or given by a caller as an idempotency key. */
export const JOB_ID_SHAPE = /^[A-Za-z0-9._:-]{1,120}$/;

export interface CollectRequest {
	zips?: string[];
	/** Every ZIP of the county (COUNTY_ZIPS) instead of `zips`. */
	county?: boolean;
	sources?: string[];
	enrich?: boolean;
	/** Also collect the listings' photos: the `photos` source, run after each ZIP's other sources. */
	photos?: boolean;
	priority?: number;
}

/** The photos source (issue 18): never a default source (heavy), asked for by name or `photos: true`. */
export const PHOTOS_SOURCE = "photos";

/** A request that cannot be planned: answered 422 INVALID_JOB naming every problem. */
export class PlanError extends InvalidInputError {
	readonly problems: string[];
	constructor(problems: string[]) {
		super(`Cannot plan the job: ${problems.join("; ")}`, { type: "INVALID_JOB", data: { problems } });
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
	countyZips: readonly string[] = [],
): JobSpec {
	const problems: string[] = [];
	const county = req.county === true;
	if (county && (req.zips ?? []).length > 0) problems.push("give ZIP codes or county, not both");
	const zips = [...new Set((county ? countyZips : (req.zips ?? [])).map((z) => String(z).trim()))];
	if (zips.length === 0)
		problems.push(county ? "no county ZIP codes configured (COUNTY_ZIPS)" : "no ZIP codes given");
	const malformed = zips.filter((z) => !ZIP_SHAPE.test(z));
	if (malformed.length > 0) {
		// Never echo unbounded input: a few, each cut short.
		const shown = malformed.slice(0, 5).map((z) => `'${z.slice(0, 12)}${z.length > 12 ? "…" : ""}'`);
		problems.push(
			`malformed ZIP code(s) ${shown.join(", ")}${malformed.length > 5 ? ` and ${malformed.length - 5} more` : ""} (expected 5 digits)`,
		);
	}
	const enrich = req.enrich === true;
	// `sources: []` with `enrich` is an enrichment-only job (the nightly schedule): no collect tasks.
	const enrichOnly = enrich && Array.isArray(req.sources) && req.sources.length === 0;
	const sources = enrichOnly
		? []
		: [
				...new Set(
					req.sources && req.sources.length > 0
						? req.sources
						: defaultSources.filter((s) => s !== PHOTOS_SOURCE),
				),
			];
	if (req.photos === true && !sources.includes(PHOTOS_SOURCE)) sources.push(PHOTOS_SOURCE);
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
	return { zips, county, sources, enrich, priority: req.priority ?? 0 };
}

export function newJobId(now: number, random: string): string {
	return `job-${new Date(now)
		.toISOString()
		.replace(/[-:]/g, "")
		.replace(/\.\d+Z$/, "Z")}-${random}`;
}

/** `<job>/<source>/<zip>` for page 1 (or a whole ZIP), `<job>/<source>/<zip>/p<n>` for page n. */
export function taskId(jobId: string, kind: TaskKind, source: string, zip: string, page = 1): string {
	return `${jobId}/${kind === "collect" ? source : "enrich"}/${zip}${page > 1 ? `/p${page}` : ""}`;
}

export function newTask(jobId: string, kind: TaskKind, source: string, zip: string, page = 1): Task {
	return {
		id: taskId(jobId, kind, source, zip, page),
		jobId,
		kind,
		source,
		zip,
		page,
		state: "pending",
		attempts: 0,
		notBefore: 0,
		node: null,
		leaseToken: null,
		startedAt: null,
		finishedAt: null,
		counts: null,
		expect: null,
		failedRecords: [],
		errors: [],
	};
}

/** Pages 2..pages of a ZIP, once its page 1 reported how many there are. */
export function pageTasks(first: Task, pages: number): Task[] {
	const out: Task[] = [];
	for (let page = 2; page <= pages; page++)
		out.push(newTask(first.jobId, first.kind, first.source, first.zip, page));
	return out;
}

/** The job and its tasks, all pending. */
export function planJob(id: string, spec: JobSpec, now: number, origin: string): { job: Job; tasks: Task[] } {
	const tasks: Task[] = [];
	// ZIP-major order interleaves sources, so every source starts working at once.
	for (const zip of spec.zips)
		for (const source of spec.sources) tasks.push(newTask(id, "collect", source, zip));
	if (spec.enrich) for (const zip of spec.zips) tasks.push(newTask(id, "enrich", "llm", zip));
	const job: Job = {
		id,
		spec,
		status: "running",
		createdAt: now,
		finishedAt: null,
		origin,
		taskCount: tasks.length,
		deadLetters: [],
		deadLetterCount: 0,
		failedRecords: [],
		leader: null,
		summary: null,
	};
	return { job, tasks };
}
