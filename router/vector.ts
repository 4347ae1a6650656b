// Pure vector maths for embeddings and the neighbour index; no allocation beyond the result.

/** Dot product over the shorter of the two vectors. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += a[i]! * b[i]!;
  return sum;
}

export function norm(a: ArrayLike<number>): number {
  return Math.sqrt(dot(a, a));
}

/** Scales `v` in place to unit length; an all-zero vector is left as is. Returns `v`. */
export function l2normalize<T extends Float32Array | number[]>(v: T): T {
  const n = norm(v);
  if (n === 0 || !Number.isFinite(n)) return v;
  for (let i = 0; i < v.length; i++) v[i] = v[i]! / n;
  return v;
}

/** Cosine similarity in [-1, 1]; 0 when either vector is all zeros. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const na = norm(a);
  const nb = norm(b);
  if (na === 0 || nb === 0) return 0;
  return dot(a, b) / (na * nb);
}

/** Murmur3 finaliser: spreads FNV's weak low bits before a hash is bucketed or used as a key. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
