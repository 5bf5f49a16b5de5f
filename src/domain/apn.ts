/**
 * Maricopa Assessor parcel numbers. The canonical form drops dashes, dots and spaces and keeps a
 * split parcel's letter suffix: "103-06-005" -> "10306005", "104-02-008A" -> "10402008A".
 * Book (3 digits), map (2), parcel (3), optional split letter.
 */

const APN_SHAPE = /^(\d{3})(\d{2})(\d{3})([A-Z]?)$/;

/** Canonical APN, or null when the input is not a parcel number. */
export function normalizeApn(input: string): string | null {
	const compact = input.replace(/[\s.-]/g, "").toUpperCase();
	return APN_SHAPE.test(compact) ? compact : null;
}

/** Display form: "10306005" -> "103-06-005", "10402008A" -> "104-02-008A"; null when not an APN. */
export function formatApn(input: string): string | null {
	const apn = normalizeApn(input);
	if (!apn) return null;
	return `${apn.slice(0, 3)}-${apn.slice(3, 5)}-${apn.slice(5)}`;
}
