// Moved to core/errors.ts (the bottom layer: errors and their one mapping to HTTP); re-exported for server/.
export * from '../core/errors.ts';
