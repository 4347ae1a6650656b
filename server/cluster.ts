// SWITCHYARD_WORKERS > 1: the primary process serves nothing itself; it starts that many proxy
// processes (node:cluster) sharing the proxy port, restarts one that dies, and on SIGTERM/SIGINT
// stops them all, each finishing its in-flight requests and flushing its writes first.
//
// Worker 1 starts alone first: it migrates the database and serves the admin page; the others
// start once it is ready. Each worker is a whole gateway with its own SQLite
// connection (WAL lets them write to one file), router state, breakers and rate-limit buckets.
import cluster, { type Worker } from 'node:cluster';
import type { AppConfig } from './config.ts';
import type { Logger } from './logger.ts';
import { AggregatorRegistry, type Registry } from 'prom-client';

interface WorkerReady {
  type: 'ready';
  proxyPort: number;
  adminPort: number | null;
}

/** More than this many unplanned exits in RESTART_WINDOW_MS and the primary gives up (exit 1). */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;
const RESTART_DELAY_MS = 1_000;

export function workerId(): number {
  return cluster.isWorker ? Number(process.env.SWITCHYARD_WORKER_ID ?? cluster.worker?.id ?? 0) : 0;
}

export async function supervise(config: AppConfig, logger: Logger): Promise<void> {
  const workers = new Map<number, Worker>();
  /** Workers that reported ready: only they hold requests and writes a stop must not lose. */
  const serving = new WeakSet<Worker>();
  const restarts: number[] = [];
  let stopping = false;
  // GET /metrics on any worker answers for all of them: the primary gathers and sums.
  const aggregator = new AggregatorRegistry();

  const start = (id: number): Promise<WorkerReady> =>
    new Promise((resolve, reject) => {
      // Every worker asks for the configured port (even 0): the primary holds one listening socket
      // per address and port asked for, and hands the connections to the workers in turn.
      const w = cluster.fork({ SWITCHYARD_WORKER_ID: String(id) });
      workers.set(id, w);
      let ready = false;
      w.on('message', (m: unknown) => {
        if (isMetricsRequest(m)) {
          aggregator.clusterMetrics().then(
            (text) => w.isConnected() && w.send({ type: METRICS_RES, id: m.id, text }),
            (e: Error) => w.isConnected() && w.send({ type: METRICS_RES, id: m.id, error: e.message }),
          );
          return;
        }
        if (!ready && typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'ready') {
          ready = true;
          serving.add(w);
          resolve(m as WorkerReady);
        }
      });
      w.once('exit', (code, signal) => {
        if (workers.get(id) === w) workers.delete(id);
        if (!ready) reject(new Error(`worker ${id} exited (${code ?? signal}) before it was ready`));
        if (stopping) {
          if (workers.size === 0) allStopped();
          return;
        }
        const now = Date.now();
        restarts.push(now);
        while (restarts.length && restarts[0]! < now - RESTART_WINDOW_MS) restarts.shift();
        if (restarts.length > MAX_RESTARTS) {
          logger.error('workers keep exiting; stopping', { restarts: restarts.length, windowMs: RESTART_WINDOW_MS });
          void stop('restart limit', 1);
          return;
        }
        logger.error('worker exited; restarting it', { worker: id, code, signal });
        // Not unref'd: with every worker gone this timer is what keeps the primary alive to restart them.
        setTimeout(() => {
          if (!stopping) start(id).catch((e: Error) => logger.error('worker restart failed', { worker: id, err: e.message }));
        }, RESTART_DELAY_MS);
      });
    });

  let allStopped: () => void = () => undefined;
  let exitCode = 0;
  const stop = async (why: string, code = 0): Promise<void> => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    logger.info('stopping workers', { why, workers: workers.size });
    const gone = new Promise<void>((r) => {
      allStopped = r;
      if (workers.size === 0) r();
    });
    for (const w of workers.values()) w.process.kill('SIGTERM');
    // Each worker has the grace period for its requests plus time to flush; then it is killed.
    const force = setTimeout(() => {
      logger.warn('workers did not stop in time; killing them');
      for (const w of workers.values()) w.process.kill('SIGKILL');
    }, config.shutdownGraceMs + 15_000);
    force.unref();
    await gone;
    clearTimeout(force);
    logger.info('stopped', { why });
    process.exit(exitCode);
  };
  // A serving worker that exits non-zero while stopping (could not flush) makes the whole stop
  // fail. One still starting up has nothing to lose (migrations are transactions): a SIGTERM that
  // arrives during start-up is a clean stop.
  cluster.on('exit', (w, code) => {
    if (stopping && code !== 0 && serving.has(w)) exitCode = 1;
  });
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  let first: WorkerReady;
  try {
    first = await start(1);
  } catch (e) {
    if (stopping) return; // a signal came first: stop() exits
    logger.error('the first worker could not start', { err: (e as Error).message });
    process.exit(1);
  }
  const ids = Array.from({ length: config.workers - 1 }, (_, i) => i + 2);
  try {
    await Promise.all(ids.map((id) => start(id)));
  } catch (e) {
    if (stopping) return;
    logger.error('a worker could not start', { err: (e as Error).message });
    await stop('start-up failed', 1);
    return;
  }
  logger.info('switchyard workers ready', { workers: config.workers, proxy: `http://${config.host}:${first.proxyPort}`, pids: [...workers.values()].map((w) => w.process.pid) });
  if (process.send) process.send({ type: 'ready', proxyPort: first.proxyPort, adminPort: first.adminPort, workers: config.workers });
}

const METRICS_REQ = 'switchyard:metrics-req';
const METRICS_RES = 'switchyard:metrics-res';

function isMetricsRequest(m: unknown): m is { type: typeof METRICS_REQ; id: number } {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === METRICS_REQ;
}

/**
 * In a worker: answer the primary's metric gathering from `registry`, and return a function that
 * asks the primary for every worker's metrics summed (null outside a cluster).
 */
export function clusterMetrics(registry: Registry): (() => Promise<string>) | null {
  if (!cluster.isWorker || !process.send) return null;
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry(); // installs the worker's listener for the primary's requests
  let next = 0;
  const waiting = new Map<number, { resolve: (t: string) => void; reject: (e: Error) => void }>();
  process.on('message', (m: unknown) => {
    if (typeof m !== 'object' || m === null || (m as { type?: unknown }).type !== METRICS_RES) return;
    const { id, text, error } = m as { id: number; text?: string; error?: string };
    const w = waiting.get(id);
    if (!w) return;
    waiting.delete(id);
    if (error !== undefined || text === undefined) w.reject(new Error(error ?? 'no answer'));
    else w.resolve(text);
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error('the cluster primary did not answer within 6 s'));
      }, 6000);
      timer.unref();
      waiting.set(id, { resolve: (t) => { clearTimeout(timer); resolve(t); }, reject: (e) => { clearTimeout(timer); reject(e); } });
      process.send!({ type: METRICS_REQ, id });
    });
}
