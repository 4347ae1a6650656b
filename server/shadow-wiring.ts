// Wires the learner's shadow step (learner/shadow.ts) to the gateway: shadow answers go through
// the same registry and dispatcher as client requests (retries, breakers, caps), never the router.
import { randomUUID } from 'node:crypto';
import type { AppConfig } from './config.ts';
import { Dispatcher } from './dispatch/dispatcher.ts';
import { ModelRegistry } from './dispatch/registry.ts';
import { createProvider, endpointFor } from './providers/index.ts';
import { StopSignal } from './stop-signal.ts';
import type { Store } from './store/types.ts';
import type { CandidateModel } from '../core/routing.ts';
import { runShadowStep, shadowJudgeFromConfig, type CallModel, type PairwiseJudge, type ShadowStepResult } from '../learner/shadow.ts';

/** callModel for the shadow step: one model, no fallback, the request timeout as deadline. */
export function shadowCaller(registry: ModelRegistry, dispatcher: Dispatcher, requestTimeoutMs: number, now: () => number = Date.now): CallModel {
  return async (modelId, text) => {
    const started = now();
    const out = await dispatcher.chat([modelId], { messages: [{ role: 'user', content: text }] }, {
      requestId: `shadow_${randomUUID()}`, signal: new StopSignal(), deadline: started + requestTimeoutMs,
    });
    return {
      text: out.result.content,
      costUsd: out.attempts.reduce((s, a) => s + a.costUsd, 0),
      inputTokens: out.result.usage.inputTokens,
      outputTokens: out.result.usage.outputTokens,
      latencyMs: now() - started,
      demo: registry.get(out.model)?.spec.provider === 'demo',
    };
  };
}

/** The enabled chat models of the registry as the shadow step sees them (embedding models give no answers). */
function enabledModels(registry: ModelRegistry): CandidateModel[] {
  return registry.all().filter((m) => m.enabled && m.spec.kind !== 'embedding').map((m) => ({
    id: m.spec.id, description: m.spec.description, tags: m.spec.tags, weight: m.weight,
    costPer1kInput: m.spec.costPer1kInput, costPer1kOutput: m.spec.costPer1kOutput, healthy: true,
  }));
}

export interface ShadowWiring {
  registry: ModelRegistry;
  dispatcher: Dispatcher;
  /** A judge other than the configured Ollama one (tests). */
  judge?: PairwiseJudge | null;
}

/** The shadow step the learner run calls at its end (LearnerOptions.shadow). */
export function shadowStepFor(config: AppConfig, store: Store, wiring: ShadowWiring): (untilTs: number) => Promise<ShadowStepResult> {
  const configured = wiring.judge !== undefined ? { judge: wiring.judge, reason: wiring.judge ? undefined : 'no judge' } : shadowJudgeFromConfig(config.routing, config.shadow.judgeTimeoutMs);
  return (untilTs) => runShadowStep({
    store,
    settings: { sample: config.shadow.sample, budgetUsd: config.shadow.budgetUsd, models: config.shadow.models },
    models: enabledModels(wiring.registry),
    callModel: shadowCaller(wiring.registry, wiring.dispatcher, config.limits.requestTimeoutMs),
    judge: configured.judge,
    ...(configured.reason ? { judgeOffReason: configured.reason } : {}),
    untilTs,
    maxComparisons: config.shadow.maxPerRun,
  });
}

/** For `npm run learn` (no gateway running): a registry and dispatcher of its own from the config. */
export function standaloneShadowStep(config: AppConfig, store: Store): (untilTs: number) => Promise<ShadowStepResult> {
  const registry = new ModelRegistry(config, (spec) => createProvider(spec.provider), endpointFor);
  const dispatcher = new Dispatcher(registry, {
    policy: { maxRetries: config.dispatch.maxRetries, baseMs: config.dispatch.retryBaseMs, maxMs: config.dispatch.retryMaxMs },
    attemptTimeoutMs: config.dispatch.attemptTimeoutMs,
  });
  const step = shadowStepFor(config, store, { registry, dispatcher });
  return async (untilTs) => {
    // Models disabled (or re-weighted) on the admin page stay so here.
    for (const w of await store.getWeights()) registry.setWeight(w.model, w.weight, w.enabled);
    return step(untilTs);
  };
}
