// A database the gateway cannot use stops the real process at start-up with one line that names
// the file and the fix (no stack trace), instead of an error naming nothing, or (read-only file)
// a gateway that starts and then cannot store anything. The tests run as root in CI, where chmod
// does not stop root from writing: the read-only cases use `chattr +i` (immutable, which binds
// root too) and are skipped with a message where the file system does not support it.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnSwitchyard } from '../helpers/load.ts';
import { openSqliteStore } from '../../server/store/sqlite.ts';

const MODELS = [{ id: 'demo-fast', provider: 'demo' as const, baseUrl: 'demo://local', upstreamModel: 'demo-fast' }];

/** Start the real process with SWITCHYARD_DB = file; resolves to its start-up error (stderr), or throws if it started. */
async function startupError(file: string): Promise<string> {
  let started: Awaited<ReturnType<typeof spawnSwitchyard>> | undefined;
  try {
    started = await spawnSwitchyard({ models: MODELS, env: { SWITCHYARD_DB: file }, readyTimeoutMs: 20_000 });
  } catch (e) {
    return (e as Error).message;
  }
  await started.stop();
  await started.cleanup();
  throw new Error(`the gateway started with SWITCHYARD_DB=${file}`);
}

function assertExplains(message: string, file: string, fix: RegExp): void {
  assert.ok(message.includes(`'${file}'`), `names the file: ${message}`);
  assert.match(message, /Fix: /);
  assert.match(message, fix);
  assert.doesNotMatch(message, /\n\s+at /, 'no stack trace');
}

/** Whether `chattr +i` works here (ext4 and similar, as root with CAP_LINUX_IMMUTABLE). */
async function immutableSupported(dir: string): Promise<boolean> {
  const probe = path.join(dir, 'chattr-probe');
  await writeFile(probe, 'x');
  try {
    execFileSync('chattr', ['+i', probe], { stdio: 'ignore' });
    execFileSync('chattr', ['-i', probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    await rm(probe, { force: true });
  }
}

const chattr = (flag: '+i' | '-i', p: string) => execFileSync('chattr', [flag, p], { stdio: 'ignore' });

describe('start-up errors name the database file and the fix', () => {
  let dir: string;
  let immutable = false;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-startup-'));
    immutable = await immutableSupported(dir);
  });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  test('a corrupt file (not SQLite at all)', async () => {
    const file = path.join(dir, 'garbage.db');
    await writeFile(file, Buffer.alloc(16_384, 0x41));
    assertExplains(await startupError(file), file, /not a SQLite database or is damaged.*restore it from a backup.*mv /);
  });

  test('a file with a SQLite header and damaged pages', async () => {
    const file = path.join(dir, 'damaged.db');
    const store = await openSqliteStore({ path: file });
    await store.close();
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(file);
    bytes.fill(0xee, 100); // keep the 100-byte header, overwrite the schema and every page
    await writeFile(file, bytes);
    assertExplains(await startupError(file), file, /not a SQLite database or is damaged/);
  });

  test('a read-only database file (immutable, so root cannot write it either)', async (t) => {
    if (!immutable) return t.skip('chattr +i is not supported here: cannot make a file read-only for root');
    const file = path.join(dir, 'readonly.db');
    const store = await openSqliteStore({ path: file });
    await store.close();
    chattr('+i', file);
    try {
      assertExplains(await startupError(file), file, /read-only for this process.*writable.*chattr -i/);
    } finally {
      chattr('-i', file);
    }
  });

  test('a database in a read-only directory (immutable): its -wal file cannot be made', async (t) => {
    if (!immutable) return t.skip('chattr +i is not supported here: cannot make a directory read-only for root');
    const ro = path.join(dir, 'ro-dir');
    await mkdir(ro);
    const file = path.join(ro, 'switchyard.db');
    chattr('+i', ro);
    try {
      assertExplains(await startupError(file), file, new RegExp(`could not open or create it.*make '${ro.replace(/[/.]/g, '\\$&')}' a directory writable`));
    } finally {
      chattr('-i', ro);
    }
  });

  test('a database path through a regular file (not a directory)', async () => {
    const plain = path.join(dir, 'plain-file');
    await writeFile(plain, 'not a directory');
    const file = path.join(plain, 'sub', 'switchyard.db');
    assertExplains(await startupError(file), file, /Cannot create the directory.*ENOTDIR.*SWITCHYARD_DATA_DIR \/ SWITCHYARD_DB/);
  });

  test('a database path that is a directory', async () => {
    const file = path.join(dir, 'is-a-dir.db');
    await mkdir(file);
    assertExplains(await startupError(file), file, /is a directory.*point SWITCHYARD_DB at a file/);
  });
});
