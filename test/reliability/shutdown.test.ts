// Graceful shutdown of the real server process: SIGTERM during load lets in-flight requests
// finish, the process exits 0 within its grace period, and every request the client saw answered
// is in the SQLite file afterwards.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOpenAIStandIn } from '../standins/openai.ts';
import type { StandIn } from '../standins/common.ts';
import { model } from '../helpers/gateway.ts';
import { requestId, spawnSwitchyard, type SwitchyardProcess } from '../helpers/load.ts';
import { openSqliteStore } from '../../server/store/sqlite.ts';

const GRACE_MS = 5000;
const SLOW_MS = 1000;
const SLOW_REQUESTS = 10;

interface Outcome {
  id: string;
  /** A 200 whose body arrived complete (streams: up to [DONE]). */
  acknowledged: boolean;
  status: number | null;
  error?: string;
}

async function ask(url: string, modelId: string, stream: boolean): Promise<Outcome> {
  const id = requestId('shut');
  try {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': id },
      body: JSON.stringify({ model: modelId, stream, messages: [{ role: 'user', content: `shutdown test ${id}` }] }),
      signal: AbortSignal.timeout(GRACE_MS + 5000),
    });
    const text = await res.text();
    const complete = stream ? text.includes('data: [DONE]') : text.includes('"chat.completion"');
    return { id, status: res.status, acknowledged: res.status === 200 && complete };
  } catch (e) {
    // Refused or reset once the server stopped accepting: never acknowledged, so nothing is owed.
    return { id, status: null, acknowledged: false, error: (e as Error).message };
  }
}

describe('graceful shutdown under load', () => {
  let fast: StandIn;
  let slow: StandIn;
  let proc: SwitchyardProcess;
  let exitAfterMs = Infinity;

  before(async () => {
    fast = await startOpenAIStandIn({ behaviour: { kind: 'ok', delayMs: 20 } });
    slow = await startOpenAIStandIn({ behaviour: { kind: 'ok', delayMs: SLOW_MS } });
    proc = await spawnSwitchyard({
      models: [model('fast', 'openai', fast.url), model('slow', 'openai', slow.url)],
      env: { TEST_KEY: 'sk-test-reliability-key-0007', SHUTDOWN_GRACE_MS: String(GRACE_MS), WRITE_FLUSH_MS: '50', UPSTREAM_TIMEOUT_MS: '5000' },
    });
  });
  after(async () => {
    await proc?.stop(1000);
    await proc?.cleanup();
    await Promise.all([fast?.close(), slow?.close()]);
  });

  test('SIGTERM during load: in-flight requests finish, exit code 0, every acknowledged request is stored', async (t) => {
    const outcomes: Outcome[] = [];
    let serverGone = false;
    let acknowledged = 0;
    let onAck: (() => void) | null = null;
    const worker = async (w: number) => {
      for (let i = 0; !serverGone; i++) {
        const o = await ask(proc.url, 'fast', (w + i) % 3 === 0);
        outcomes.push(o);
        if (o.acknowledged) {
          acknowledged++;
          onAck?.();
        }
        if (o.status === null) serverGone = true;
      }
    };
    const workers = Array.from({ length: 8 }, (_, w) => worker(w));
    await new Promise<void>((resolve) => {
      onAck = () => {
        if (acknowledged >= 100) resolve();
      };
    });

    // Requests the server has certainly accepted: the upstream has seen them and is still "thinking".
    const inFlight = Array.from({ length: SLOW_REQUESTS }, (_, i) => ask(proc.url, 'slow', i % 2 === 0));
    await slow.waitForRequests(SLOW_REQUESTS);
    const t0 = Date.now();
    proc.child.kill('SIGTERM');
    const code = await proc.exited;
    const exitMs = Date.now() - t0;
    exitAfterMs = exitMs;
    serverGone = true;
    const slowOutcomes = await Promise.all(inFlight);
    await Promise.all(workers);

    assert.equal(code, 0, `exit code (stderr: ${proc.stderr().slice(0, 500)})`);
    assert.ok(exitMs >= SLOW_MS / 2, `waited for the in-flight requests (${exitMs} ms)`);
    assert.ok(exitMs < GRACE_MS + 3000, `exited within the grace period (${exitMs} ms)`);
    assert.deepEqual(slowOutcomes.map((o) => o.acknowledged), new Array(SLOW_REQUESTS).fill(true), `in-flight requests finished: ${JSON.stringify(slowOutcomes.filter((o) => !o.acknowledged))}`);
    const all = [...outcomes, ...slowOutcomes];
    assert.ok(all.every((o) => o.status === null || o.status === 200), `only answers or refused connections: ${JSON.stringify(all.filter((o) => o.status !== null && o.status !== 200).slice(0, 3))}`);

    const store = await openSqliteStore({ path: proc.dbPath });
    try {
      const rows = await store.all<{ id: string; status: string }>('select correlation_id as id, status from queries');
      const stored = new Map(rows.map((r) => [r.id, r.status]));
      const lost = all.filter((o) => o.acknowledged && !stored.has(o.id)).map((o) => o.id);
      assert.deepEqual(lost, [], `${lost.length} of ${all.filter((o) => o.acknowledged).length} acknowledged requests were lost`);
      for (const o of slowOutcomes) assert.equal(stored.get(o.id), 'ok');
      t.diagnostic(`exit after ${exitMs} ms; ${all.filter((o) => o.acknowledged).length} acknowledged, ${all.filter((o) => o.status === null).length} refused, ${rows.length} stored`);
    } finally {
      await store.close();
    }
  });

  test('the process exits once the in-flight requests are done, not only when the grace period runs out', () => {
    assert.ok(exitAfterMs < SLOW_MS + 1500, `exited ${exitAfterMs} ms after SIGTERM; the slowest in-flight request needed about ${SLOW_MS} ms`);
  });
});
