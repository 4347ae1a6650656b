// Generated regexes that nest groups, alternations and repeats: the shapes that make a
// backtracking engine take exponential time. Shared by the in-process and real-process ReDoS fuzzes.
import fc from 'fast-check';

export function nestedPatterns(atoms: string[], quantifiers: string[], maxLength = 200): fc.Arbitrary<string> {
  const atom = fc.constantFrom(...atoms);
  const quant = fc.constantFrom(...quantifiers);
  return fc.letrec<{ node: string }>((tie) => ({
    node: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      atom,
      fc.tuple(fc.array(tie('node'), { minLength: 1, maxLength: 3 }), quant).map(([parts, q]) => `(${parts.join('')})${q}`),
      fc.tuple(fc.array(tie('node'), { minLength: 2, maxLength: 3 }), quant).map(([parts, q]) => `(?:${parts.join('|')})${q}`),
    ),
  })).node.filter((p) => p.length <= maxLength);
}
