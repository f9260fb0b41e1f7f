/** The stack as built: hosts through @kvmts/vmm, guests from @kvmts/guests. */
import { createHost } from '@kvmts/vmm';
import type { Stack } from './stack.js';

export const realStack: Stack = {
  createHost: (vendor) => createHost(vendor),
  catalog: async () => [],
  benchImage: async () => null,
  cpuLoop: async () => '@kvmts/x86 has no runCpuLoop yet',
};
