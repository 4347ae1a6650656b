// Starts a real PostgreSQL for tests and benches: initdb + postgres in a temp dir, listening on a
// free loopback port (and a socket in that dir), stopped and removed afterwards. As root the server
// runs as the postgres user (it refuses to run as root). No binaries: fail under CI, else skip.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { freePort } from './free-port.ts';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export interface TestPostgres {
  /** postgres://postgres@127.0.0.1:<port>/<database> (trust authentication on loopback, no password). */
  url(database?: string): string;
  /** A new, empty database; its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Stop the server (fast shutdown: connections are dropped), run `whileDown`, start it again on the same port and data. */
  restart(whileDown?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  /** Durable commits (fsync, synchronous_commit) as in production; off by default for fast tests. */
  durable?: boolean;
}

const BIN_DIRS = ['/usr/lib/postgresql/15/bin', '/usr/local/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/17/bin', '/usr/bin'];

/** The directory holding initdb and postgres, or null. */
export function findPostgresBinaries(): string | null {
  for (const dir of BIN_DIRS) {
    if (existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'postgres'))) return dir;
  }
  return null;
}

/** Why the PostgreSQL tests cannot run here (to skip with), or null when they can; throws under CI. */
export function postgresUnavailable(): string | null {
  if (findPostgresBinaries()) return null;
  const why = `PostgreSQL binaries (initdb, postgres) not found in ${BIN_DIRS.join(', ')}; install the postgresql package (apt-get install -y postgresql)`;
  if (process.env.CI) throw new Error(`${why}: required when CI is set`);
  return why;
}


const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;
/** The command line, run as the postgres user when we are root. */
const asOwner = (bin: string, args: string[]): [string, string[]] => (isRoot() ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args]);

let counter = 0;

export async function startPostgres(opts: StartPostgresOptions = {}): Promise<TestPostgres> {
  const bin = findPostgresBinaries();
  if (!bin) throw new Error(postgresUnavailable() ?? 'PostgreSQL binaries not found');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-pg-'));
  if (isRoot()) {
    const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    await chown(dir, uid, gid);
  }
  const data = path.join(dir, 'data');
  const [initCmd, initArgs] = asOwner(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--locale=C']);
  const init = spawnSync(initCmd, initArgs, { encoding: 'utf8' });
  if (init.status !== 0) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status}): ${init.stderr || init.stdout}`);
  }
  const port = await freePort();
  const settings = ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`, '-c', 'max_connections=100', '-c', 'shared_buffers=64MB'];
  if (!opts.durable) settings.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
  const [cmd, args] = asOwner(path.join(bin, 'postgres'), ['-D', data, '-p', String(port), ...settings]);
  const url = (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`;
  let server = await launch(cmd, args, url(), data).catch(async (err: Error) => {
    await rm(dir, { recursive: true, force: true });
    throw err;
  });

  const stop = async (): Promise<void> => {
    await server.halt();
    await rm(dir, { recursive: true, force: true });
  };

  return {
    url,
    async restart(whileDown) {
      await server.halt();
      await whileDown?.();
      server = await launch(cmd, args, url(), data);
    },
    async createDatabase(name = `switchyard_${process.pid}_${++counter}`) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
      const client = new pg.Client({ connectionString: url() });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return url(name);
    },
    stop,
  };
}

interface Running {
  /** Stop the server process (the data directory stays). */
  halt(): Promise<void>;
}

/** Start postgres and wait until it accepts a connection; the server's own log says why when it never does. */
async function launch(cmd: string, args: string[], url: string, data: string): Promise<Running> {
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const halt = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    // Fast shutdown (roll back open transactions, close connections), signalled to postgres itself:
    // runuser, its parent when we are root, does not pass signals on.
    const pid = await readFile(path.join(data, 'postmaster.pid'), 'utf8').then((t) => Number(t.split('\n')[0]), () => child.pid!);
    const signal = (sig: NodeJS.Signals) => {
      try {
        process.kill(pid, sig);
      } catch {
        child.kill(sig);
      }
    };
    signal('SIGINT');
    const timer = setTimeout(() => signal('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`postgres exited during start-up: ${log}`);
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      return { halt };
    } catch (err) {
      await client.end().catch(() => undefined);
      if (Date.now() > deadline) {
        await halt();
        throw new Error(`postgres did not accept connections within 30 s: ${(err as Error).message}\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
