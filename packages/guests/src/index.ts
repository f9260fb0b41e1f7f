export { CATALOG, findGuest, serialMatches } from './catalog.js';
export type {
  CatalogEntry, GuestKind, GuestMode, FinalExitKind, ExpectedTraceRow, SerialExpectation, Expectation, IrqPlan,
} from './catalog.js';
export { loadImage, imagePath, hasImage } from './images.js';
