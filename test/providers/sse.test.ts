// The SSE and NDJSON parsers: events split anywhere across chunks, every line ending, comments,
// multi-line data, event names, and split UTF-8 characters.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNdjson, parseSse, splitLines } from '../../server/providers/sse.ts';
import type { SseEvent } from '../../server/providers/sse.ts';
import { collect } from '../standins/common.ts';

async function* chunksOf(...parts: (string | Uint8Array)[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield typeof p === 'string' ? new TextEncoder().encode(p) : p;
}

/** Every way of cutting `text` into two chunks must parse the same as the whole. */
async function assertSplitInvariant(text: string, expected: SseEvent[]): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const events = await collect(parseSse(chunksOf(bytes.slice(0, cut), bytes.slice(cut))));
    assert.deepEqual(events, expected, `cut at byte ${cut}`);
  }
}

describe('parseSse', () => {
  const cases: { name: string; input: string; expected: SseEvent[] }[] = [
    { name: 'one data event', input: 'data: hello\n\n', expected: [{ data: 'hello' }] },
    { name: 'named event', input: 'event: message_start\ndata: {"a":1}\n\n', expected: [{ event: 'message_start', data: '{"a":1}' }] },
    { name: 'CRLF line endings', input: 'data: a\r\n\r\ndata: b\r\n\r\n', expected: [{ data: 'a' }, { data: 'b' }] },
    { name: 'lone CR line endings', input: 'data: a\r\rdata: b\r\r', expected: [{ data: 'a' }, { data: 'b' }] },
    { name: 'multi-line data joins with newline', input: 'data: line1\ndata: line2\ndata:\n\n', expected: [{ data: 'line1\nline2\n' }] },
    { name: 'comments and keep-alives are ignored', input: ': ping\n\n:\ndata: x\n\n', expected: [{ data: 'x' }] },
    { name: 'only one leading space is dropped', input: 'data:  two spaces\ndata:none\n\n', expected: [{ data: ' two spaces\nnone' }] },
    { name: 'id and retry fields are ignored', input: 'id: 7\nretry: 1000\ndata: x\n\n', expected: [{ data: 'x' }] },
    { name: 'event without data is not dispatched', input: 'event: ping\n\ndata: y\n\n', expected: [{ data: 'y' }] },
    { name: 'event name does not leak to the next event', input: 'event: a\ndata: 1\n\ndata: 2\n\n', expected: [{ event: 'a', data: '1' }, { data: '2' }] },
    { name: 'final event without blank line is still dispatched', input: 'data: [DONE]', expected: [{ data: '[DONE]' }] },
    { name: 'field without colon counts as an empty value', input: 'data\n\n', expected: [{ data: '' }] },
    { name: 'OpenAI done marker', input: 'data: {"x":1}\n\ndata: [DONE]\n\n', expected: [{ data: '{"x":1}' }, { data: '[DONE]' }] },
  ];
  for (const c of cases) {
    test(`parses ${c.name}, however the bytes are split`, async () => {
      await assertSplitInvariant(c.input, c.expected);
    });
  }

  test('a multi-byte character split across chunks decodes intact', async () => {
    const bytes = new TextEncoder().encode('data: 你好\n\n');
    const events = await collect(parseSse(chunksOf(bytes.slice(0, 8), bytes.slice(8))));
    assert.deepEqual(events, [{ data: '你好' }]);
  });

  test('a stream delivered one byte at a time yields every event', async () => {
    const text = 'event: a\r\ndata: 1\r\n\r\n: c\r\ndata: 2\r\n\r\n';
    const bytes = [...new TextEncoder().encode(text)].map((b) => Uint8Array.of(b));
    const events = await collect(parseSse(chunksOf(...bytes)));
    assert.deepEqual(events, [{ event: 'a', data: '1' }, { data: '2' }]);
  });

  test('events are yielded before the stream ends', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    async function* source(): AsyncGenerator<Uint8Array> {
      yield new TextEncoder().encode('data: first\n\n');
      await gate;
      yield new TextEncoder().encode('data: second\n\n');
    }
    const it = parseSse(source())[Symbol.asyncIterator]();
    assert.deepEqual((await it.next()).value, { data: 'first' });
    release();
    assert.deepEqual((await it.next()).value, { data: 'second' });
    assert.equal((await it.next()).done, true);
  });
});

describe('splitLines', () => {
  test('a CRLF split between chunks is one line ending, not two', async () => {
    assert.deepEqual(await collect(splitLines(chunksOf('a\r', '\nb\r', '\n'))), ['a', 'b']);
  });

  test('string chunks are accepted as well as bytes', async () => {
    async function* strings(): AsyncGenerator<string> {
      yield 'x\ny';
      yield '\n';
    }
    assert.deepEqual(await collect(splitLines(strings())), ['x', 'y']);
  });
});

describe('parseNdjson', () => {
  test('yields each JSON line once, skipping blank lines, across arbitrary splits', async () => {
    const text = '{"a":1}\n\n{"b":2}\r\n{"c":3}';
    const bytes = new TextEncoder().encode(text);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const lines = await collect(parseNdjson(chunksOf(bytes.slice(0, cut), bytes.slice(cut))));
      assert.deepEqual(lines, ['{"a":1}', '{"b":2}', '{"c":3}'], `cut at byte ${cut}`);
    }
  });
});
