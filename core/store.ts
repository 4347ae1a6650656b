// Storage contract: every read and write the gateway, admin page, learner and evaluator make, as
// typed queries. SQLite (server/store/sqlite.ts) is the default; PostgreSQL (server/store/postgres/)
// is chosen by DATABASE_URL. SQL lives only in those two. Recording methods are synchronous and
// never block: they enqueue, and a writer flushes batches. test/store/contract.test.ts holds both to it.
import type { QueryFeatures, RoutingDecision } from './routing.ts';
import type { StoredParts } from './stored-parts.ts';

export type { StoredParts } from './stored-parts.ts';

export type CallStatus = 'ok' | 'error' | 'timeout' | 'skipped';

/** One attempt against one upstream model. */
export interface ModelCallRecord {
  requestId: string;
  ts: number;
  model: string;
  attempt: number;
  status: CallStatus;
  httpStatus: number | null;
  latencyMs: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  error: string | null;
}

/** One client request, written once it has been answered (or has failed). */
export interface RequestRecord {
  id: string;
  ts: number;
  endpoint: string;
  /** The routed text (last user message), truncated by the store if huge. */
  queryText: string;
  messageCount: number;
  requestedModel: string | null;
  stream: boolean;
  features: QueryFeatures;
  finalModel: string | null;
  status: 'ok' | 'error';
  httpStatus: number;
  latencyMs: number;
  answer: string | null;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  error: string | null;
  demo: boolean;
  clientKeyHash?: string | null;
  /** The client's own id for the request (its x-request-id), when it sent one. */
  correlationId?: string | null;
  /** Who made it: `key:<hash>` or `ip:<address>`; only they (or the admin) may rate it. */
  owner?: string | null;
  /**
   * The conversation's structure (content parts, tools, tool calls and results, the answer's tool
   * calls and finish reason), bounded (server/store/parts.ts storedParts); null for older rows.
   */
  parts?: StoredParts | null;
}

export interface FeedbackRecord {
  requestId: string;
  ts: number;
  /** 1..5: whole stars for 'user' and 'implicit'; 'eval' may give a continuous score. */
  rating: number;
  comment: string | null;
  /**
   * 'user' (the client that made the request, through /api/feedback), 'admin' (the admin page or
   * an admin credential), 'implicit' (derived signal, e.g. quick retry), 'eval' (offline harness),
   * 'shadow' (a shadow comparison's verdict: learner/shadow.ts). A request keeps at most one
   * rating per source: a new one replaces the old.
   */
  source: FeedbackSource;
}

export type FeedbackSource = 'user' | 'admin' | 'implicit' | 'eval' | 'shadow';

export interface ModelWeight {
  model: string;
  weight: number;
  enabled: boolean;
  updatedAt: number;
}

export interface PerformanceRow {
  model: string;
  domain: string;
  language: string;
  successes: number;
  total: number;
  avgLatencyMs: number;
  ratingSum: number;
  ratingCount: number;
  costUsd: number;
}

export interface StoredRequest extends RequestRecord {
  decision: RoutingDecision | null;
  calls: ModelCallRecord[];
  feedback: FeedbackRecord[];
}

export interface RequestFilter {
  model?: string;
  domain?: string;
  language?: string;
  method?: string;
  rated?: boolean;
  minRating?: number;
  status?: 'ok' | 'error';
  beforeTs?: number;
  /** With `beforeTs`: keyset cursor (ts, id) so rows sharing the boundary ms are not skipped. */
  beforeId?: string;
  limit?: number;
  offset?: number;
}

/** A row the learner reads: one answered request with its outcome and ratings. */
export interface TrainingRow {
  id: string;
  ts: number;
  queryText: string;
  language: string;
  domain: string;
  complexity: string;
  model: string;
  success: boolean;
  latencyMs: number;
  costUsd: number;
  /** Mean user rating 1..5, null when unrated. */
  rating: number | null;
  implicitNegative: boolean;
  /**
   * π(model | query) the routing decision logged for the model that answered, when it logged one
   * and that model was its choice (null: an explicit model, a fallback, or an older row).
   */
  propensity?: number | null;
}

/** Request totals over a recent window (admin overview). */
export interface StoreStats {
  sinceTs: number;
  requests: number;
  errors: number;
  /** 0..1; 0 when there were no requests. */
  successRate: number;
  p50LatencyMs: number;
  p95LatencyMs: number;
  costUsd: number;
  inputTokens: number;
  outputTokens: number;
  feedbackCount: number;
  /** Mean rating of feedback given in the window, null when none. */
  avgRating: number | null;
}

/** One (time bucket, final model) cell of the admin charts. */
export interface TimeSeriesPoint {
  /** Start of the bucket, ms. */
  bucketTs: number;
  model: string;
  requests: number;
  successes: number;
  avgLatencyMs: number;
  ratingSum: number;
  ratingCount: number;
}

/** What a learner run did: 'learn' (the nightly run) or 'evaluate' (`npm run learn -- --evaluate`). */
export type LearnerRunKind = 'learn' | 'evaluate';

export interface LearnerRun {
  id: number;
  kind: LearnerRunKind;
  startedAt: number;
  finishedAt: number | null;
  status: 'running' | 'ok' | 'failed';
  rowsRead: number;
  changes: unknown;
  metricsBefore: unknown;
  metricsAfter: unknown;
  error: string | null;
}

export interface LearnerRunResult {
  status: 'ok' | 'failed';
  rowsRead: number;
  changes?: unknown;
  metricsBefore?: unknown;
  metricsAfter?: unknown;
  error?: string | null;
}

/** Learner runs with one outcome. */
export interface LearnerRunTotal {
  status: LearnerRun['status'];
  runs: number;
  lastFinishedAt: number | null;
}

/** Beta prior for one model on one (domain, language) cell. */
export interface PriorRow {
  model: string;
  domain: string;
  language: string;
  alpha: number;
  beta: number;
}

/**
 * One routed decision as the off-policy evaluator reads it: what the policy saw, what it chose
 * with which probabilities, and what came of it. Explicit-model and request-rule requests are not
 * policy decisions and are not in the log; neither are shadow answers.
 */
export interface DecisionLogRow {
  id: string;
  ts: number;
  queryText: string;
  features: QueryFeatures;
  method: string;
  /** The model the policy selected (decision.selected). */
  selected: string;
  /** The model that finally answered (differs from `selected` after a fallback); null if none did. */
  finalModel: string | null;
  /** The decision's candidate models, in its ranked order. */
  candidates: string[];
  /** Probability the policy gave each candidate; null when the decision did not log them. */
  propensities: Record<string, number> | null;
  /** The policy's own description of itself (name, knob, exploration), when logged. */
  policy: unknown;
  status: 'ok' | 'error';
  costUsd: number;
  latencyMs: number;
  /** Every rating of the request, oldest first. */
  ratings: { source: FeedbackSource; rating: number; ts: number }[];
}

/** A stored request the shadow step may compare: answered, with its answer text. */
export interface ShadowCandidate {
  id: string;
  ts: number;
  queryText: string;
  features: QueryFeatures;
  model: string;
  answer: string;
  candidates: string[];
  inputTokens: number;
  outputTokens: number;
}

/** Which answer the judge preferred, after both orders. */
export type ShadowVerdict = 'request' | 'shadow' | 'tie';

/** One shadow comparison: the stored answer against another model's answer to the same query. */
export interface ShadowComparison {
  ts: number;
  requestId: string;
  requestModel: string;
  shadowModel: string;
  /** Id of the shadow answer's own `queries` row (endpoint 'shadow'); null when the call failed. */
  shadowRequestId: string | null;
  /** null when no verdict was reached (the shadow call or the judge failed: see `error`). */
  verdict: ShadowVerdict | null;
  /** The judge's pick with the stored answer shown first, then with the shadow answer first. */
  firstOrder: 'request' | 'shadow' | 'tie' | null;
  secondOrder: 'request' | 'shadow' | 'tie' | null;
  judgeModel: string;
  costUsd: number;
  reasoning: string | null;
  error: string | null;
}

export interface StoredShadowComparison extends ShadowComparison {
  id: number;
  queryText: string;
}

/** A position in the newest-first (or oldest-first) order of stored requests. */
export interface RequestCursor {
  ts: number;
  id: string;
}

/**
 * A learned-state version committed in one transaction: its priors rows (at `version`), its state
 * entries (blob, pointers), and `priors.version` pointing at it. Readers see the old version or the
 * new one, never a mix.
 */
export interface LearnedVersionWrite {
  version: number;
  priors: PriorRow[];
  /** app_state entries to upsert; the pointer(s) among them move in the same transaction. */
  state: Record<string, unknown>;
}

/** One file of a kNN index snapshot (router/knn.ts writes a few per version). */
export interface IndexSnapshotFile {
  name: string;
  data: Buffer;
}

/** Held while a learner run writes a version; released when the run ends (or its process dies). */
export interface StoreLock {
  release(): Promise<void>;
}

export interface Store {
  /** Which engine this is ('sqlite', 'postgres'); never a path or URL with credentials. */
  readonly engine: 'sqlite' | 'postgres';
  /** Enqueue a finished request with its decision and attempts. Never blocks. */
  recordRequest(req: RequestRecord, decision: RoutingDecision | null, calls: ModelCallRecord[]): void;
  /** Enqueue feedback. */
  recordFeedback(fb: FeedbackRecord): void;
  /** Write everything queued so far; resolves when it is durable. */
  flush(): Promise<void>;
  close(): Promise<void>;
  /** Number of queued, not yet written, records. */
  pending(): number;
  /** Why writes are failing right now (records wait for a retry), or null while they succeed. */
  writeError(): string | null;

  // ---- requests ----
  requestExists(id: string): Promise<boolean>;
  /** One request with its stored parts (`parts`: null for rows older than the parts_json column). */
  getRequest(id: string): Promise<StoredRequest | null>;
  /** A page of requests; their `parts` are left out (undefined): getRequest reads them. */
  listRequests(filter: RequestFilter): Promise<StoredRequest[]>;
  countRequests(): Promise<number>;

  // ---- admin page ----
  /** Totals, success rate and latency percentiles for requests with ts >= sinceTs. */
  stats(sinceTs: number): Promise<StoreStats>;
  /** Per final model and time bucket, oldest first. Ratings count feedback given at or after sinceTs. */
  timeSeries(bucketMs: number, sinceTs: number): Promise<TimeSeriesPoint[]>;
  /** Requests with ts >= sinceTs (the overview's requests-per-minute figure). */
  countSince(sinceTs: number): Promise<number>;
  /** The newest request, to tell a browser polling the overview that something new arrived. */
  latestRequest(): Promise<RequestCursor | null>;
  /**
   * The newest answered request older than `before` that no person (or eval) has rated yet.
   * Implicit and shadow signals do not count as a rating: a person should still look at those answers.
   */
  nextUnrated(before?: RequestCursor | null): Promise<string | null>;
  /** Answers since sinceTs still waiting for a person's rating. */
  unratedSince(sinceTs: number): Promise<number>;
  /** Domains and languages seen so far (at most 100 each), sorted. */
  seenCells(): Promise<{ domains: string[]; languages: string[] }>;

  getWeights(): Promise<ModelWeight[]>;
  setWeights(weights: { model: string; weight?: number; enabled?: boolean }[]): Promise<void>;
  performance(): Promise<PerformanceRow[]>;

  // ---- learner ----
  /** Answered requests after sinceTs, oldest first, at most `limit`, with the feedback given up to feedbackUntilTs (default: all). */
  trainingRows(sinceTs: number, limit: number, feedbackUntilTs?: number): Promise<TrainingRow[]>;
  /** Requests up to rowsUntilTs with feedback in (afterTs, untilTs], as of afterTs and as of untilTs (late ratings). */
  lateFeedbackRows(afterTs: number, untilTs: number, rowsUntilTs: number): Promise<{ before: TrainingRow; now: TrainingRow }[]>;
  /** Answered requests (with a final model) with fromTs <= ts <= untilTs. */
  countAnswered(fromTs: number, untilTs: number): Promise<number>;
  /** Output tokens of every request with fromTs <= ts <= untilTs, by id. */
  outputTokens(fromTs: number, untilTs: number): Promise<Map<string, number>>;
  /** Timestamp of the n-th newest answered request with ts <= untilTs (n >= 1); null when there are fewer. */
  nthNewestAnsweredTs(untilTs: number, n: number): Promise<number | null>;

  /** Key/value state (learned-state pointer and blobs, learner bookkeeping). */
  getState<T>(key: string): Promise<T | null>;
  setState(key: string, value: unknown): Promise<void>;

  /** Priors rows of `version` (default: the one `priors.version` names); empty when none. */
  readPriors(version?: number): Promise<{ version: number | null; rows: PriorRow[] }>;
  /** The one way to write priors: a whole learned version in one transaction (see LearnedVersionWrite). */
  commitLearnedVersion(write: LearnedVersionWrite): Promise<void>;
  /**
   * Drop learned versions outside [oldestKept, current]: priors rows, `learned.v<N>` state blobs and
   * index snapshots. Returns the versions dropped.
   */
  pruneLearnedVersions(oldestKept: number, current: number): Promise<number[]>;
  /**
   * Where kNN index snapshots live. 'local': in the data directory (one machine; SQLite).
   * 'store': in the database, so an instance on another machine loads the same index.
   */
  readonly indexSnapshots: 'local' | 'store';
  /** Keep a version's kNN index files (only when indexSnapshots is 'store'). */
  saveIndexSnapshot(version: number, files: IndexSnapshotFile[]): Promise<void>;
  /** A version's kNN index files; null when none were saved. */
  loadIndexSnapshot(version: number): Promise<IndexSnapshotFile[] | null>;
  /**
   * One learner run at a time across every process using this database: the lock, or null when
   * another run holds it. Absent on an engine without a shared lock (SQLite: the learner's lock
   * file in the data directory does it).
   */
  tryLearnerLock?(): Promise<StoreLock | null>;

  startLearnerRun(startedAt?: number, kind?: LearnerRunKind): Promise<number>;
  finishLearnerRun(id: number, result: LearnerRunResult): Promise<void>;
  /** Newest first; only runs of `kind` when given. */
  learnerRuns(limit?: number, kind?: LearnerRunKind): Promise<LearnerRun[]>;
  /** Runs per outcome (GET /metrics). */
  learnerRunTotals(): Promise<LearnerRunTotal[]>;

  // ---- evaluation and shadow comparisons ----
  /**
   * Routed decisions (not explicit-model, request-rule or shadow rows) after the keyset cursor
   * (ts, id), oldest first, at most `limit`, with every rating given so far.
   */
  decisionLog(after: RequestCursor, limit: number): Promise<DecisionLogRow[]>;
  /** Answered requests in (after, untilTs] not yet shadow-compared, oldest first, at most `limit`. */
  shadowCandidates(after: RequestCursor, untilTs: number, limit: number): Promise<ShadowCandidate[]>;
  /** Store a comparison (the shadow answer row and the labels are recorded separately). */
  recordShadowComparison(c: ShadowComparison): Promise<void>;
  /** Newest first. */
  shadowComparisons(limit: number): Promise<StoredShadowComparison[]>;
  /** USD spent on shadow comparisons with ts >= sinceTs. */
  shadowSpend(sinceTs: number): Promise<number>;
}
