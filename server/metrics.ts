// Prometheus metrics (prom-client) for GET /metrics: requests, latency and time to first token,
// tokens and cost by model x routing method x status, upstream attempts, breaker states, the store
// queue and learner runs. One registry per gateway (tests run several in one process); the hot
// path touches cached label children only, the rest is read when Prometheus scrapes.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What a scrape reads from the running system (no I/O on the request path). */
export interface MetricsSources {
  /** Per model: breaker state name. */
  breakers(): { model: string; state: 'closed' | 'open' | 'half-open' }[];
  /** Records queued, not yet written. */
  storePending(): number;
  /** Learner runs by outcome, from the store (read at scrape time). */
  learnerRuns(): Promise<{ status: string; runs: number; lastFinishedAt: number | null }[]>;
  /** Learned-state version the router has in force (0 before the first learner run). */
  learnedVersion(): number;
  /** With REDIS_URL: whether shared state is reachable (absent: nothing is shared). */
  sharedStateUp?(): boolean;
}

/** One finished request, as the gateway records it. */
export interface RequestObservation {
  endpoint: string;
  /** Model that answered, '' when none did. */
  model: string;
  method: string;
  status: 'ok' | 'error';
  httpStatus: number;
  latencyMs: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  stream: boolean;
}

type CounterChild = ReturnType<Counter['labels']>;
type HistogramChild = ReturnType<Histogram['labels']>;

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const BREAKER_STATES = ['closed', 'open', 'half-open'] as const;

interface RequestChildren {
  latency: HistogramChild;
  inputTokens: CounterChild;
  outputTokens: CounterChild;
  cost: CounterChild;
}

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter;
  private readonly latency: Histogram;
  private readonly ttft: Histogram;
  private readonly tokens: Counter;
  private readonly cost: Counter;
  private readonly attempts: Counter;
  /** Label children by joined label values: one Map lookup per observation, no label objects. */
  private readonly children = new Map<string, RequestChildren>();
  private readonly ttftChildren = new Map<string, HistogramChild>();
  private readonly attemptChildren = new Map<string, CounterChild>();

  constructor(sources: MetricsSources, opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const common = ['endpoint', 'model', 'method', 'status'] as const;
    this.requests = new Counter({ name: 'switchyard_requests_total', help: 'Chat requests answered or failed, by endpoint, answering model, routing method, status and HTTP status code', labelNames: [...common, 'code'], registers });
    this.latency = new Histogram({ name: 'switchyard_request_duration_seconds', help: 'Time from arrival to the last byte of the answer', labelNames: [...common], buckets: LATENCY_BUCKETS, registers });
    this.ttft = new Histogram({ name: 'switchyard_time_to_first_token_seconds', help: 'Streams: time from arrival to the first content part sent', labelNames: ['endpoint', 'model', 'method'], buckets: LATENCY_BUCKETS, registers });
    this.tokens = new Counter({ name: 'switchyard_tokens_total', help: 'Tokens by direction (input, output), answering model, routing method and status', labelNames: [...common, 'direction'], registers });
    this.cost = new Counter({ name: 'switchyard_cost_usd_total', help: 'Estimated upstream cost in USD (every attempt of a request), by answering model, routing method and status', labelNames: [...common], registers });
    this.attempts = new Counter({ name: 'switchyard_upstream_attempts_total', help: 'Upstream attempts by model and outcome (ok, error, timeout, skipped)', labelNames: ['model', 'status'], registers });

    new Gauge({
      name: 'switchyard_breaker_state',
      help: 'Circuit breaker per model: 1 for the state it is in, 0 for the others',
      labelNames: ['model', 'state'],
      registers,
      collect() {
        for (const b of sources.breakers()) for (const s of BREAKER_STATES) this.set({ model: b.model, state: s }, b.state === s ? 1 : 0);
      },
    });
    if (sources.sharedStateUp) {
      const up = sources.sharedStateUp;
      new Gauge({
        name: 'switchyard_shared_state_up',
        help: 'REDIS_URL set: 1 while Redis is reachable and state is shared, 0 while this instance runs on its own state',
        registers,
        aggregator: 'min',
        collect() {
          this.set(up() ? 1 : 0);
        },
      });
    }
    new Gauge({
      name: 'switchyard_store_pending_records',
      help: 'Records queued for the database, not yet written',
      registers,
      collect() {
        this.set(sources.storePending());
      },
    });
    new Gauge({
      name: 'switchyard_learned_version',
      help: 'Learned routing state version in force (0 before the first learner run)',
      registers,
      aggregator: 'min',
      collect() {
        this.set(sources.learnedVersion());
      },
    });
    new Gauge({
      name: 'switchyard_learner_last_run_timestamp_seconds',
      help: 'When the last learner run finished (Unix time; 0 = never)',
      registers,
      aggregator: 'max',
      async collect() {
        const rows = await sources.learnerRuns();
        this.set(rows.reduce((a, r) => Math.max(a, r.lastFinishedAt ?? 0), 0) / 1000);
      },
    });
    // Runs are counted in the database, so every instance (and a cron run) reports the same totals.
    new Gauge({
      name: 'switchyard_learner_runs',
      help: 'Learner runs recorded in the database, by outcome (ok, failed, running)',
      labelNames: ['status'],
      registers,
      aggregator: 'max',
      async collect() {
        const rows = await sources.learnerRuns();
        this.reset();
        for (const r of rows) this.set({ status: r.status }, r.runs);
      },
    });
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'switchyard_' });
  }

  /** Called once per finished request (hot path: a Map lookup and a few additions). */
  observeRequest(o: RequestObservation): void {
    const key = `${o.endpoint}\u0000${o.model}\u0000${o.method}\u0000${o.status}`;
    let c = this.children.get(key);
    if (!c) {
      const labels = { endpoint: o.endpoint, model: o.model, method: o.method, status: o.status };
      c = {
        latency: this.latency.labels(labels),
        inputTokens: this.tokens.labels({ ...labels, direction: 'input' }),
        outputTokens: this.tokens.labels({ ...labels, direction: 'output' }),
        cost: this.cost.labels(labels),
      };
      if (this.children.size < 10_000) this.children.set(key, c);
    }
    // The code label varies within one (model, method, status): a child per code, cached alike.
    this.codeChild(o, key).inc();
    c.latency.observe(o.latencyMs / 1000);
    if (o.inputTokens > 0) c.inputTokens.inc(o.inputTokens);
    if (o.outputTokens > 0) c.outputTokens.inc(o.outputTokens);
    if (o.costUsd > 0) c.cost.inc(o.costUsd);
  }

  private readonly codeChildren = new Map<string, CounterChild>();
  private codeChild(o: RequestObservation, key: string): CounterChild {
    const k = `${key}\u0000${o.httpStatus}`;
    let c = this.codeChildren.get(k);
    if (!c) {
      c = this.requests.labels({ endpoint: o.endpoint, model: o.model, method: o.method, status: o.status, code: String(o.httpStatus) });
      if (this.codeChildren.size < 10_000) this.codeChildren.set(k, c);
    }
    return c;
  }

  observeFirstToken(endpoint: string, model: string, method: string, seconds: number): void {
    const key = `${endpoint}\u0000${model}\u0000${method}`;
    let c = this.ttftChildren.get(key);
    if (!c) {
      c = this.ttft.labels({ endpoint, model, method });
      if (this.ttftChildren.size < 10_000) this.ttftChildren.set(key, c);
    }
    c.observe(seconds);
  }

  observeAttempt(model: string, status: string): void {
    const key = `${model}\u0000${status}`;
    let c = this.attemptChildren.get(key);
    if (!c) {
      c = this.attempts.labels({ model, status });
      if (this.attemptChildren.size < 10_000) this.attemptChildren.set(key, c);
    }
    c.inc();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition of this process's registry. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
