/**
 * The foreground work of an interactive console (the REPL): at most one at a time, such as `job
 * <id>` redrawing its progress bar. The console interrupts it when the user types another command
 * or presses Ctrl-C, so a live display never draws over what comes next.
 */

let current: AbortController | null = null;

/** Become the foreground work (interrupting any other); the signal aborts when interrupted. */
export function takeForeground(): AbortSignal {
	current?.abort(new Error("replaced by other foreground work"));
	current = new AbortController();
	return current.signal;
}

/** Give the foreground back once the work is done (a no-op when it was interrupted meanwhile). */
export function releaseForeground(signal: AbortSignal): void {
	if (current?.signal === signal) current = null;
}

/** Interrupt the foreground work, if any; true when there was some. */
export function interruptForeground(reason: string): boolean {
	const c = current;
	current = null;
	if (!c) return false;
	c.abort(new Error(reason));
	return true;
}
