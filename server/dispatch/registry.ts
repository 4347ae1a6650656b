// The live catalogue of configured models: spec, adapter, endpoint, breaker, in-flight count and
// the current weight/enabled flags (changed at run time by POST /api/config/weights).
import type { AppConfig, ModelSpec } from '../config.ts';
import type { ModelEndpoint, Provider } from '../providers/types.ts';
import type { CandidateModel } from '../../core/routing.ts';
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

/** A provider's dated or "latest" snapshot suffix: -20250929, -2024-08-06, -latest. */
const SNAPSHOT_SUFFIX = /-(?:\d{8}|\d{4}-\d{2}-\d{2}|latest)$/;

export class ModelRegistry {
  private readonly byId = new Map<string, ModelRuntime>();
  /** Aliases and upstream model names -> model id (see resolve()). */
  private readonly names = new Map<string, string>();

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
    // Explicit aliases first; then a model's upstream name, for the first model configured with it.
    for (const spec of config.models) for (const a of spec.aliases ?? []) this.names.set(a, spec.id);
    for (const spec of config.models) if (!this.byId.has(spec.upstreamModel) && !this.names.has(spec.upstreamModel)) this.names.set(spec.upstreamModel, spec.id);
  }

  /**
   * The configured model a client's name means: its id, an alias, or the upstream model name it is
   * configured with; failing those, the same name without a dated snapshot suffix
   * (claude-sonnet-4-5-20250929 -> claude-sonnet-4-5, gpt-4o-2024-08-06 -> gpt-4o).
   */
  resolve(name: string): ModelRuntime | undefined {
    const exact = this.byId.get(name) ?? this.byId.get(this.names.get(name) ?? '');
    if (exact || !SNAPSHOT_SUFFIX.test(name)) return exact;
    const base = name.replace(SNAPSHOT_SUFFIX, '');
    return this.byId.get(base) ?? this.byId.get(this.names.get(base) ?? '');
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
      if (!m.enabled || m.spec.kind === 'embedding') continue;
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
