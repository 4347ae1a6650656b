// One place for errors: client-facing ApiError (OpenAI error shape), UpstreamError, which knows
// whether a failed upstream call is worth retrying, and asApiError, the one mapping of any thrown
// value to the HTTP status and body the client sees (server/http/middleware.ts toApiError logs it).
import type { ProviderKind } from './provider.ts';

export type ApiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'upstream_error'
  | 'timeout_error'
  | 'server_error';

/** An error returned to the client as `{ error: { message, type, code, param } }`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ApiErrorType = 'invalid_request_error',
    readonly code: string | null = null,
    readonly param: string | null = null,
    readonly details?: unknown,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toBody(): { error: { message: string; type: string; code: string | null; param: string | null; details?: unknown } } {
    const error: { message: string; type: string; code: string | null; param: string | null; details?: unknown } = {
      message: this.message,
      type: this.type,
      code: this.code,
      param: this.param,
    };
    if (this.details !== undefined) error.details = this.details;
    return { error };
  }
}

/**
 * Any thrown value as the ApiError the client sees: an ApiError as it is; anything else carrying a
 * 4xx `status` (body-parser, malformed requests) as a 400-class refusal; everything else as a 500
 * that says nothing of its cause.
 */
export function asApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const status = (err as { status?: unknown } | null)?.status;
  return typeof status === 'number' && status >= 400 && status < 500
    ? new ApiError(status, status === 400 ? 'Bad request (malformed URL or headers)' : 'Request refused', 'invalid_request_error', 'bad_request')
    : new ApiError(500, 'Internal server error', 'server_error', 'internal_error');
}

export type UpstreamErrorCode = 'http' | 'timeout' | 'network' | 'bad_response' | 'aborted' | 'circuit_open';

/** A failed call to an upstream model. `status` is the upstream HTTP status, 0 when none. */
export class UpstreamError extends Error {
  readonly retryable: boolean;
  constructor(
    readonly provider: ProviderKind | string,
    readonly code: UpstreamErrorCode,
    message: string,
    readonly status = 0,
    readonly retryAfterMs?: number,
    retryable?: boolean,
  ) {
    super(message);
    this.name = 'UpstreamError';
    this.retryable = retryable ?? UpstreamError.isRetryable(code, status);
  }

  static isRetryable(code: UpstreamErrorCode, status: number): boolean {
    if (code === 'timeout' || code === 'network') return true;
    if (code === 'http') return status === 408 || status === 409 || status === 429 || status >= 500;
    return false;
  }
}

/** Parse Retry-After / retry-after-ms header values into milliseconds (undefined when absent or bad). */
export function parseRetryAfter(headers: Record<string, string | string[] | undefined>, now = Date.now()): number | undefined {
  const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
  const ms = first(headers['retry-after-ms']);
  if (ms !== undefined) {
    const n = Number(ms);
    if (Number.isFinite(n) && n >= 0) return n;
  }
  const ra = first(headers['retry-after']);
  if (ra === undefined) return undefined;
  const secs = Number(ra);
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const date = Date.parse(ra);
  if (Number.isFinite(date)) return Math.max(0, date - now);
  return undefined;
}
