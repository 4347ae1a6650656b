// Moved to core/provider.ts (the bottom layer: the provider contract); re-exported for server/.
export type * from '../../core/provider.ts';
