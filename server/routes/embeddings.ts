// POST /v1/embeddings in OpenAI's wire format (float or base64 vectors, `dimensions`), served by
// a configured embedding model of any provider, or by the built-in embedder (`demo-embed`) in demo mode.
import { z } from 'zod';
import { ApiError } from '../errors.ts';
import { dispatchApiError } from '../gateway.ts';
import { DispatchError, type Dispatcher } from '../dispatch/dispatcher.ts';
import type { ModelRegistry } from '../dispatch/registry.ts';
import { sendJson, type HotRoute } from '../http/front.ts';
import { clientAbortSignal } from '../http/sse.ts';
import { modelNameSchema, parseOr400, requireShallow } from '../http/validate.ts';
import { builtinEmbed } from '../providers/embeddings.ts';
import type { EmbeddingRequest, EmbeddingResult } from '../providers/types.ts';
import { extrasOf } from './openai-wire.ts';

/** The built-in embedder's model name (demo mode). */
export const BUILTIN_EMBEDDING_MODEL = 'demo-embed';

const MAX_INPUTS = 2048;
const text = z.string().min(1, 'an input must not be empty').max(1_000_000);
const tokens = z.array(z.number().int().min(0)).min(1).max(100_000);

export const embeddingsBody = z
  .object({
    model: modelNameSchema,
    input: z.union([text, z.array(text).min(1).max(MAX_INPUTS), tokens, z.array(tokens).min(1).max(MAX_INPUTS)]),
    encoding_format: z.enum(['float', 'base64']).nullish(),
    dimensions: z.number().int().min(1).max(65536).nullish(),
    user: z.string().max(256).nullish(),
  })
  .passthrough();

const known = new Set(Object.keys(embeddingsBody.shape));

/** A float vector as OpenAI's base64: little-endian float32 bytes. */
export function base64Vector(v: number[]): string {
  const buf = Buffer.allocUnsafe(v.length * 4);
  for (let i = 0; i < v.length; i++) buf.writeFloatLE(v[i]!, i * 4);
  return buf.toString('base64');
}

const unsupported = (field: string, model: string, provider: string) =>
  new ApiError(400, `The model '${model}' (${provider}) cannot take this request: ${field} cannot be expressed in its wire format`, 'invalid_request_error', 'unsupported_parameter', field.split(' ')[0]!);

export function embeddingsRoute(registry: ModelRegistry, dispatcher: Dispatcher, opts: { demoMode: boolean; requestTimeoutMs: number }): HotRoute {
  const handle: HotRoute['handle'] = async (hr) => {
    requireShallow(hr.body);
    const body = parseOr400(embeddingsBody, hr.body);
    const inputs = typeof body.input === 'string' ? [body.input] : typeof body.input[0] === 'number' ? [body.input as number[]] : (body.input as string[] | number[][]);
    const extra = extrasOf(body, known);
    const req: EmbeddingRequest = {
      inputs,
      ...(body.dimensions != null ? { dimensions: body.dimensions } : {}),
      ...(body.user != null ? { user: body.user } : {}),
      ...(extra ? { extra } : {}),
    };
    const tokenInput = typeof inputs[0] !== 'string';
    let served: { model: string; value: EmbeddingResult };

    const rt = registry.resolve(body.model);
    if (!rt && opts.demoMode && body.model === BUILTIN_EMBEDDING_MODEL) {
      if (tokenInput) throw unsupported('input (token arrays)', body.model, 'demo');
      if (extra) throw unsupported(Object.keys(extra)[0]!, body.model, 'demo');
      if (req.dimensions !== undefined && (req.dimensions < 8 || req.dimensions > 4096)) throw unsupported('dimensions outside 8..4096', body.model, 'demo');
      served = { model: BUILTIN_EMBEDDING_MODEL, value: await builtinEmbed(req, clientAbortSignal(hr.req, hr.res)) };
    } else {
      if (!rt) throw new ApiError(404, `The model '${body.model}' does not exist. GET /v1/models lists the models this gateway serves${opts.demoMode ? ` ('${BUILTIN_EMBEDDING_MODEL}' is the built-in embedder)` : ''}.`, 'not_found_error', 'model_not_found', 'model');
      if (rt.spec.kind !== 'embedding') throw new ApiError(400, `The model '${body.model}' is a chat model; /v1/embeddings takes a model configured with "kind": "embedding"`, 'invalid_request_error', 'model_not_embedding', 'model');
      if (!rt.enabled) throw new ApiError(400, `The model '${body.model}' is disabled.`, 'invalid_request_error', 'model_disabled', 'model');
      const provider = rt.spec.provider;
      if (!rt.provider.embed) throw unsupported('embeddings', rt.spec.id, provider);
      if (provider !== 'openai' && tokenInput) throw unsupported('input (token arrays)', rt.spec.id, provider);
      if (provider !== 'openai' && extra) throw unsupported(Object.keys(extra)[0]!, rt.spec.id, provider);
      if (provider === 'demo' && req.dimensions !== undefined && (req.dimensions < 8 || req.dimensions > 4096)) throw unsupported('dimensions outside 8..4096', rt.spec.id, provider);
      try {
        served = await dispatcher.unary(
          [rt.spec.id],
          { requestId: hr.id, signal: clientAbortSignal(hr.req, hr.res), deadline: Date.now() + opts.requestTimeoutMs },
          (m, signal) => m.provider.embed!(m.endpoint, req, signal),
          (v) => ({ inputTokens: v.inputTokens, outputTokens: 0 }),
        );
      } catch (err) {
        throw err instanceof DispatchError ? dispatchApiError(err) : err;
      }
    }

    const { vectors, inputTokens } = served.value;
    if (req.dimensions !== undefined && vectors.some((v) => v.length !== req.dimensions)) {
      throw new ApiError(502, `The upstream answered vectors of ${vectors[0]!.length} dimensions where ${req.dimensions} were asked for`, 'upstream_error', 'upstream_ignored_dimensions', 'dimensions');
    }
    const base64 = body.encoding_format === 'base64';
    sendJson(hr.res, 200, {
      object: 'list',
      data: vectors.map((v, index) => ({ object: 'embedding', index, embedding: base64 ? base64Vector(v) : v })),
      model: served.model,
      usage: { prompt_tokens: inputTokens, total_tokens: inputTokens },
      _actual_model_used: served.model,
    }, { 'x-switchyard-model': served.model });
  };
  return { handle };
}
