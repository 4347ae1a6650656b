// Starts a real redis-server (the Debian package's binary) in a temp dir on a free loopback port,
// for tests of state shared between gateway instances. Without the binary a test fails under CI
// (env CI set) and is skipped with a message when run by hand.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { freePort } from './free-port.ts';
import os from 'node:os';
import path from 'node:path';

export interface TestRedis {
  url: string;
  port: number;
  /** Stop the server (SIGTERM, waits for exit); start() brings it back on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Freeze the server (SIGSTOP): connections stay open, nothing is answered; resume() thaws it. */
  pause(): void;
  resume(): void;
  /** Stop for good and remove the temp dir. */
  close(): Promise<void>;
}

const BINARY = process.env.REDIS_SERVER_BIN ?? 'redis-server';

/** Why Redis tests cannot run here, or null when they can. Under CI a missing binary is an error. */
export function redisUnavailable(): string | null {
  const probe = spawnSync(BINARY, ['--version'], { encoding: 'utf8' });
  if (probe.error === undefined && probe.status === 0) return null;
  const why = `${BINARY} not found (install it: apt-get install -y redis-server)`;
  if (process.env.CI) throw new Error(`${why}; CI must run the Redis tests`);
  return `skipped: ${why}`;
}


function launch(dir: string, port: number, password?: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(BINARY, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'yes', '--loglevel', 'notice', ...(password ? ['--requirepass', password] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const onData = (b: Buffer) => {
      out += b.toString();
      if (/Ready to accept connections/i.test(out)) {
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}) before it was ready: ${out.slice(-500)}`)));
    child.once('error', reject);
  });
}

/** A fresh redis-server, ready for connections; with a password, the URL carries it (`redis://:<password>@...`). */
export async function startRedis(opts: { password?: string } = {}): Promise<TestRedis> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-redis-'));
  let port = 0;
  let child: ChildProcess | null = null;
  for (let attempt = 0; child === null; attempt++) {
    port = await freePort();
    try {
      child = await launch(dir, port, opts.password);
    } catch (e) {
      if (attempt >= 3) throw e; // the port was taken between probing and binding: try another
    }
  }
  const stop = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    child = null;
    c.kill('SIGCONT'); // a paused server cannot act on SIGTERM
    await new Promise<void>((r) => {
      c.once('exit', () => r());
      c.kill('SIGTERM');
    });
  };
  return {
    url: opts.password ? `redis://:${encodeURIComponent(opts.password)}@127.0.0.1:${port}` : `redis://127.0.0.1:${port}`,
    port,
    stop,
    start: async () => {
      if (!child) child = await launch(dir, port, opts.password);
    },
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    close: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
