export { runGuest, MAX_STEPS, ENDLESS_STEPS } from './guest-run.js';
export type { GuestRun, ExitRow } from './guest-run.js';
export { runIsolated } from './run-isolated.js';
export type { IsolatedResult, IsolatedRuns } from './run-isolated.js';
export { runOnReference, referenceUnsuitable } from './reference-run.js';
export { compareRuns, checkExpectation, formatDifferences } from './compare.js';
export type { Difference, CompareOptions } from './compare.js';
