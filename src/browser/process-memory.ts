/**
 * Memory of a Chromium instance: the proportional set size (PSS) of its whole process tree (browser,
 * zygotes, renderers, GPU/utility processes), read from /proc. Playwright does not expose the pid of a
 * launched browser, so each launch carries a marker switch that Chromium ignores and /proc finds.
 */
import { readdirSync, readFileSync } from "node:fs";

function readText(path: string): string | null {
	try {
		return readFileSync(path, "utf8");
	} catch {
		return null;
	}
}

function parentOf(pid: number): number | null {
	const stat = readText(`/proc/${pid}/stat`);
	if (!stat) return null;
	// Field 4 after the parenthesised command name (which may itself contain spaces).
	const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
	const ppid = Number(rest[1]);
	return Number.isInteger(ppid) ? ppid : null;
}

function pids(): number[] {
	try {
		return readdirSync("/proc")
			.filter((d) => /^\d+$/.test(d))
			.map(Number);
	} catch {
		return [];
	}
}

/** Pid of the process whose command line carries `marker`, child of `parent`. */
export function findPidByMarker(marker: string, parent = process.pid): number | null {
	for (const pid of pids()) {
		if (parentOf(pid) !== parent) continue;
		const cmd = readText(`/proc/${pid}/cmdline`);
		if (cmd?.includes(marker)) return pid;
	}
	return null;
}

/** The pid and all its descendants. */
export function processTree(root: number): number[] {
	const children = new Map<number, number[]>();
	for (const pid of pids()) {
		const ppid = parentOf(pid);
		if (ppid === null) continue;
		const list = children.get(ppid);
		if (list) list.push(pid);
		else children.set(ppid, [pid]);
	}
	const out: number[] = [];
	const stack = [root];
	while (stack.length > 0) {
		const pid = stack.pop() as number;
		out.push(pid);
		stack.push(...(children.get(pid) ?? []));
	}
	return out;
}

/** PSS (falls back to RSS) of one process in bytes; 0 when it is gone. */
export function processMemory(pid: number): number {
	const rollup = readText(`/proc/${pid}/smaps_rollup`);
	const pss = rollup ? /^Pss:\s+(\d+) kB/m.exec(rollup) : null;
	if (pss) return Number(pss[1]) * 1024;
	const status = readText(`/proc/${pid}/status`);
	const rss = status ? /^VmRSS:\s+(\d+) kB/m.exec(status) : null;
	return rss ? Number(rss[1]) * 1024 : 0;
}

/**
 * Private memory (USS: Private_Clean + Private_Dirty) of one process in bytes; 0 when it is gone.
 * Unlike PSS it does not fall when other processes start sharing the same library pages (another
 * Chromium on the machine), so it is the figure to watch for growth over time.
 */
export function processPrivateMemory(pid: number): number {
	const rollup = readText(`/proc/${pid}/smaps_rollup`);
	if (!rollup) return 0;
	const clean = /^Private_Clean:\s+(\d+) kB/m.exec(rollup);
	const dirty = /^Private_Dirty:\s+(\d+) kB/m.exec(rollup);
	return (Number(clean?.[1] ?? 0) + Number(dirty?.[1] ?? 0)) * 1024;
}

/** Memory of a process tree in bytes. */
export function treeMemory(root: number): number {
	return processTree(root).reduce((sum, pid) => sum + processMemory(pid), 0);
}
