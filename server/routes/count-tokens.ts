// POST /v1/messages/count_tokens (Anthropic shape, as Claude Code calls it): the upstream's own
// count when the model the request would go to is an Anthropic one, else a labelled estimate.
import type { Gateway } from '../gateway.ts';
import { dispatchApiError } from '../gateway.ts';
import type { Dispatcher } from '../dispatch/dispatcher.ts';
import { DispatchError } from '../dispatch/dispatcher.ts';
import type { ModelRegistry } from '../dispatch/registry.ts';
import { sendJson, type HotRoute } from '../http/front.ts';
import { clientAbortSignal } from '../http/sse.ts';
import { parseOr400, requireShallow } from '../http/validate.ts';
import { estimateTokens } from '../providers/http.ts';
import { allText } from '../providers/neutral.ts';
import type { ProviderRequest } from '../providers/types.ts';
import { anthropicErrorBody } from './anthropic.ts';
import { anthropicToNeutral, messagesBody } from './anthropic-wire.ts';
import { validateRoutingRules } from './common.ts';

export const COUNT_TOKENS_PATHS = ['/v1/messages/count_tokens', '/api/claude/count_tokens'];

/** chars/4 over every text the request carries, tool definitions included. */
export function estimateInputTokens(req: ProviderRequest): number {
  const tools = req.tools?.length ? JSON.stringify(req.tools.map((t) => [t.name, t.description, t.parameters])) : '';
  return estimateTokens(allText(req.messages) + tools);
}

export function countTokensRoute(gateway: Gateway, registry: ModelRegistry, dispatcher: Dispatcher, requestTimeoutMs: number): HotRoute {
  const handle: HotRoute['handle'] = async (hr) => {
    requireShallow(hr.body);
    const body = parseOr400(messagesBody, hr.body);
    const beta = hr.req.headers['anthropic-beta'];
    const q = hr.req.url?.indexOf('?') ?? -1;
    const preq = anthropicToNeutral(body, Array.isArray(beta) ? beta.join(',') : beta, q >= 0 ? hr.req.url!.slice(q + 1) : undefined);
    const routingRules = validateRoutingRules(body.routing_rules, registry);
    const decision = await gateway.decide({ requestId: hr.id, messages: preq.messages, model: body.model, routingRules, prefer: body.routing?.prefer, qualityThreshold: body.routing?.quality_threshold });
    const model = decision.selected;
    const rt = registry.get(model);
    const answer = (tokens: number, source: 'upstream' | 'estimate', why?: string) =>
      sendJson(hr.res, 200, { input_tokens: tokens, _token_count: source, ...(why ? { _token_count_reason: why } : {}), _actual_model_used: model }, { 'x-switchyard-token-count': source, 'x-switchyard-model': model });
    if (!rt?.provider.countTokens) return answer(estimateInputTokens(preq), 'estimate', `${rt?.spec.provider ?? 'this'} models have no token-count endpoint`);
    try {
      const out = await dispatcher.unary([model], { requestId: hr.id, signal: clientAbortSignal(hr.req, hr.res), deadline: Date.now() + requestTimeoutMs }, (m, signal) => m.provider.countTokens!(m.endpoint, preq, signal), () => ({ inputTokens: 0, outputTokens: 0 }));
      answer(out.value, 'upstream');
    } catch (err) {
      if (!(err instanceof DispatchError)) throw err;
      const apiErr = dispatchApiError(err);
      // A request the upstream refused is the client's to see; an unreachable upstream still leaves an estimate.
      if (apiErr.status < 500 && apiErr.status !== 429) throw apiErr;
      answer(estimateInputTokens(preq), 'estimate', `upstream count unavailable: ${apiErr.message.slice(0, 200)}`);
    }
  };
  return { handle, errorBody: anthropicErrorBody };
}
