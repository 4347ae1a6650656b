// The one way both HTTP servers (proxy and admin page) are made: a client gets
// HTTP_HEADERS_TIMEOUT_MS for its headers and HTTP_REQUEST_TIMEOUT_MS for its whole request (a
// slow-loris body is answered 408 and closed); answers, streamed or not, are not bounded by them.
import { createServer, type RequestListener, type Server } from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

export interface HttpTimeouts {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}

/** Idle keep-alive connections are closed after this; above common load balancers' 60 s idle timeout. */
const KEEP_ALIVE_MS = 65_000;

export function createHttpServer(listener: RequestListener, t: HttpTimeouts): Server {
  // Node checks both timeouts on a timer (30 s by default): check often enough that the bounds
  // hold to within a quarter of the shorter one.
  const checkEveryMs = Math.max(50, Math.min(5_000, Math.floor(Math.min(t.headersTimeoutMs, t.requestTimeoutMs) / 4)));
  const server = createServer({
    headersTimeout: t.headersTimeoutMs,
    requestTimeout: t.requestTimeoutMs,
    keepAliveTimeout: KEEP_ALIVE_MS,
    connectionsCheckingInterval: checkEveryMs,
  }, listener);
  return server;
}

/**
 * Whether the client reached us over HTTPS: a TLS socket, or with TRUST_PROXY the first
 * X-Forwarded-Proto (set by the proxy in front) says https. Without TRUST_PROXY that header is
 * the client's own word and is ignored.
 */
export function isHttps(req: IncomingMessage, trustProxy: boolean): boolean {
  if ((req.socket as TLSSocket).encrypted) return true;
  if (!trustProxy) return false;
  const proto = req.headers['x-forwarded-proto'];
  const first = (Array.isArray(proto) ? proto[0] : proto)?.split(',')[0]?.trim().toLowerCase();
  return first === 'https';
}

/**
 * The client's address for per-IP limits: the socket's, or with TRUST_PROXY the last
 * X-Forwarded-For entry (the address the proxy in front saw; earlier entries are the client's word).
 */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  const socketAddress = req.socket.remoteAddress ?? 'unknown';
  if (!trustProxy) return socketAddress;
  const xff = req.headers['x-forwarded-for'];
  const last = (Array.isArray(xff) ? xff.join(',') : xff)?.split(',').map((s) => s.trim()).filter(Boolean).at(-1);
  return last ?? socketAddress;
}
