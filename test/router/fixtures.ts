// Shared candidate models and feature records for the router decision-layer tests.
import type { CandidateModel, LearnedState, QueryFeatures } from '../../router/types.ts';

export function candidate(id: string, over: Partial<CandidateModel> = {}): CandidateModel {
  return { id, description: `${id} model`, tags: [], weight: 1, costPer1kInput: 0.001, costPer1kOutput: 0.002, healthy: true, ...over };
}

export function features(over: Partial<QueryFeatures> = {}): QueryFeatures {
  return { language: 'en', mixed: false, domain: 'chat', complexity: 'simple', lengthBucket: 's', chars: 40, hasCode: false, depth: 1, ...over };
}

export function learnedState(over: Partial<LearnedState> = {}): LearnedState {
  return { version: 1, createdAt: 0, priors: [], profiles: {}, avgOutputTokens: {}, avgLatencyMs: {}, indexDir: null, ...over };
}
