/** Builds every guest image into outDir; returns the names built. */
export function buildAll(outDir: string): string[];
