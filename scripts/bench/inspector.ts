// Live-heap measurement of a child started with --inspect=127.0.0.1:0: over the DevTools protocol,
// force a full GC and read the V8 heap in use. RSS alone cannot show a leak on a big machine,
// where V8 grows its heap lazily long before it collects.
import { WebSocket } from 'undici';

export interface HeapProbe {
  /** Full GC, then the V8 heap in use, MB. */
  heapAfterGcMb(): Promise<number>;
  close(): void;
}

/** The DevTools URL Node prints on stderr ("Debugger listening on ws://..."), once it is there. */
export async function inspectorUrl(stderr: () => string, timeoutMs = 5000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = /Debugger listening on (ws:\/\/\S+)/.exec(stderr());
    if (m) return m[1]!;
    if (Date.now() > deadline) throw new Error('the child printed no inspector URL (was it started with --inspect?)');
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function attachHeapProbe(url: string): Promise<HeapProbe> {
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('error', () => reject(new Error(`cannot connect to the inspector at ${url}`)), { once: true });
  });
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  ws.addEventListener('message', (ev) => {
    const msg = JSON.parse(String(ev.data)) as { id?: number; result?: unknown; error?: { message: string } };
    if (msg.id === undefined) return;
    const p = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.error) p?.reject(new Error(msg.error.message));
    else p?.resolve(msg.result);
  });
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  return {
    heapAfterGcMb: async () => {
      await call('HeapProfiler.collectGarbage');
      const usage = (await call('Runtime.getHeapUsage')) as { usedSize: number };
      return Math.round((usage.usedSize / 1024 / 1024) * 10) / 10;
    },
    close: () => ws.close(),
  };
}
