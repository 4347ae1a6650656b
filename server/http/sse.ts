// Server-sent events to clients, with back-pressure, and the abort signal that fires when a client
// goes away before its answer is complete.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StopSignal, type ClientSignal } from '../stop-signal.ts';

/**
 * Fires once when the client closes the connection before its response is complete. Not an
 * AbortSignal (one costs a few microseconds to create, per request): just what the dispatcher uses.
 */
class ClientClosed extends StopSignal {
  constructor(res: ServerResponse) {
    super();
    res.once('close', () => {
      if (!res.writableFinished) this.abort(new DOMException('client closed the connection', 'AbortError'));
    });
  }
}

export function clientAbortSignal(_req: IncomingMessage, res: ServerResponse): ClientSignal {
  return new ClientClosed(res);
}

export function startSse(res: ServerResponse, headers: Record<string, string> = {}): void {
  res.statusCode = 200;
  res.setHeader('content-type', 'text/event-stream; charset=utf-8');
  res.setHeader('cache-control', 'no-cache, no-transform');
  res.setHeader('connection', 'keep-alive');
  res.setHeader('x-accel-buffering', 'no');
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.flushHeaders();
}

/** A client that reads nothing for this long is cut off, so it cannot pin a model slot forever. */
export const DRAIN_TIMEOUT_MS = 30_000;

/** Write one SSE event; waits for 'drain' when the socket buffer is full (at most DRAIN_TIMEOUT_MS). */
export async function sendEvent(res: ServerResponse, data: unknown, event?: string): Promise<void> {
  if (res.destroyed || res.writableEnded) return;
  const payload = (event ? `event: ${event}\n` : '') + `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
  if (!res.write(payload)) {
    await new Promise<void>((resolve) => {
      // Destroying the response fires 'close', which aborts the upstream call via the client signal.
      const timer = setTimeout(() => res.destroy(), DRAIN_TIMEOUT_MS);
      const done = () => {
        clearTimeout(timer);
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  }
}
