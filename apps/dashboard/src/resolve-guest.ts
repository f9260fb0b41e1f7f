/** `kvmts run IMAGE|NAME`: a file on disk with the contract's defaults, or a catalog guest with its own settings. */
import { existsSync, readFileSync } from 'node:fs';
import { RUN_DEFAULTS, type MachineOptions } from '@kvmts/vmm';
import type { CatalogGuest } from './stack.js';

export interface GuestChoice {
  readonly name: string;
  readonly options: MachineOptions;
}

export interface Overrides {
  readonly mem?: number;
  readonly load?: number;
  readonly entry?: number;
  readonly mode?: 'real' | 'long64';
}

export function resolveGuest(target: string, catalog: readonly CatalogGuest[], over: Overrides): GuestChoice | string {
  const entry = catalog.find((g) => g.name === target);
  if (existsSync(target)) {
    return {
      name: target,
      options: {
        image: new Uint8Array(readFileSync(target)),
        mem: over.mem ?? RUN_DEFAULTS.mem,
        load: over.load ?? RUN_DEFAULTS.load,
        entry: over.entry ?? RUN_DEFAULTS.entry,
        mode: over.mode ?? RUN_DEFAULTS.mode,
      },
    };
  }
  if (!entry) return `${target}: no such file, and no catalog guest of that name (see kvmts list)`;
  return {
    name: entry.name,
    options: {
      image: entry.loadImage(),
      mem: over.mem ?? entry.mem,
      load: over.load ?? entry.load,
      entry: over.entry ?? entry.entry,
      mode: over.mode ?? entry.mode,
      ...(entry.regs && { regs: entry.regs }),
      ...(entry.irqs && { irqs: entry.irqs }),
    },
  };
}
