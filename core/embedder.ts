// The embedder contract: router/embedder.ts implements it (hashed n-grams, transformers.js,
// Ollama); the kNN stage, the learner and the gateway's /v1/embeddings fallback use it.

export interface Embedder {
  readonly name: string;
  readonly dim: number;
  /** One L2-normalised vector per text, in order. */
  embed(texts: string[]): Promise<Float32Array[]>;
}
