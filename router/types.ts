// Moved to core/routing.ts (the bottom layer: the routing contracts); re-exported for server/, test/ and scripts/.
// router/ and learner/ import core/routing.ts directly.
export type * from '../core/routing.ts';
