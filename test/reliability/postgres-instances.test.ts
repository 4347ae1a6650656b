// Two real gateway processes (one of them with two workers) on one real PostgreSQL, under load:
// SIGTERM to one loses none of its acknowledged requests, the other keeps serving, and every
// request either acknowledged is in the database.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startOpenAIStandIn } from '../standins/openai.ts';
import type { StandIn } from '../standins/common.ts';
import { model } from '../helpers/gateway.ts';
import { requestId, spawnSwitchyard, type SwitchyardProcess } from '../helpers/load.ts';
import { postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.ts';

const skip = postgresUnavailable();

interface Outcome { id: string; acknowledged: boolean; status: number | null }

async function ask(url: string, stream: boolean): Promise<Outcome> {
  const id = requestId('pgi');
  try {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': id },
      body: JSON.stringify({ model: 'fast', stream, messages: [{ role: 'user', content: `instances ${id}` }] }),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    const complete = stream ? text.includes('data: [DONE]') : text.includes('"chat.completion"');
    return { id, status: res.status, acknowledged: res.status === 200 && complete };
  } catch {
    return { id, status: null, acknowledged: false }; // refused once the server stopped accepting: nothing owed
  }
}

describe('two gateway processes on one PostgreSQL', { skip: skip ? `skipped: ${skip}` : false }, () => {
  let server: TestPostgres;
  let upstream: StandIn;
  let url = '';
  const procs: SwitchyardProcess[] = [];

  before(async () => {
    server = await startPostgres({ durable: true });
    url = await server.createDatabase();
    upstream = await startOpenAIStandIn({ behaviour: { kind: 'ok', delayMs: 20 } });
    const env = { TEST_KEY: 'sk-test-reliability-key-0016', DATABASE_URL: url, SHUTDOWN_GRACE_MS: '5000', WRITE_FLUSH_MS: '20' };
    for (const workers of ['1', '2']) {
      procs.push(await spawnSwitchyard({ models: [model('fast', 'openai', upstream.url)], env: { ...env, SWITCHYARD_WORKERS: workers } }));
    }
  });
  after(async () => {
    for (const p of procs) {
      await p.stop(1000);
      await p.cleanup();
    }
    await upstream?.close();
    await server?.stop();
  });

  test('SIGTERM to one under load: both stores every acknowledged request; the other keeps answering', async () => {
    const [a, b] = procs as [SwitchyardProcess, SwitchyardProcess];
    const outcomes: Outcome[] = [];
    let aGone = false;
    let stop = false;
    const load = async (target: SwitchyardProcess, w: number) => {
      for (let i = 0; !stop && !(target === a && aGone); i++) {
        const o = await ask(target.url, (w + i) % 3 === 0);
        outcomes.push(o);
        if (o.status === null && target === a) aGone = true;
      }
    };
    const workers = [0, 1, 2, 3].flatMap((w) => [load(a, w), load(b, w)]);
    const waitFor = async (done: () => boolean, what: string) => {
      const deadline = Date.now() + 30_000;
      while (!done()) {
        if (Date.now() > deadline) {
          stop = true;
          throw new Error(`timed out waiting for ${what}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await waitFor(() => outcomes.filter((o) => o.acknowledged).length >= 150, '150 acknowledged requests');
    a.child.kill('SIGTERM');
    const code = await a.exited;
    aGone = true;
    const afterStop = outcomes.length;
    await waitFor(() => outcomes.length >= afterStop + 40, 'the other instance to keep answering');
    stop = true;
    await Promise.all(workers);
    assert.equal(code, 0, `exit code (stderr: ${a.stderr().slice(0, 500)})`);
    assert.ok(outcomes.slice(afterStop).some((o) => o.acknowledged), 'the other instance kept answering');
    assert.ok(outcomes.every((o) => o.status === null || o.status === 200), 'only answers or refused connections');

    // b flushes on its own timer; the acknowledged ones are committed already (commit mode).
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const rows = (await client.query<{ id: string }>("SELECT correlation_id AS id FROM queries WHERE correlation_id LIKE 'pgi%'")).rows;
      const stored = new Set(rows.map((r) => r.id));
      const acknowledged = outcomes.filter((o) => o.acknowledged);
      const lost = acknowledged.filter((o) => !stored.has(o.id)).map((o) => o.id);
      assert.deepEqual(lost, [], `${lost.length} of ${acknowledged.length} acknowledged requests were lost`);
    } finally {
      await client.end();
    }
  });
});
