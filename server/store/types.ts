// Moved to core/store.ts (the bottom layer: the store contract); re-exported for server/.
// learner/ imports core/store.ts directly.
export type * from '../../core/store.ts';
