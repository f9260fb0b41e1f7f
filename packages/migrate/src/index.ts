export { migrateVm, MigrationRefused } from './migrate.js';
export type { MigrationOptions, MigrationStats, MigrationResult } from './migrate.js';
export { createVmHandle, destroyVmHandle } from './vm-handle.js';
export type { VmHandle, SlotInfo, SlotRequest } from './vm-handle.js';
export { parseNestedState } from './nested-state.js';
export type { NestedState } from './nested-state.js';
