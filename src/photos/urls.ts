/**
 * Photo URLs of the MLS site's CDN (sparkplatform): `https://cdn.photos.sparkplatform.com/az/{id}-{size}.jpg`
 * with sizes t (thumbnail), m (medium), l (large), o (original). A photo is known by its id; the
 * size fetched is configuration.
 */

export type PhotoSize = "t" | "m" | "l" | "o";

const PHOTO_URL = /\/az\/([A-Za-z0-9_]{1,64})-([tmlo])\.(?:jpe?g|png|webp)(?:[?#].*)?$/i;

/** The photo id of a CDN URL (or a bare id), or null when it is not one. */
export function photoIdOf(urlOrId: string): string | null {
	if (/^[A-Za-z0-9_]{1,64}$/.test(urlOrId)) return urlOrId;
	const m = PHOTO_URL.exec(urlOrId);
	return m ? m[1]! : null;
}

/** `{base}/az/{id}-{size}.jpg` */
export function photoUrl(base: string, id: string, size: PhotoSize): string {
	return `${base.replace(/\/+$/, "")}/az/${id}-${size}.jpg`;
}

/**
 * The ordered, de-duplicated photo ids of a listing's URLs (the same photo at several sizes is one
 * photo; the first place it appears is its position), with the URL each was seen under.
 */
export function listingPhotos(
	urls: readonly string[],
	size: PhotoSize,
	canonicalBase: string | null,
): { id: string; sourceUrl: string }[] {
	const seen = new Set<string>();
	const out: { id: string; sourceUrl: string }[] = [];
	for (const u of urls) {
		const id = photoIdOf(u);
		if (!id || seen.has(id)) continue;
		seen.add(id);
		let base = canonicalBase;
		if (!base) {
			try {
				const parsed = new URL(u);
				base = parsed.origin;
			} catch {
				base = "https://cdn.photos.sparkplatform.com";
			}
		}
		out.push({ id, sourceUrl: photoUrl(base, id, size) });
	}
	return out;
}
