// Per-process CPU time and resident memory read from /proc (Linux), so the benchmark can measure a
// child process from outside without instrumenting it.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticksPerSecond: number | null = null;

function clockTicks(): number {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** User + system CPU time of a process (all its threads), in milliseconds. */
export function cpuTimeMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces; fields after its closing paren are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / clockTicks();
}

/** Resident set size in bytes (VmRSS), or null when the process is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export function procAvailable(): boolean {
  try {
    cpuTimeMs(process.pid);
    return rssBytes(process.pid) !== null;
  } catch {
    return false;
  }
}

export const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

/** The pid and all its descendants (a cluster primary and its workers; nginx master and workers). */
export function processTree(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parentOf.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) for (const [child, parent] of parentOf) if (parent === tree[i]) tree.push(child);
  return tree;
}

/** CPU time of a process and its descendants, ms (children that exited meanwhile are not counted). */
export function treeCpuTimeMs(pid: number): number {
  let total = 0;
  for (const p of processTree(pid)) {
    try {
      total += cpuTimeMs(p);
    } catch {
      // exited
    }
  }
  return total;
}

/** RSS of a process and its descendants, bytes, or null when the process is gone. */
export function treeRssBytes(pid: number): number | null {
  if (rssBytes(pid) === null) return null;
  return processTree(pid).reduce((sum, p) => sum + (rssBytes(p) ?? 0), 0);
}
