// Finding secrets in text before it leaves the process (errors, /health, logs, the admin page):
// each configured value, the copies an upstream may echo (base64 and base64url at any alignment,
// URL-encoded), and anything shaped like a provider key.

/** Provider-key shapes, redacted even when the value is not configured here. */
export const KEY_LIKE = /\b(sk-[A-Za-z0-9_-]{6,}|sk-ant-[A-Za-z0-9_-]{6,}|AIza[A-Za-z0-9_-]{10,})/g;

/** Shorter values are not scrubbed (they would match ordinary text); shorter base64 fragments neither. */
const MIN_SECRET_CHARS = 4;
const MIN_ENCODED_CHARS = 8;

/**
 * The base64 characters that encode `secret` wherever it sits in a longer encoded string (e.g.
 * `Basic base64(user:key)`): the value is encoded after 0, 1 and 2 filler bytes, and only the
 * characters that depend on the value's bytes alone are kept.
 */
function base64Fragments(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const out: string[] = [];
  for (const offset of [0, 1, 2]) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
    const start = Math.ceil((8 * offset) / 6);
    const end = Math.floor((8 * (offset + bytes.length)) / 6);
    const fragment = encoded.slice(start, end);
    if (fragment.length >= MIN_ENCODED_CHARS) out.push(fragment, fragment.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return out;
}

/** Percent-encodings of the value: encodeURIComponent's, with lower-case hex, and every byte escaped. */
function urlEncodings(secret: string): string[] {
  const component = encodeURIComponent(secret);
  const everyByte = [...Buffer.from(secret, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join('');
  const lower = (s: string) => s.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase());
  return [component, lower(component), everyByte, lower(everyByte)];
}

/** Every form of one secret worth looking for, longest first (so a longer copy is replaced whole). */
export function secretForms(secret: string): string[] {
  if (secret.length < MIN_SECRET_CHARS) return [];
  const forms = new Set([secret, ...urlEncodings(secret)]);
  if (secret.length >= MIN_ENCODED_CHARS) for (const f of base64Fragments(secret)) forms.add(f);
  return [...forms].sort((a, b) => b.length - a.length);
}

/** The forms of several secrets, longest first. */
export function allSecretForms(secrets: Iterable<string>): string[] {
  const forms = new Set<string>();
  for (const s of secrets) for (const f of secretForms(s)) forms.add(f);
  return [...forms].sort((a, b) => b.length - a.length);
}

/** Replace every given form, then anything key-shaped, with `mark`. */
export function scrubSecrets(text: string, forms: readonly string[], mark = '[redacted]'): string {
  let out = text;
  for (const f of forms) if (out.includes(f)) out = out.split(f).join(mark);
  return out.replace(KEY_LIKE, mark);
}
