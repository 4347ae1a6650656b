// The live catalogue of configured models: spec, adapter, endpoint, breaker, in-flight count and
// the current weight/enabled flags (changed at run time by POST /api/config/weights).
import type { AppConfig, ModelSpec } from '../config.ts';
import type { ModelEndpoint, Provider } from '../providers/types.ts';
import type { CandidateModel } from '../../router/types.ts';
import { CircuitBreaker, type BreakerState } from './breaker.ts';

export interface ModelRuntime {
  spec: ModelSpec;
  provider: Provider;
  endpoint: ModelEndpoint;
  breaker: CircuitBreaker;
  weight: number;
  enabled: boolean;
  inflight: number;
  maxConcurrent: number;
}

export interface ModelStatus {
  id: string;
  provider: string;
  upstreamModel: string;
  description: string;
  weight: number;
  enabled: boolean;
  state: BreakerState;
  healthy: boolean;
  consecutiveFailures: number;
  lastError: string | null;
  inflight: number;
  demo: boolean;
  costPer1kInput: number;
  costPer1kOutput: number;
}

/** A change of a model's weight and/or enabled flag (POST /api/config/weights, the admin page). */
export interface WeightChange {
  model: string;
  weight?: number;
  enabled?: boolean;
}

export class ModelRegistry {
  private readonly byId = new Map<string, ModelRuntime>();

  constructor(
    config: Pick<AppConfig, 'models' | 'secrets' | 'dispatch' | 'limits'>,
    createProvider: (spec: ModelSpec) => Provider,
    endpointFor: (spec: ModelSpec, secrets: Record<string, string>) => ModelEndpoint,
    now: () => number = Date.now,
  ) {
    for (const spec of config.models) {
      this.byId.set(spec.id, {
        spec,
        provider: createProvider(spec),
        endpoint: endpointFor(spec, config.secrets),
        breaker: new CircuitBreaker({ failureThreshold: config.dispatch.breakerFailures, cooldownMs: config.dispatch.breakerCooldownMs, now }),
        weight: spec.weight,
        enabled: spec.enabled,
        inflight: 0,
        maxConcurrent: spec.maxConcurrent ?? config.limits.maxConcurrentPerModel,
      });
    }
  }

  get(id: string): ModelRuntime | undefined {
    return this.byId.get(id);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  all(): ModelRuntime[] {
    return [...this.byId.values()];
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }

  setWeight(id: string, weight?: number, enabled?: boolean): void {
    const m = this.byId.get(id);
    if (!m) return;
    if (weight !== undefined) m.weight = weight;
    if (enabled !== undefined) m.enabled = enabled;
  }

  /** What the router may choose from. */
  candidates(): CandidateModel[] {
    const out: CandidateModel[] = [];
    for (const m of this.byId.values()) {
      if (!m.enabled) continue;
      out.push({
        id: m.spec.id,
        description: m.spec.description,
        tags: m.spec.tags,
        weight: m.weight,
        costPer1kInput: m.spec.costPer1kInput,
        costPer1kOutput: m.spec.costPer1kOutput,
        healthy: m.breaker.healthy,
      });
    }
    return out;
  }

  status(): ModelStatus[] {
    return this.all().map((m) => ({
      id: m.spec.id,
      provider: m.spec.provider,
      upstreamModel: m.spec.upstreamModel,
      description: m.spec.description,
      weight: m.weight,
      enabled: m.enabled,
      state: m.breaker.state,
      healthy: m.enabled && m.breaker.healthy,
      consecutiveFailures: m.breaker.consecutiveFailures,
      lastError: m.breaker.lastError,
      inflight: m.inflight,
      demo: m.spec.provider === 'demo',
      costPer1kInput: m.spec.costPer1kInput,
      costPer1kOutput: m.spec.costPer1kOutput,
    }));
  }
}
