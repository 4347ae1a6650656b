// Incremental parsers for streamed upstream bodies: Server-Sent Events (OpenAI, Anthropic, Gemini)
// and newline-delimited JSON (Ollama). Pure: they read chunks and yield events as soon as complete.

export interface SseEvent {
  /** The `event:` name, when the server sent one. */
  event?: string;
  data: string;
}

type Chunk = Uint8Array | string;

/**
 * Split a byte/string stream into lines, accepting \n, \r\n and lone \r as terminators (as the
 * SSE spec does). A trailing unterminated line is yielded at the end of the stream.
 */
export async function* splitLines(source: AsyncIterable<Chunk>): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8');
  let buffer = '';
  // A \r at the very end of a chunk may be the first half of \r\n split across chunks.
  let pendingCr = false;
  for await (const chunk of source) {
    let text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    if (pendingCr) {
      if (text.startsWith('\n')) text = text.slice(1);
      pendingCr = false;
    }
    // Only the new text can hold terminators: the carried-over buffer had none.
    const scanFrom = buffer.length;
    buffer += text;
    let start = 0;
    for (let i = scanFrom; i < buffer.length; i++) {
      const c = buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      yield buffer.slice(start, i);
      if (c === 13) {
        if (i + 1 < buffer.length) {
          if (buffer.charCodeAt(i + 1) === 10) i++;
        } else {
          pendingCr = true;
        }
      }
      start = i + 1;
    }
    buffer = buffer.slice(start);
  }
  buffer += decoder.decode();
  if (buffer.length > 0) yield buffer;
}

/**
 * Parse an SSE byte stream into events. Follows the WHATWG rules: comments (`:`) are ignored,
 * several `data:` lines join with \n, one leading space after the colon is dropped, an event is
 * dispatched on a blank line. Unlike a browser, a final event without its blank line is still
 * dispatched, because some upstreams end the body right after the last data line.
 */
export async function* parseSse(source: AsyncIterable<Chunk>): AsyncGenerator<SseEvent> {
  let data: string[] = [];
  let event: string | undefined;
  const dispatch = (): SseEvent | undefined => {
    const out = data.length > 0 ? { ...(event !== undefined ? { event } : {}), data: data.join('\n') } : undefined;
    data = [];
    event = undefined;
    return out;
  };
  for await (const line of splitLines(source)) {
    if (line === '') {
      const ev = dispatch();
      if (ev) yield ev;
      continue;
    }
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
    // `id` and `retry` only matter to reconnecting browsers; other fields are ignored by spec.
  }
  const last = dispatch();
  if (last) yield last;
}

/** Parse a newline-delimited JSON stream into its non-blank lines (JSON parsing is the caller's). */
export async function* parseNdjson(source: AsyncIterable<Chunk>): AsyncGenerator<string> {
  for await (const line of splitLines(source)) {
    const trimmed = line.trim();
    if (trimmed !== '') yield trimmed;
  }
}
