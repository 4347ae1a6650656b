// Shared machinery for the stand-in upstreams: a node:http server that records requests and
// plays scripted behaviours (ok, error, stall, drop, malformed, trickle) in each wire dialect.
import http from 'node:http';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';

export type Behaviour =
  /** Answer normally: `text` or `reply from <model>: <last user message>`; with `toolCalls`, call those tools (finish reason: tool calls). */
  | { kind: 'ok'; text?: string; delayMs?: number; finishReason?: 'stop' | 'length'; toolCalls?: ToolCallSpec[]; thinking?: { text: string; signature: string }; usage?: Partial<Answer['usage']> }
  /** The provider's real error body for `status`, with an optional Retry-After header value. */
  | { kind: 'error'; status: number; message?: string; retryAfter?: string; delayMs?: number }
  /** Accept and never answer (after `afterChunks` stream frames, if set) until the stand-in closes. */
  | { kind: 'stall'; afterChunks?: number }
  /** Send `afterChunks` frames (default 2; half the body for JSON) then destroy the socket. */
  | { kind: 'drop-mid-stream'; afterChunks?: number; text?: string }
  /** Send `afterChunks` frames (default 2) then end the response cleanly, without the terminal event. */
  | { kind: 'truncate'; afterChunks?: number }
  /** A 2xx with an invalid JSON body, or a stream with one broken data line. */
  | { kind: 'malformed' }
  /** Send each frame `intervalMs` apart. */
  | { kind: 'trickle'; intervalMs: number; text?: string };

export type BehaviourInput = Behaviour | 'ok' | 'stall' | 'drop-mid-stream' | 'truncate' | 'malformed' | 'trickle';

export interface RecordedRequest {
  method: string;
  /** Path with query string, e.g. /v1beta/models/x:streamGenerateContent?alt=sse */
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body, or undefined when there was none or it was not JSON. */
  body: unknown;
  rawBody: string;
}

/** What the stand-in sends: status, content type and the body as separately written frames. */
export interface Reply {
  status: number;
  contentType: string;
  frames: string[];
  headers?: Record<string, string>;
}

/** A tool call a stand-in makes; `id` defaults to a per-format id with the call's position. */
export interface ToolCallSpec {
  id?: string;
  name: string;
  arguments: Record<string, unknown>;
}

export interface Answer {
  model: string;
  text: string;
  finishReason: 'stop' | 'length' | 'tool_calls';
  inputTokens: number;
  outputTokens: number;
  toolCalls: ToolCallSpec[];
  thinking?: { text: string; signature: string };
  /** Cache and reasoning counts to report, when scripted. */
  usage: { cacheRead?: number; cacheWrite?: number; reasoning?: number };
}

export type Route =
  | {
      type: 'generate';
      model: string;
      stream: boolean;
      messages: { role: string; text: string }[];
      render: (answer: Answer) => Reply;
      malformedFrame: string;
      /** The call a request that forces one tool gets when nothing is scripted (input: the answer text as JSON). */
      forcedTool?: (text: string | undefined) => ToolCallSpec[] | undefined;
    }
  | { type: 'static'; reply: Reply };

/** One wire format: how to answer, how errors look, what gets rejected before any behaviour. */
export interface Dialect {
  basePath: string;
  errorBody(status: number, message?: string): unknown;
  /** Rejections the real API makes regardless of scripted behaviour (missing key, bad body). */
  validate?(req: RecordedRequest): Reply | undefined;
  route(req: RecordedRequest): Route | undefined;
}

export interface StandInOptions {
  /** Default answer text (else derived from the request). */
  text?: string;
  /** When set, requests must carry this key (otherwise the dialect's own presence rules apply). */
  apiKey?: string;
  /** Model names served by the model-list endpoint. */
  models?: string[];
  /** Behaviour when nothing is queued (default 'ok'). */
  behaviour?: BehaviourInput;
}

export interface StandIn {
  /** Base URL to put in ModelSpec.baseUrl. */
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** Set the default behaviour for the following requests. */
  behave(b: BehaviourInput): void;
  /** Queue behaviours consumed one per request, before the default applies again. */
  enqueue(...b: BehaviourInput[]): void;
  /** Resolve once at least `count` requests have been recorded. */
  waitForRequests(count: number): Promise<void>;
  /** TCP connections accepted so far (keep-alive reuse shows as fewer connections than requests). */
  connectionCount(): number;
  /** Clear recorded requests and the queue; behaviour back to 'ok'. */
  reset(): void;
  close(): Promise<void>;
}

export function normalizeBehaviour(b: BehaviourInput): Behaviour {
  if (typeof b !== 'string') return b;
  if (b === 'trickle') return { kind: 'trickle', intervalMs: 20 };
  return { kind: b } as Behaviour;
}

export function jsonReply(status: number, body: unknown, headers?: Record<string, string>): Reply {
  return { status, contentType: 'application/json', frames: [JSON.stringify(body)], ...(headers ? { headers } : {}) };
}

/** Split text into word chunks (about two words each) so streams have several deltas. */
export function chunkWords(text: string): string[] {
  const words = text.match(/\S+\s*/g) ?? [text];
  const chunks: string[] = [];
  for (let i = 0; i < words.length; i += 2) chunks.push(words.slice(i, i + 2).join(''));
  return chunks.length > 0 ? chunks : [''];
}

export function estimate(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

function clip(text: string, max: number): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > max ? oneLine.slice(0, max) : oneLine;
}

function answerFor(route: Extract<Route, { type: 'generate' }>, text: string | undefined, b: Behaviour): Answer {
  const ok = b.kind === 'ok' ? b : undefined;
  const lastUser = [...route.messages].reverse().find((m) => m.role === 'user' && m.text !== '')?.text ?? '';
  const forced = ok?.toolCalls ? undefined : route.forcedTool?.(text);
  const toolCalls = ok?.toolCalls ?? forced ?? [];
  // A model forced to call a tool answers with the call alone (the scripted text became its input).
  const answer = forced || (toolCalls.length > 0 && text === undefined) ? '' : text ?? `reply from ${route.model}: ${clip(lastUser, 60)}`;
  return {
    model: route.model,
    text: answer,
    finishReason: toolCalls.length > 0 ? 'tool_calls' : ok?.finishReason ?? 'stop',
    inputTokens: estimate(route.messages.map((m) => m.text).join('\n')),
    outputTokens: estimate(answer + JSON.stringify(toolCalls)),
    toolCalls,
    ...(ok?.thinking ? { thinking: ok.thinking } : {}),
    usage: { ...ok?.usage },
  };
}

function writeFrame(res: ServerResponse, frame: string): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed) return resolve();
    res.write(frame, () => resolve());
  });
}

/** `complete` is false when only part of the reply will be sent (drop, truncate, stall). */
function writeHead(res: ServerResponse, reply: Reply, complete = true): void {
  const headers: Record<string, string> = { 'content-type': reply.contentType, ...reply.headers };
  // Complete JSON answers carry a length like the real APIs; streams and cut-off bodies are chunked.
  if (complete && reply.frames.length === 1 && !reply.contentType.includes('event-stream') && !reply.contentType.includes('ndjson')) {
    headers['content-length'] = String(Buffer.byteLength(reply.frames[0]!));
  }
  res.writeHead(reply.status, headers);
  res.flushHeaders();
}

async function sendReply(res: ServerResponse, reply: Reply, intervalMs: number, signal: AbortSignal): Promise<void> {
  writeHead(res, reply);
  for (let i = 0; i < reply.frames.length; i++) {
    if (i > 0 && intervalMs > 0) await delay(intervalMs, undefined, { signal });
    await writeFrame(res, reply.frames[i]!);
  }
  res.end();
}

/** Frames to send before a drop or stall: stream frames as they are; a single JSON body split in half. */
function leadingFrames(reply: Reply, count: number): string[] {
  if (reply.frames.length === 1) return [reply.frames[0]!.slice(0, Math.floor(reply.frames[0]!.length / 2))];
  return reply.frames.slice(0, count);
}

export async function startStandIn(dialect: Dialect, opts: StandInOptions = {}): Promise<StandIn> {
  const requests: RecordedRequest[] = [];
  const queue: Behaviour[] = [];
  let fallback = normalizeBehaviour(opts.behaviour ?? 'ok');
  let connections = 0;
  const sockets = new Set<Socket>();
  const waiters: { count: number; resolve: () => void }[] = [];
  const lifetime = new AbortController();

  const notify = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (requests.length >= waiters[i]!.count) waiters.splice(i, 1)[0]!.resolve();
    }
  };

  async function play(route: Route, b: Behaviour, res: ServerResponse, signal: AbortSignal): Promise<void> {
    if ((b.kind === 'ok' || b.kind === 'error') && b.delayMs) await delay(b.delayMs, undefined, { signal });
    const text = 'text' in b && b.text !== undefined ? b.text : opts.text;
    const reply = route.type === 'static' ? route.reply : route.render(answerFor(route, text, b));
    switch (b.kind) {
      case 'ok':
        return sendReply(res, reply, 0, signal);
      case 'trickle':
        return sendReply(res, reply, b.intervalMs, signal);
      case 'error': {
        const headers = b.retryAfter !== undefined ? { 'retry-after': b.retryAfter } : undefined;
        return sendReply(res, jsonReply(b.status, dialect.errorBody(b.status, b.message), headers), 0, signal);
      }
      case 'malformed': {
        if (route.type === 'generate' && route.stream) {
          const [first = '', ...rest] = reply.frames;
          return sendReply(res, { ...reply, frames: [first, route.malformedFrame, ...rest] }, 0, signal);
        }
        return sendReply(res, { status: 200, contentType: 'application/json', frames: ['{"id": "broken", "choices": [{'] }, 0, signal);
      }
      case 'drop-mid-stream': {
        writeHead(res, reply, false);
        for (const frame of leadingFrames(reply, b.afterChunks ?? 2)) await writeFrame(res, frame);
        res.socket?.destroy();
        return;
      }
      case 'truncate': {
        writeHead(res, reply, false);
        for (const frame of leadingFrames(reply, b.afterChunks ?? 2)) await writeFrame(res, frame);
        res.end();
        return;
      }
      case 'stall': {
        if (b.afterChunks) {
          writeHead(res, reply, false);
          for (const frame of leadingFrames(reply, b.afterChunks)) await writeFrame(res, frame);
        }
        // Held until the client goes away or close() destroys every socket.
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        return;
      }
    }
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = rawBody ? JSON.parse(rawBody) : undefined;
      } catch {
        body = undefined;
      }
      const recorded: RecordedRequest = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body, rawBody };
      requests.push(recorded);
      notify();

      const perRequest = new AbortController();
      res.on('close', () => perRequest.abort());
      const signal = AbortSignal.any([lifetime.signal, perRequest.signal]);

      const rejection = dialect.validate?.(recorded);
      const route = rejection ? undefined : dialect.route(recorded);
      let work: Promise<void>;
      if (rejection) work = sendReply(res, rejection, 0, signal);
      else if (!route) work = sendReply(res, jsonReply(404, dialect.errorBody(404, `no route for ${recorded.method} ${recorded.path}`)), 0, signal);
      else work = play(route, queue.shift() ?? fallback, res, signal);
      work.catch(() => {
        // Aborted delays (client gone or stand-in closing) end here; the socket is already going away.
        if (!res.destroyed) res.destroy();
      });
    });
  });
  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}${dialect.basePath}`,
    port,
    requests,
    behave(b) {
      fallback = normalizeBehaviour(b);
    },
    enqueue(...b) {
      queue.push(...b.map(normalizeBehaviour));
    },
    waitForRequests(count) {
      if (requests.length >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    connectionCount: () => connections,
    reset() {
      requests.length = 0;
      queue.length = 0;
      fallback = normalizeBehaviour(opts.behaviour ?? 'ok');
    },
    async close() {
      lifetime.abort();
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Last path segment match helper: splits `path?query` into both parts. */
export function splitPath(path: string): { pathname: string; query: URLSearchParams } {
  const url = new URL(path, 'http://stand-in');
  return { pathname: url.pathname, query: url.searchParams };
}

/** The text of a message whose content is a string or an array of `{type:'text', text}` parts. */
export function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => (typeof p === 'object' && p !== null && typeof (p as { text?: unknown }).text === 'string' ? (p as { text: string }).text : ''))
      .join('');
  }
  return '';
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A bare loopback server for one-off wire cases the scripted behaviours do not cover. */
export async function startRawUpstream(handler: http.RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Drain an async iterable (a provider stream, a parser) into an array. */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** Scripted answer text as a tool's JSON input ({} when it is not a JSON object). */
export function jsonObject(text: string | undefined): Record<string, unknown> {
  try {
    const v: unknown = text ? JSON.parse(text) : {};
    return isRecord(v) ? v : {};
  } catch {
    return {};
  }
}
