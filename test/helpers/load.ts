// Helpers for the reliability tests: seeded randomness, bounded concurrent request loops, raw
// HTTP bodies, heap measurement after GC, a closed port, and the real server as a child process.
import http from 'node:http';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { mulberry32 } from '../../router/bandit.ts';
import { freePort } from '../../scripts/bench/nginx.ts';

export { spawnSwitchyard, type SwitchyardProcess } from '../../scripts/bench/switchyard.ts';

/** Seeded PRNG (the router's mulberry32), so fault mixes are reproducible. */
export const seededRng = mulberry32;

/** Run `count` tasks with at most `concurrency` in flight; results in task order. */
export async function runConcurrent<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** Parsed JSON, or undefined when the body was not JSON. */
  json: unknown;
}

/** POST exact bytes (invalid UTF-8, huge bodies) with node:http on a fresh connection. */
export function rawPost(url: string, body: Buffer | string, headers: Record<string, string> = {}, timeoutMs = 10_000): Promise<RawResponse> {
  const u = new URL(url);
  const payload = typeof body === 'string' ? Buffer.from(body) : body;
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': String(payload.length), ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

let gcFn: (() => void) | null = null;

/** Force a full GC (exposing it at run time if the process was not started with --expose-gc). */
export function forceGc(): void {
  if (!gcFn) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (g) gcFn = g;
    else {
      v8.setFlagsFromString('--expose-gc');
      gcFn = runInNewContext('gc') as () => void;
    }
  }
  gcFn();
  gcFn();
}

/** Heap in use after a full GC, in bytes. */
export function heapAfterGc(): number {
  forceGc();
  return process.memoryUsage().heapUsed;
}

/** A loopback port with nothing listening on it (connections are refused). */
export const closedPort = freePort;

/** A client's own request id (x-request-id), unique per call; the gateway stores it as the correlation id. */
let idCounter = 0;
export function requestId(prefix = 'rel'): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${(idCounter++).toString(36)}`;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface TimedResponse {
  /** The id the gateway minted and stores the request under (its x-request-id answer header). */
  id: string;
  /** The x-request-id we sent, stored as the request's correlation id. */
  correlationId: string;
  status: number;
  ms: number;
  text: string;
  json: any;
}

/**
 * POST JSON with a fresh x-request-id and time the whole exchange. A response slower than
 * `boundMs` fails the calling test, and the fetch itself is aborted shortly after, so a hang
 * never hangs the suite.
 */
export async function timedPost(url: string, body: unknown, boundMs: number, headers: Record<string, string> = {}): Promise<TimedResponse> {
  const correlationId = requestId('timed');
  const t0 = Date.now();
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': correlationId, ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(boundMs + 2000),
  });
  const text = await res.text();
  const ms = Date.now() - t0;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (ms >= boundMs) throw new Error(`${url} took ${ms} ms, more than the ${boundMs} ms bound`);
  return { id: res.headers.get('x-request-id') ?? '', correlationId, status: res.status, ms, text, json };
}

/** The data payloads of an SSE body, JSON-parsed ('[DONE]' stays a string). */
export function sseEvents(text: string): any[] {
  return text
    .split('\n\n')
    .map((block) => block.split('\n').find((l) => l.startsWith('data: '))?.slice(6))
    .filter((d): d is string => d !== undefined)
    .map((d) => (d === '[DONE]' ? d : JSON.parse(d)));
}
