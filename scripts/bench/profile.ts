// Reads a V8 .cpuprofile (node --cpu-prof) and ranks functions by self time, so the hot path's
// cost can be attributed to named functions in our code, in dependencies, or in Node itself.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot } from './child.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface HotFunction {
  function: string;
  /** repo-relative file, node_modules/<pkg>/..., or node:internal/... */
  where: string;
  selfMs: number;
  /** Share of busy (non-idle) samples. */
  selfPct: number;
}

export interface ProfileSummary {
  file: string;
  /** Start-up and warm-up left out of the ranking. */
  skippedMs: number;
  busyMs: number;
  gcPct: number;
  top: HotFunction[];
  /** Self time grouped by origin: our code, each dependency, Node internals, native/program. */
  byOrigin: { origin: string; selfPct: number }[];
}

function where(url: string, line: number): string {
  if (!url) return '(native)';
  let p = url.startsWith('file://') ? decodeURIComponent(new URL(url).pathname) : url;
  if (p.startsWith(repoRoot)) p = path.relative(repoRoot, p);
  // Files run through tsx report line 0 for everything: print a line only when there is one.
  return line > 0 ? `${p}:${line + 1}` : p;
}

function origin(loc: string): string {
  if (loc === '(native)') return 'native / V8 builtins';
  if (loc.startsWith('node:')) return 'node internals';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(loc);
  if (nm) return `dependency: ${nm[1]}`;
  return `switchyard: ${loc.split('/')[0]}`;
}

/** Rank functions by self time, ignoring the first `skipFirstMs` of the profile (start-up, warm-up). */
export async function summarizeProfile(file: string, topN = 20, skipFirstMs = 0): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
  const selfById = new Map<number, number>();
  let elapsedUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    elapsedUs += delta;
    if (elapsedUs < skipFirstMs * 1000) continue;
    const id = profile.samples[i]!;
    selfById.set(id, (selfById.get(id) ?? 0) + delta);
  }
  const byFunction = new Map<string, HotFunction>();
  const byOriginUs = new Map<string, number>();
  let busyUs = 0;
  let gcUs = 0;
  for (const [id, us] of selfById) {
    const frame = byId.get(id)!.callFrame;
    let name = frame.functionName || '(anonymous)';
    if (name === '(idle)') continue;
    busyUs += us;
    if (name === '(garbage collector)') gcUs += us;
    let loc = frame.url ? where(frame.url, frame.lineNumber) : '(native)';
    // A nameless native frame (an addon or builtin call) is only useful with the JS that called it.
    const parent = parentOf.get(id) === undefined ? undefined : byId.get(parentOf.get(id)!)!.callFrame;
    if (!frame.functionName && !frame.url && parent?.url) {
      name = `(native, called from ${parent.functionName || 'anonymous'})`;
      loc = where(parent.url, parent.lineNumber);
    }
    const key = `${name}\u0000${loc}`;
    const entry = byFunction.get(key) ?? { function: name, where: loc, selfMs: 0, selfPct: 0 };
    entry.selfMs += us / 1000;
    byFunction.set(key, entry);
    const o = name === '(garbage collector)' ? 'garbage collector' : name === '(program)' ? 'program (native, unattributed)' : origin(loc);
    byOriginUs.set(o, (byOriginUs.get(o) ?? 0) + us);
  }
  const pct = (us: number) => Math.round((1000 * us) / Math.max(1, busyUs)) / 10;
  const top = [...byFunction.values()]
    .sort((a, b) => b.selfMs - a.selfMs)
    .slice(0, topN)
    .map((f) => ({ ...f, selfMs: Math.round(f.selfMs), selfPct: pct(f.selfMs * 1000) }));
  const byOrigin = [...byOriginUs.entries()].sort((a, b) => b[1] - a[1]).map(([o, us]) => ({ origin: o, selfPct: pct(us) }));
  return { file: path.relative(repoRoot, file), skippedMs: skipFirstMs, busyMs: Math.round(busyUs / 1000), gcPct: pct(gcUs), top, byOrigin };
}
