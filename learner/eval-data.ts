// Routing datasets for the offline eval (format: shared/data/README.md): validated loading, model
// prices, the seeded train/test split and scoring of per-query choices.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { mulberry32 } from '../router/bandit.ts';

const outcomeSchema = z.object({
  score: z.number().min(0).max(1),
  output_tokens: z.number().min(0),
  cost_usd: z.number().min(0),
  latency_ms: z.number().min(0).optional(),
}).passthrough();

const lineSchema = z.object({
  id: z.string().min(1),
  query: z.string(),
  category: z.string().optional(),
  outcomes: z.record(z.string().min(1), outcomeSchema).refine((o) => Object.keys(o).length > 0, 'needs at least one model'),
}).passthrough();

export type DatasetOutcome = z.infer<typeof outcomeSchema>;
export type DatasetRow = z.infer<typeof lineSchema>;

export interface ModelPrice { usdPerMtokIn: number; usdPerMtokOut: number }

export interface Dataset {
  file: string;
  rows: DatasetRow[];
  /** Model names in the order of the first line. */
  models: string[];
  /** From `<name>.models.json` beside the dataset, when present. */
  prices: Record<string, ModelPrice> | null;
}

export class DatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetError';
  }
}

const priceSchema = z.record(z.string(), z.object({ usd_per_mtok_in: z.number().min(0), usd_per_mtok_out: z.number().min(0) }).passthrough());

/** Parse JSONL text; every problem names its line. */
export function parseDataset(text: string, file = 'dataset'): DatasetRow[] {
  const rows: DatasetRow[] = [];
  const seen = new Set<string>();
  let models: string[] | null = null;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (!raw) continue;
    const where = `${file}:${i + 1}`;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch (err) {
      throw new DatasetError(`${where}: not valid JSON (${(err as Error).message})`);
    }
    const parsed = lineSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new DatasetError(`${where}: ${issue.path.join('.') || '(line)'}: ${issue.message}`);
    }
    const row = parsed.data;
    if (seen.has(row.id)) throw new DatasetError(`${where}: id "${row.id}" appears twice`);
    seen.add(row.id);
    const names = Object.keys(row.outcomes);
    if (models === null) models = names;
    else if (names.length !== models.length || names.some((m) => !(m in (rows[0]!.outcomes)))) {
      throw new DatasetError(`${where}: models ${names.join(', ')} differ from the first line's (${models.join(', ')})`);
    }
    rows.push(row);
  }
  if (rows.length === 0) throw new DatasetError(`${file}: no lines`);
  return rows;
}

/** Load a dataset file and the price file beside it (`x.jsonl` -> `x.models.json`). */
export function loadDataset(file: string): Dataset {
  if (!existsSync(file)) throw new DatasetError(`${file}: no such file`);
  const rows = parseDataset(readFileSync(file, 'utf8'), path.basename(file));
  const priceFile = file.replace(/\.jsonl?$/i, '') + '.models.json';
  let prices: Dataset['prices'] = null;
  if (priceFile !== file && existsSync(priceFile)) {
    const parsed = priceSchema.safeParse(JSON.parse(readFileSync(priceFile, 'utf8')));
    if (!parsed.success) throw new DatasetError(`${priceFile}: ${parsed.error.issues[0]!.path.join('.')}: ${parsed.error.issues[0]!.message}`);
    prices = Object.fromEntries(Object.entries(parsed.data).map(([m, p]) => [m, { usdPerMtokIn: p.usd_per_mtok_in, usdPerMtokOut: p.usd_per_mtok_out }]));
  }
  return { file, rows, models: Object.keys(rows[0]!.outcomes), prices };
}

/** Keep only the named models (in the given order); unknown names are an error. */
export function restrictModels(ds: Dataset, keep: string[]): Dataset {
  for (const m of keep) if (!ds.models.includes(m)) throw new DatasetError(`--models: "${m}" is not in the dataset (models: ${ds.models.join(', ')})`);
  const rows = ds.rows.map((r) => ({ ...r, outcomes: Object.fromEntries(keep.map((m) => [m, r.outcomes[m]!])) }));
  return { ...ds, rows, models: [...keep] };
}

/** Fisher-Yates with a seeded generator. */
export function shuffled<T>(items: readonly T[], rng: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Deterministic split: shuffle by seed, the first round(n * testFraction) rows are the test part. */
export function splitDataset(rows: readonly DatasetRow[], seed: number, testFraction: number): { train: DatasetRow[]; test: DatasetRow[] } {
  if (!(testFraction > 0 && testFraction < 1)) throw new DatasetError(`--test-fraction must be between 0 and 1, got ${testFraction}`);
  const order = shuffled(rows, mulberry32(seed));
  const nTest = Math.min(rows.length - 1, Math.max(1, Math.round(rows.length * testFraction)));
  return { test: order.slice(0, nTest), train: order.slice(nTest) };
}

/** Mean score and summed cost of per-query choices over `rows` (the report's definition). */
export function scoreChoices(rows: readonly DatasetRow[], choices: Record<string, string>): { quality: number; costUsd: number; latencyMs: number | null } {
  let q = 0, c = 0, lat = 0, latN = 0;
  for (const r of rows) {
    const model = choices[r.id];
    const o = model === undefined ? undefined : r.outcomes[model];
    if (!o) throw new Error(`no valid choice for ${r.id}`);
    q += o.score;
    c += o.cost_usd;
    if (o.latency_ms !== undefined) { lat += o.latency_ms; latN++; }
  }
  return { quality: rows.length ? q / rows.length : 0, costUsd: c, latencyMs: latN ? lat / latN : null };
}

/**
 * Price per 1k tokens of each model: from the price file when present, else estimated from the
 * train part (mean cost per output token; input tokens are not in the dataset).
 */
export function modelCosts(ds: Dataset, train: readonly DatasetRow[]): Record<string, { per1kInput: number; per1kOutput: number }> {
  const out: Record<string, { per1kInput: number; per1kOutput: number }> = {};
  for (const m of ds.models) {
    const p = ds.prices?.[m];
    if (p) { out[m] = { per1kInput: p.usdPerMtokIn / 1000, per1kOutput: p.usdPerMtokOut / 1000 }; continue; }
    let cost = 0, tokens = 0;
    for (const r of train) { cost += r.outcomes[m]!.cost_usd; tokens += r.outcomes[m]!.output_tokens; }
    out[m] = { per1kInput: 0, per1kOutput: tokens > 0 ? (1000 * cost) / tokens : 0 };
  }
  return out;
}

/** Tokens of a text, estimated as the dataset does (characters / 4). */
export const estimateTokens = (text: string): number => Math.ceil(text.length / 4);
