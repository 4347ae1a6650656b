// Moved to core/stop-signal.ts (the bottom layer); this re-export keeps server/ imports short.
export * from '../core/stop-signal.ts';
