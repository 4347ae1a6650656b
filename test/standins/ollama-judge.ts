// Ollama /api/chat stand-in for the routing judge: non-streaming replies shaped exactly like
// Ollama's, with scripted content, errors, delays and stalls; records every request it gets.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type JudgeReply =
  /** A 200 whose message content is `content` (after `delayMs`). */
  | { kind: 'content'; content: string; delayMs?: number }
  /** Ollama's error body `{ error }` with `status`. */
  | { kind: 'error'; status: number; message: string }
  /** Accept the request and never answer. */
  | { kind: 'stall' };

export interface ChatBody {
  model: string;
  messages: { role: string; content: string }[];
  format?: unknown;
  stream?: boolean;
  options?: Record<string, unknown>;
}

export interface JudgeStandIn {
  url: string;
  requests: ChatBody[];
  /** What to answer next; receives the parsed request body. */
  reply: (body: ChatBody) => JudgeReply;
  close(): Promise<void>;
}

export async function startJudgeStandIn(reply: (body: ChatBody) => JudgeReply): Promise<JudgeStandIn> {
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => { raw += chunk; });
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/api/chat') {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: '404 page not found' }));
        return;
      }
      let body: ChatBody;
      try {
        body = JSON.parse(raw) as ChatBody;
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid character in request body' }));
        return;
      }
      standIn.requests.push(body);
      const r = standIn.reply(body);
      if (r.kind === 'stall') return;
      if (r.kind === 'error') {
        res.writeHead(r.status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify({ error: r.message }));
        return;
      }
      const send = () => {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify({
          model: body.model,
          created_at: new Date().toISOString(),
          message: { role: 'assistant', content: r.content },
          done_reason: 'stop',
          done: true,
          total_duration: 412_345_678,
          load_duration: 12_345_678,
          prompt_eval_count: 321,
          prompt_eval_duration: 200_000_000,
          eval_count: 42,
          eval_duration: 200_000_000,
        }));
      };
      if (r.delayMs) {
        const t = setTimeout(() => { timers.delete(t); send(); }, r.delayMs);
        timers.add(t);
      } else send();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const standIn: JudgeStandIn = {
    url: `http://127.0.0.1:${port}`,
    requests: [],
    reply,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return standIn;
}

/** A loopback URL on which nothing listens (a port that was just bound, then released). */
export async function closedPortUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
