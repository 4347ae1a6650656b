// `npm run eval -- --dataset FILE [--out report.json] [--seed N] [--test-fraction F] [--models a,b] [--svg chart.svg]`:
// runs the offline routing evaluation, prints a table and the headline, writes the report and chart.
import { writeFile } from 'node:fs/promises';
import { loadConfig } from '../server/config.ts';
import { openSqliteStore } from '../server/store/sqlite.ts';
import { embedderFromConfig } from '../router/embedder.ts';
import { createJudge } from '../router/judge.ts';
import type { LearnedState } from '../core/routing.ts';
import { cliArgs } from './cli-args.ts';
import { DatasetError } from './eval-data.ts';
import { runEval } from './eval.ts';
import { formatTable, renderSvg } from './eval-report.ts';
import { formatOnline, runOnline } from './online.ts';

const usage = `usage: npm run eval -- --dataset FILE [--out report.json] [--seed N] [--test-fraction 0.3] [--models a,b] [--svg chart.svg]
       npm run eval -- --dataset FILE --online [--days 10] [--rated-fraction 0.2] [--seed N] [--models a,b] [--out report.json]`;

async function main(): Promise<number> {
  const args = cliArgs({
    dataset: { type: 'string' },
    out: { type: 'string' },
    seed: { type: 'string', default: '1' },
    'test-fraction': { type: 'string', default: '0.3' },
    models: { type: 'string' },
    svg: { type: 'string' },
    online: { type: 'boolean', default: false },
    days: { type: 'string', default: '10' },
    'rated-fraction': { type: 'string', default: '0.2' },
    help: { type: 'boolean', short: 'h', default: false },
  }, usage);
  if (typeof args === 'number') return args;
  const seed = Number(args.seed);
  const testFraction = Number(args['test-fraction']);
  if (!args.dataset) { console.error(`--dataset is required\n${usage}`); return 2; }
  if (!Number.isInteger(seed)) { console.error(`--seed must be an integer, got ${args.seed}`); return 2; }
  if (!(testFraction > 0 && testFraction < 1)) { console.error(`--test-fraction must be between 0 and 1, got ${args['test-fraction']}`); return 2; }
  const models = args.models?.split(',').map((s) => s.trim()).filter(Boolean);

  const config = loadConfig(process.env);
  const { embedder, fallbackReason } = await embedderFromConfig(config.routing);
  if (fallbackReason) console.error(`warning: ${fallbackReason}; using ${embedder.name}`);
  // Like the gateway: a judge only when the user pointed us at an Ollama.
  const makeJudge = config.routing.ollamaHost ? (learned: () => LearnedState | null) => createJudge(config.routing, { learned }) : undefined;

  const started = Date.now();
  if (args.online) {
    const days = Number(args.days);
    const ratedFraction = Number(args['rated-fraction']);
    if (!(Number.isInteger(days) && days >= 1)) { console.error(`--days must be a whole number >= 1, got ${args.days}`); return 2; }
    if (!(ratedFraction >= 0 && ratedFraction <= 1)) { console.error(`--rated-fraction must be between 0 and 1, got ${args['rated-fraction']}`); return 2; }
    const report = await runOnline(
      { datasetPath: args.dataset, seed, days, ratedFraction, models },
      { embedder, routing: { ...config.routing, keywordRules: config.keywordRules }, makeJudge, log: (l) => console.error(l), openStore: openSqliteStore },
    );
    console.log(formatOnline(report));
    console.log(`online replay finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    if (args.out) await writeFile(args.out, JSON.stringify(report, null, 1) + '\n');
    return 0;
  }
  const report = await runEval(
    { datasetPath: args.dataset, seed, testFraction, models },
    { embedder, routing: { ...config.routing, keywordRules: config.keywordRules }, makeJudge, log: (l) => console.error(l), openStore: openSqliteStore },
  );
  console.log(formatTable(report));
  console.log(`eval finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (args.out) await writeFile(args.out, JSON.stringify(report, null, 1) + '\n');
  if (args.svg) await writeFile(args.svg, renderSvg(report));
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof DatasetError ? `eval: ${err.message}` : err);
    process.exit(1);
  },
);
