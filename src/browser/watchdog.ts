/**
 * A render's hard deadline: the caller gets the render's outcome or, at the deadline, a watchdog
 * error — never a hang. Freeing the stuck slot is the pool's business (BrowserPool#reclaim).
 */
import { RenderError } from "./types.ts";

/** Races `work` against `deadlineMs`; `fired()` tells afterwards whether the deadline won. */
export async function raceDeadline<T>(
	work: Promise<T>,
	deadlineMs: number,
): Promise<{ value: T } | { fired: true; error: RenderError }> {
	let timer: NodeJS.Timeout | undefined;
	const deadline = new Promise<{ fired: true; error: RenderError }>((resolve) => {
		timer = setTimeout(
			() =>
				resolve({
					fired: true,
					error: new RenderError("watchdog", `page stuck past ${deadlineMs} ms: reclaimed`),
				}),
			deadlineMs,
		);
	});
	try {
		return await Promise.race([work.then((value) => ({ value })), deadline]);
	} finally {
		clearTimeout(timer);
	}
}
