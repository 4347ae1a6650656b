// Starts the real Switchyard entry (server/main.ts) as its own process on ephemeral loopback ports,
// with a temp data dir and a config file listing the given models; used by the bench and by tests.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ModelSpecInput } from '../../server/config.ts';
import { spawnNodeChild, type NodeChild, type ReadyMessage } from './child.ts';

export interface SwitchyardReady extends ReadyMessage {
  proxyPort: number;
  adminPort: number;
}

export interface SwitchyardProcess extends NodeChild<SwitchyardReady> {
  url: string;
  dataDir: string;
  dbPath: string;
  /** Remove the data dir (after stop()) unless it was given by the caller. */
  cleanup(): Promise<void>;
}

export interface SwitchyardOptions {
  models: ModelSpecInput[];
  /** More config-file fields beside the models (e.g. keywordRules). */
  config?: Record<string, unknown>;
  /** Extra environment (limits, timeouts); the ports, data dir and config are set here. */
  env?: Record<string, string>;
  /** Use this data dir (kept on cleanup) instead of a fresh temp dir. */
  dataDir?: string;
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir=...']. */
  nodeArgs?: string[];
  readyTimeoutMs?: number;
  inheritStdout?: boolean;
}

export async function spawnSwitchyard(opts: SwitchyardOptions): Promise<SwitchyardProcess> {
  const dataDir = opts.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'switchyard-proc-')));
  const configPath = path.join(dataDir, 'switchyard.config.json');
  await writeFile(configPath, JSON.stringify({ ...opts.config, models: opts.models }, null, 2));
  const env: Record<string, string> = {
    SWITCHYARD_LOG_LEVEL: 'warn',
    JUDGE_ENABLED: '0',
    ...opts.env,
    CLAUDE_PROXY_PORT: '0',
    ADMIN_DASHBOARD_PORT: '0',
    SWITCHYARD_HOST: '127.0.0.1',
    SWITCHYARD_DATA_DIR: dataDir,
    SWITCHYARD_CONFIG: configPath,
  };
  let child: NodeChild<SwitchyardReady>;
  try {
    child = await spawnNodeChild<SwitchyardReady>('server/main.ts', { env, nodeArgs: opts.nodeArgs, readyTimeoutMs: opts.readyTimeoutMs ?? 30_000, inheritStdout: opts.inheritStdout });
  } catch (e) {
    if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    throw e;
  }
  return {
    ...child,
    url: `http://127.0.0.1:${child.ready.proxyPort}`,
    dataDir,
    dbPath: path.join(dataDir, 'switchyard.db'),
    cleanup: async () => {
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
