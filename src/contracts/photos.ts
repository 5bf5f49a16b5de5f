/**
 * The photos service's actions read by other modules (the REPL), with a typed `callPhotos`.
 */
import { type Action, callerOf } from "./call.ts";

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
	"photos.list": Action<{ key: string }, PhotoList>;
};

/** `callPhotos(broker, "photos.list", { key })`: a photos call typed by its action. */
export const callPhotos = callerOf<PhotosActions>();
