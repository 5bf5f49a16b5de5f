/**
 * The property store's list reads: offset pages (with a total) and keyset pages (by key, for full
 * exports). List answers leave out what only `get` returns.
 */
import type { PropertyDoc } from "../domain/property.ts";
import type { DocCollection, FindOptions, Query } from "./collection.ts";

/** Too big for list answers; `get` returns it. */
const LIST_OMIT = ["contributions", "history"];

export interface PropertyPage {
	rows: PropertyDoc[];
	total: number;
	page: number;
	pageSize: number;
	totalPages: number;
}

export interface KeysetPage {
	rows: PropertyDoc[];
	pageSize: number;
	/** Pass as `afterKey` for the next page; null when this was the last. */
	nextKey: string | null;
}

export async function offsetPage(
	col: DocCollection<PropertyDoc>,
	query: Query,
	page: number,
	pageSize: number,
	sort: FindOptions["sort"],
): Promise<PropertyPage> {
	const [rows, total] = await Promise.all([
		col.find(query, { sort, skip: (page - 1) * pageSize, limit: pageSize, omit: LIST_OMIT }),
		col.count(query),
	]);
	return { rows, total, page, pageSize, totalPages: Math.ceil(total / pageSize) };
}

/**
 * Keyset paging: the `pageSize` properties after `afterKey` in key order, and the key to ask
 * after next (null at the end). Unlike offset paging it costs the same on the last page as on
 * the first, and a property written meanwhile never shifts a page (a full export reads each
 * property once).
 */
export async function keysetPage(
	col: DocCollection<PropertyDoc>,
	query: Query,
	afterKey: string,
	pageSize: number,
): Promise<KeysetPage> {
	const rows = await col.find(
		{ ...query, key: { $gt: afterKey } },
		{ sort: { key: 1 }, limit: pageSize, omit: LIST_OMIT },
	);
	return { rows, pageSize, nextKey: rows.length === pageSize ? rows[rows.length - 1]!.key : null };
}
