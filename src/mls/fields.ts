/**
 * The MLS parser's configuration: CSS selectors and label patterns kept in a JSON file
 * (config/mls-fields.json), because the site's markup changes without notice and a changed label
 * should be an edit of configuration, not of code. Validated and compiled once at load.
 */
import { readFileSync } from "node:fs";
import { Validator } from "../utils/validator.ts";

export const FIELD_TYPES = ["money", "int", "number", "acres", "text", "status", "date", "id"] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

export interface FieldSpec {
	labels: RegExp[];
	type: FieldType;
	/** Counts as a fact: a page where no fact field is found is a parse failure. */
	fact: boolean;
}

export interface MlsFieldConfig {
	search: {
		cards: string[];
		link: string;
		next: string;
		idFromUrl: RegExp;
		totalPattern: RegExp | null;
	};
	listing: {
		address: string[];
		description: { selectors: string[]; labels: RegExp[] };
		photos: { attributes: string[]; pattern: RegExp; urlTemplate: string };
		labelTags: string[];
		fields: Record<string, FieldSpec>;
	};
	blocks: {
		rateLimited: string[];
		captcha: string[];
		banned: string[];
		sessionExpired: string[];
	};
}

const strings = { type: "array", items: { type: "string", min: 1 }, min: 1 } as const;
const pattern = { type: "string", min: 1 } as const;
const checkRaw = new Validator().compile({
	$$root: true,
	type: "object",
	props: {
		search: {
			type: "object",
			props: {
				cards: strings,
				link: pattern,
				next: pattern,
				idFromUrl: pattern,
				totalPattern: { type: "string", optional: true },
			},
		},
		listing: {
			type: "object",
			props: {
				address: strings,
				description: { type: "object", props: { selectors: strings, labels: strings } },
				photos: {
					type: "object",
					props: { attributes: strings, pattern, urlTemplate: { type: "string", contains: "{id}" } },
				},
				labelTags: strings,
				fields: {
					type: "record",
					key: { type: "string", alpha: true },
					value: {
						type: "object",
						props: {
							labels: strings,
							type: { type: "enum", values: [...FIELD_TYPES] },
							fact: { type: "boolean", optional: true },
						},
					},
				},
			},
		},
		blocks: {
			type: "object",
			props: { rateLimited: strings, captcha: strings, banned: strings, sessionExpired: strings },
		},
	},
});

export class FieldConfigError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "FieldConfigError";
	}
}

function regex(source: string, where: string): RegExp {
	try {
		return new RegExp(source, "i");
	} catch (err) {
		throw new FieldConfigError(
			`${where}: invalid pattern ${JSON.stringify(source)}: ${(err as Error).message}`,
		);
	}
}

interface RawFieldConfig {
	search: { cards: string[]; link: string; next: string; idFromUrl: string; totalPattern?: string };
	listing: {
		address: string[];
		description: { selectors: string[]; labels: string[] };
		photos: { attributes: string[]; pattern: string; urlTemplate: string };
		labelTags: string[];
		fields: Record<string, { labels: string[]; type: FieldType; fact?: boolean }>;
	};
	blocks: MlsFieldConfig["blocks"];
}

/** Validates and compiles a parsed JSON field configuration. */
export function compileFieldConfig(raw: unknown): MlsFieldConfig {
	const result = checkRaw(raw);
	if (result !== true) {
		const problems = (result as { message?: string }[]).map((p) => p.message).join("; ");
		throw new FieldConfigError(`invalid MLS field configuration: ${problems}`);
	}
	const r = raw as RawFieldConfig;
	const fields: Record<string, FieldSpec> = {};
	for (const [name, f] of Object.entries(r.listing.fields)) {
		fields[name] = {
			labels: f.labels.map((l, i) => regex(l, `listing.fields.${name}.labels[${i}]`)),
			type: f.type,
			fact: f.fact ?? false,
		};
	}
	if (!fields.mlsId) throw new FieldConfigError("listing.fields.mlsId is required");
	return {
		search: {
			cards: r.search.cards,
			link: r.search.link,
			next: r.search.next,
			idFromUrl: regex(r.search.idFromUrl, "search.idFromUrl"),
			totalPattern: r.search.totalPattern ? regex(r.search.totalPattern, "search.totalPattern") : null,
		},
		listing: {
			address: r.listing.address,
			description: {
				selectors: r.listing.description.selectors,
				labels: r.listing.description.labels.map((l, i) => regex(l, `listing.description.labels[${i}]`)),
			},
			photos: {
				attributes: r.listing.photos.attributes,
				pattern: new RegExp(regex(r.listing.photos.pattern, "listing.photos.pattern").source, "gi"),
				urlTemplate: r.listing.photos.urlTemplate,
			},
			labelTags: r.listing.labelTags,
			fields,
		},
		blocks: {
			rateLimited: r.blocks.rateLimited.map((s) => s.toLowerCase()),
			captcha: r.blocks.captcha.map((s) => s.toLowerCase()),
			banned: r.blocks.banned.map((s) => s.toLowerCase()),
			sessionExpired: r.blocks.sessionExpired.map((s) => s.toLowerCase()),
		},
	};
}

/** Reads and compiles the field configuration file (MLS_FIELDS_FILE). */
export function loadFieldConfig(path: string): MlsFieldConfig {
	let text: string;
	try {
		text = readFileSync(path, "utf8");
	} catch (err) {
		throw new FieldConfigError(`cannot read MLS field configuration ${path}: ${(err as Error).message}`);
	}
	let parsed: unknown;
	try {
		parsed = JSON.parse(text);
	} catch (err) {
		throw new FieldConfigError(`MLS field configuration ${path} is not JSON: ${(err as Error).message}`);
	}
	return compileFieldConfig(parsed);
}
