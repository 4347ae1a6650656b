// HTTP plumbing shared by the adapters: one keep-alive connection pool, JSON requests, and the
// single mapping from HTTP statuses, socket failures and aborts to UpstreamError.
import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
import { UpstreamError, parseRetryAfter } from '../errors.ts';
import type { FinishReason, ProviderRequest, StreamHooks } from './types.ts';
import type { ClientSignal } from '../stop-signal.ts';
import { scrubSecrets, secretForms } from '../secrets.ts';

/** Keep-alive pool for every upstream origin; sockets are reused across requests. */
let pool: Agent | null = null;

/** The process-wide keep-alive pool, created on first use (and again after a close). */
export function upstreamPool(): Agent {
  return (pool ??= new Agent({ keepAliveTimeout: 10_000, keepAliveMaxTimeout: 60_000, connections: 128 }));
}

/** Close pooled sockets (graceful shutdown). In-flight requests finish first. Safe to call twice. */
export function closeUpstreamPool(): Promise<void> {
  const closing = pool;
  pool = null;
  return closing ? closing.close() : Promise.resolve();
}

/** Largest upstream answer read (UPSTREAM_MAX_BYTES), plain or streamed; past it the call fails. */
let maxBodyBytes = 16 * 1024 * 1024;

/** Set once at start-up from the config (services.ts). */
export function setUpstreamMaxBytes(bytes: number): void {
  maxBodyBytes = bytes;
}

/** The error for an upstream answer past the cap: its socket is dropped, nothing more is read. */
export function tooLarge(provider: string): UpstreamError {
  return new UpstreamError(provider, 'bad_response', `${provider} upstream answer is larger than the limit of ${maxBodyBytes} bytes (UPSTREAM_MAX_BYTES); the connection was closed`);
}

export type ResponseHeaders = Record<string, string | string[] | undefined>;
export type ResponseBody = Dispatcher.ResponseData['body'];

export interface UpstreamResponse {
  status: number;
  headers: ResponseHeaders;
  body: ResponseBody;
}

type Method = 'GET' | 'POST';

/** Headers and body of a JSON request (no body, no content-type). */
function jsonRequest(body: unknown, headers: Record<string, string>): { headers: Record<string, string>; body: string | undefined } {
  return body === undefined ? { headers, body: undefined } : { headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

async function send(
  method: Method,
  url: string,
  body: unknown,
  headers: Record<string, string>,
  signal: AbortSignal,
  provider: string,
): Promise<UpstreamResponse> {
  if (signal.aborted) throw abortError(provider, signal);
  try {
    const res = await request(url, { method, ...jsonRequest(body, headers), signal, dispatcher: upstreamPool() });
    return { status: res.statusCode, headers: res.headers, body: res.body };
  } catch (err) {
    throw toUpstreamError(provider, err, signal);
  }
}

/** Send, then turn a non-2xx answer into an UpstreamError. The returned response is a 2xx. */
export async function callUpstream(
  provider: string,
  method: Method,
  url: string,
  body: unknown,
  headers: Record<string, string>,
  signal: AbortSignal,
  apiKey?: string,
): Promise<UpstreamResponse> {
  const res = await send(method, url, body, headers, signal, provider);
  if (res.status >= 200 && res.status < 300) return res;
  throw await httpError(provider, res, signal, apiKey);
}

/**
 * One JSON call: send, reject non-2xx, parse the body as an object (anything else is `bad_response`).
 * Uses undici's dispatch API with the body collected straight into buffers: `request()` wraps every
 * response in a Readable stream, which cost about as much CPU as the rest of the call.
 */
export async function fetchJson(
  provider: string,
  method: Method,
  url: string,
  body: unknown,
  headers: Record<string, string>,
  signal: ClientSignal,
  apiKey?: string,
): Promise<Record<string, unknown>> {
  if (signal.aborted) throw abortError(provider, signal);
  let res: CollectedResponse;
  try {
    res = await collect(provider, method, url, jsonRequest(body, headers), signal);
  } catch (err) {
    throw toUpstreamError(provider, err, signal);
  }
  if (res.status < 200 || res.status >= 300) throw errorFromBody(provider, res.status, res.headers, res.text, apiKey);
  const parsed = parseJsonOrThrow(provider, res.text);
  if (!isRecord(parsed)) throw new UpstreamError(provider, 'bad_response', `${provider} upstream answered with a non-object JSON body`);
  return parsed;
}

interface CollectedResponse {
  status: number;
  headers: ResponseHeaders;
  text: string;
}

/** origin and path of the few upstream URLs in use, parsed once. */
const targets = new Map<string, { origin: string; path: string }>();

function target(url: string): { origin: string; path: string } {
  let t = targets.get(url);
  if (!t) {
    const u = new URL(url);
    t = { origin: u.origin, path: `${u.pathname}${u.search}` };
    if (targets.size >= 256) targets.clear();
    targets.set(url, t);
  }
  return t;
}

/**
 * The whole response as text (an error body only up to MAX_ERROR_BODY). A non-2xx response whose
 * body breaks off mid-way still resolves with what arrived: the status is what matters then.
 */
function collect(provider: string, method: Method, url: string, { headers, body }: { headers: Record<string, string>; body: string | undefined }, signal: ClientSignal): Promise<CollectedResponse> {
  const { origin, path } = target(url);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let status = 0;
    let resHeaders: ResponseHeaders = {};
    let onAbort: (() => void) | null = null;
    const done = () => {
      if (onAbort) signal.removeEventListener('abort', onAbort);
      onAbort = null;
    };
    const text = () => (chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks, size).toString('utf8'));
    const failed = (status: number) => status < 200 || status >= 300;
    upstreamPool().dispatch({ origin, path, method, headers, body }, {
      onRequestStart(controller: Dispatcher.DispatchController) {
        if (signal.aborted) return controller.abort(signal.reason as Error);
        onAbort = () => controller.abort(signal.reason as Error);
        signal.addEventListener('abort', onAbort, { once: true });
      },
      onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, h: Record<string, string | string[]>) {
        status = statusCode;
        resHeaders = h;
        if (!failed(status) && Number(h['content-length'] ?? 0) > maxBodyBytes) controller.abort(tooLarge(provider));
      },
      onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer) {
        if (failed(status) && size >= MAX_ERROR_BODY) return;
        if (size + chunk.length > maxBodyBytes) {
          chunks.length = 0;
          return controller.abort(tooLarge(provider));
        }
        chunks.push(chunk);
        size += chunk.length;
      },
      onResponseEnd() {
        done();
        resolve({ status, headers: resHeaders, text: text() });
      },
      onResponseError(_controller: Dispatcher.DispatchController, err: Error) {
        done();
        if (status !== 0 && failed(status) && !signal.aborted) resolve({ status, headers: resHeaders, text: text() });
        else reject(err);
      },
    });
  });
}

/** The names in a model-list answer: `body[listKey][i][nameKey]`. */
export function namesFrom(provider: string, body: Record<string, unknown>, listKey: string, nameKey: string): string[] {
  const list = body[listKey];
  if (!Array.isArray(list)) throw new UpstreamError(provider, 'bad_response', `${provider} model list has no ${listKey} array`);
  return list.map((m) => asRecord(m)[nameKey]).filter((name): name is string => typeof name === 'string');
}

export function parseJsonOrThrow(provider: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UpstreamError(provider, 'bad_response', `${provider} upstream sent malformed JSON (${text.length} bytes)`);
  }
}

const MAX_ERROR_BODY = 64 * 1024;

/** Build the UpstreamError for a non-2xx response, reading (a bounded part of) its error body. */
export async function httpError(provider: string, res: UpstreamResponse, signal: AbortSignal, apiKey?: string): Promise<UpstreamError> {
  let text = '';
  try {
    for await (const chunk of res.body) {
      text += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
      if (text.length > MAX_ERROR_BODY) {
        res.body.destroy();
        break;
      }
    }
  } catch {
    // A body that breaks mid-read still leaves us the status, unless the caller gave up.
    if (signal.aborted) return abortError(provider, signal);
  }
  return errorFromBody(provider, res.status, res.headers, text, apiKey);
}

/** The UpstreamError for a non-2xx status and (the start of) its error body, keys redacted. */
function errorFromBody(provider: string, status: number, headers: ResponseHeaders, text: string, apiKey?: string): UpstreamError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const detail = parsed === undefined ? text.trim().slice(0, 200) : extractErrorMessage(parsed);
  const message = redact(`${provider} upstream returned HTTP ${status}${detail ? `: ${detail}` : ''}`, apiKey);
  return new UpstreamError(provider, 'http', message, status, parseRetryAfter(headers));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Pull a human message out of any of the upstream error shapes: OpenAI `{error:{message,type}}`,
 * Anthropic `{type:'error', error:{type,message}}`, Gemini `{error:{code,message,status}}`,
 * Ollama `{error:"..."}`.
 */
export function extractErrorMessage(body: unknown): string | undefined {
  if (Array.isArray(body)) return extractErrorMessage(body[0]); // Gemini sometimes wraps errors in an array
  if (!isRecord(body)) return undefined;
  const err = body.error;
  if (typeof err === 'string') return err.slice(0, 500);
  if (isRecord(err)) {
    const message = typeof err.message === 'string' ? err.message : undefined;
    const kind = typeof err.type === 'string' ? err.type : typeof err.status === 'string' ? err.status : undefined;
    const text = [kind, message].filter(Boolean).join(': ');
    return text ? text.slice(0, 500) : undefined;
  }
  if (typeof body.message === 'string') return body.message.slice(0, 500);
  return undefined;
}

/** Remove the configured key (and its base64 and URL-encoded copies) and anything shaped like a provider key from an error message. */
export function redact(message: string, apiKey?: string): string {
  return scrubSecrets(message, apiKey ? secretForms(apiKey) : []);
}

function isTimeoutReason(reason: unknown): boolean {
  return (reason instanceof Error || (typeof reason === 'object' && reason !== null)) &&
    (reason as { name?: unknown }).name === 'TimeoutError';
}

/** The error for a call stopped by its signal: a timeout signal means `timeout`, anything else `aborted`. */
export function abortError(provider: string, signal: ClientSignal): UpstreamError {
  return isTimeoutReason(signal.reason)
    ? new UpstreamError(provider, 'timeout', `${provider} upstream call timed out`)
    : new UpstreamError(provider, 'aborted', `${provider} upstream call was aborted`);
}

const timeoutCodes = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

/** Map anything thrown while talking to an upstream to UpstreamError (never leaks keys or URLs with keys). */
export function toUpstreamError(provider: string, err: unknown, signal: ClientSignal): UpstreamError {
  if (err instanceof UpstreamError) return err;
  if (signal.aborted) return abortError(provider, signal);
  const e = err as { name?: unknown; code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (e?.name === 'TimeoutError' || (code && timeoutCodes.has(code))) {
    return new UpstreamError(provider, 'timeout', redact(`${provider} upstream timed out: ${message}`));
  }
  if (e?.name === 'AbortError') return new UpstreamError(provider, 'aborted', `${provider} upstream call was aborted`);
  if (code) {
    // ECONNREFUSED, ECONNRESET, EPIPE, ENOTFOUND, UND_ERR_SOCKET ("other side closed"), UND_ERR_CLOSED, ...
    return new UpstreamError(provider, 'network', redact(`${provider} upstream connection failed (${code}): ${message}`));
  }
  return new UpstreamError(provider, 'bad_response', redact(`${provider} upstream response could not be read: ${message}`));
}

/**
 * Run a streaming body parser, mapping its failures to UpstreamError and releasing the socket
 * when the consumer stops early (so the pool never holds a half-read response).
 */
export async function* guardStream<T>(provider: string, res: UpstreamResponse, signal: AbortSignal, parts: AsyncIterable<T>): AsyncGenerator<T> {
  let finished = false;
  try {
    for await (const part of parts) yield part;
    finished = true;
  } catch (err) {
    throw toUpstreamError(provider, err, signal);
  } finally {
    if (!finished && !res.body.destroyed) res.body.destroy();
  }
}

/** POST a streaming request and parse its body incrementally; errors arrive from the iterator. */
export async function* postStream<T>(
  provider: string,
  url: string,
  body: unknown,
  headers: Record<string, string>,
  signal: AbortSignal,
  apiKey: string | undefined,
  parse: (body: AsyncIterable<Uint8Array>) => AsyncIterable<T>,
  hooks?: StreamHooks,
): AsyncGenerator<T> {
  const res = await callUpstream(provider, 'POST', url, body, headers, signal, apiKey);
  yield* guardStream(provider, res, signal, parse(capped(provider, res.body, hooks?.onActivity)));
}

/** Pass chunks through up to UPSTREAM_MAX_BYTES in all, telling `onActivity` about each one (keep-alive frames included). */
async function* capped(provider: string, body: ResponseBody, onActivity?: () => void): AsyncGenerator<Uint8Array> {
  let size = 0;
  for await (const chunk of body as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > maxBodyBytes) {
      body.destroy();
      throw tooLarge(provider);
    }
    onActivity?.();
    yield chunk;
  }
}

/** Thrown when a stream ends before its terminal event: the answer is incomplete. */
export function truncatedStream(provider: string): UpstreamError {
  return new UpstreamError(provider, 'bad_response', `${provider} upstream stream ended before it finished (truncated)`);
}

/** Parse one streamed JSON payload; malformed JSON ends the stream as `bad_response`. */
export function parseStreamJson(provider: string, data: string): Record<string, unknown> {
  const value = parseJsonOrThrow(provider, data);
  if (!isRecord(value)) throw new UpstreamError(provider, 'bad_response', `${provider} upstream stream sent a non-object event`);
  return value;
}

/** A data table from neutral request fields to one wire format's parameter names. */
export type ParamMap = Partial<Record<'temperature' | 'maxTokens' | 'topP' | 'stop' | 'topK' | 'seed' | 'presencePenalty' | 'frequencyPenalty' | 'logitBias' | 'logprobs' | 'topLogprobs' | 'user' | 'reasoningEffort' | 'parallelToolCalls', string>>;

/** Copy the request fields that are set into an object keyed by the wire names in `map`. */
export function mapParams(req: ProviderRequest, map: ParamMap): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, wireName] of Object.entries(map) as [keyof ParamMap, string][]) {
    const value = req[field];
    if (value !== undefined && !(Array.isArray(value) && value.length === 0)) out[wireName] = value;
  }
  return out;
}

/** Look a wire finish reason up in a table; unknown values are 'other'. */
export function mapFinish(table: Record<string, FinishReason>, raw: unknown): FinishReason {
  return typeof raw === 'string' && Object.hasOwn(table, raw) ? table[raw]! : 'other';
}

/** Rough token estimate (chars / 4) for upstreams that report no usage. */
export function estimateTokens(text: string): number {
  return text.length === 0 ? 0 : Math.max(1, Math.ceil(text.length / 4));
}

export function asRecord(v: unknown): Record<string, unknown> {
  return isRecord(v) ? v : {};
}

export function asNumber(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Join a base URL and a path without doubling slashes. */
export function joinUrl(baseUrl: string, path: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}
