// The benchmark's fast loopback upstream: OpenAI Chat Completions wire format with a fixed small
// answer (JSON or SSE), an optional fixed delay, keep-alive. Runs in-process or as its own child.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';

export interface BenchUpstreamOptions {
  port?: number;
  /** Wait this long before answering (models the upstream's own latency). */
  delayMs?: number;
  answer?: string;
}

export interface BenchUpstream {
  url: string;
  port: number;
  close(): Promise<void>;
}

const CREATED = 1_700_000_000;

function completion(model: string, answer: string): string {
  return JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: CREATED,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: answer, refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: 12, completion_tokens: 8, total_tokens: 20 },
    system_fingerprint: 'fp_bench',
  });
}

/** The SSE body, pre-rendered: role chunk, two word chunks, finish, usage, [DONE]. */
function streamFrames(model: string, answer: string): string[] {
  const base = { id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: CREATED, model, system_fingerprint: 'fp_bench' };
  const words = answer.split(/(?<= )/);
  const half = Math.ceil(words.length / 2);
  const parts = [words.slice(0, half).join(''), words.slice(half).join('')].filter(Boolean);
  const frame = (v: unknown) => `data: ${JSON.stringify(v)}\n\n`;
  return [
    frame({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] }),
    ...parts.map((content) => frame({ ...base, choices: [{ index: 0, delta: { content }, logprobs: null, finish_reason: null }] })),
    frame({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] }),
    frame({ ...base, choices: [], usage: { prompt_tokens: 12, completion_tokens: 8, total_tokens: 20 } }),
    'data: [DONE]\n\n',
  ];
}

export async function startBenchUpstream(opts: BenchUpstreamOptions = {}): Promise<BenchUpstream> {
  const answer = opts.answer ?? 'The answer is forty-two.';
  const delayMs = opts.delayMs ?? 0;
  // Bodies are the same for every request of a model: render once per model name.
  const jsonCache = new Map<string, Buffer>();
  const sseCache = new Map<string, string>();

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":{"message":"not found","type":"invalid_request_error","param":null,"code":null}}');
        return;
      }
      // A real model reads the request: parse it, as any upstream would.
      let body: { model?: unknown; stream?: unknown };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { model?: unknown; stream?: unknown };
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end('{"error":{"message":"bad json","type":"invalid_request_error","param":null,"code":null}}');
        return;
      }
      const model = typeof body.model === 'string' ? body.model : 'bench';
      const reply = () => {
        if (body.stream === true) {
          let frames = sseCache.get(model);
          if (frames === undefined) sseCache.set(model, (frames = streamFrames(model, answer).join('')));
          res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
          res.end(frames);
          return;
        }
        let json = jsonCache.get(model);
        if (json === undefined) jsonCache.set(model, (json = Buffer.from(completion(model, answer))));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(json.length) });
        res.end(json);
      };
      if (delayMs > 0) setTimeout(reply, delayMs);
      else reply();
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// As a child process (so the load generator does not share its thread): report the port over IPC.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const up = await startBenchUpstream({ delayMs: Number(process.env.BENCH_UPSTREAM_DELAY_MS ?? 0) });
  process.send?.({ type: 'ready', port: up.port });
  process.on('SIGTERM', () => void up.close().then(() => process.exit(0)));
}
