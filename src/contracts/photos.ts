/**
 * The photos service's actions read by other modules (the REPL), with a typed `callPhotos`.
 */
import { type Action, callerOf } from "./call.ts";
import type { ParamsSchema } from "./params.ts";

/** `collect`, `list`: one property, by its key (an APN is normalized). */
export interface PropertyKeyParams {
	key: string;
}

export const propertyKeyParams = {
	key: { type: "string", min: 1, max: 300 },
} as const satisfies ParamsSchema<PropertyKeyParams>;

/** `object`: one stored photo's bytes (the API streams them). */
export interface PhotoObjectParams {
	key: string;
	photoId: string;
}

export const photoObjectParams = {
	key: propertyKeyParams.key,
	photoId: { type: "string", pattern: /^[A-Za-z0-9_]{1,64}$/ },
} as const satisfies ParamsSchema<PhotoObjectParams>;

/** `job`: a job's photo counts. */
export interface PhotoJobParams {
	jobId: string;
}

export const photoJobParams = {
	jobId: { type: "string", min: 1, max: 200 },
} as const satisfies ParamsSchema<PhotoJobParams>;

/** `sweep`: remove stored objects no index entry names, older than this (default 24 h). */
export interface SweepParams {
	olderThanH?: number;
}

export const sweepParams = {
	olderThanH: { type: "number", min: 1, max: 24 * 365, optional: true, convert: true },
} as const satisfies ParamsSchema<SweepParams>;

/** One photo of `list`, in the listing's order. */
export interface PhotoListRow {
	photoId: string;
	/** 0-based place in the listing's photo order. */
	position: number;
	status: "ok" | "failed";
	sourceUrl: string;
	size: string;
	sha256: string | null;
	phash: string | null;
	bytes: number | null;
	width: number | null;
	height: number | null;
	/** The stored image this photo is. */
	image: string | null;
	duplicate: "exact" | "near" | null;
	distance: number | null;
	firstSeen: string;
	lastSeen: string;
	failure: { reason: string; message: string; at: string; attempts: number } | null;
	/** The REST route streaming it; null when not stored. */
	href: string | null;
}

export interface PhotoList {
	key: string;
	photos: PhotoListRow[];
}

/** The catalog (a type alias, not an interface: only aliases fit `ActionCatalog`). */
export type PhotosActions = {
	"photos.list": Action<PropertyKeyParams, PhotoList>;
};

/** `callPhotos(broker, "photos.list", { key })`: a photos call typed by its action. */
export const callPhotos = callerOf<PhotosActions>();
