// Runs a TypeScript entry (Switchyard's server/main.ts, the bench upstream) as a separate Node
// process with an IPC channel, waits for its `{type:'ready'}` message, and stops it with SIGTERM.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface ReadyMessage {
  type: 'ready';
  [field: string]: unknown;
}

export interface NodeChild<R extends ReadyMessage = ReadyMessage> {
  child: ChildProcess;
  pid: number;
  ready: R;
  /** Everything the child wrote to stderr so far (bounded). */
  stderr(): string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code or signal. */
  stop(graceMs?: number): Promise<number | string>;
}

export interface SpawnOptions {
  env: Record<string, string>;
  /** Extra node flags before `--import tsx` (e.g. --cpu-prof). */
  nodeArgs?: string[];
  readyTimeoutMs?: number;
  /** Forward the child's stdout to ours (default: dropped). */
  inheritStdout?: boolean;
}

const MAX_STDERR = 64 * 1024;

/** The environment a child gets: only what Node needs plus `env`, so no host secrets leak in. */
export function childEnv(env: Record<string, string>): Record<string, string> {
  const base: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ']) {
    const v = process.env[k];
    if (v !== undefined) base[k] = v;
  }
  return { ...base, ...env };
}

export async function spawnNodeChild<R extends ReadyMessage = ReadyMessage>(script: string, opts: SpawnOptions): Promise<NodeChild<R>> {
  const child = fork(path.resolve(repoRoot, script), [], {
    cwd: repoRoot,
    env: childEnv(opts.env),
    execArgv: [...(opts.nodeArgs ?? []), '--import', 'tsx'],
    stdio: ['ignore', opts.inheritStdout ? 'inherit' : 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < MAX_STDERR) stderr += d.toString();
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });

  const ready = await new Promise<R>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not report ready within ${opts.readyTimeoutMs ?? 20_000} ms; stderr: ${stderr.slice(0, 2000)}`));
    }, opts.readyTimeoutMs ?? 20_000);
    child.on('message', (m: unknown) => {
      if (typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'ready') {
        clearTimeout(timer);
        resolve(m as R);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code}) before it was ready; stderr: ${stderr.slice(0, 2000)}`));
    });
  });
  // The IPC channel must not keep the parent alive once the child is up.
  child.channel?.unref();

  return {
    child,
    pid: child.pid!,
    ready,
    stderr: () => stderr,
    exited,
    stop: async (graceMs = 15_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(force);
      return code;
    },
  };
}
