import { describe, expect, it } from 'vitest';
import { realStack } from '../real-stack.js';
import { buildScene } from './scene.js';

describe('the default scene', () => {
  it('runs demo on an Intel and an AMD host, and an L1 hypervisor with its L2 on another Intel host', async () => {
    const scene = await buildScene(realStack, {});
    expect(scene.notes).toEqual([]);
    expect(scene.vms.map((v) => `${v.name}@${v.host.info.vendor}`)).toEqual(['demo@intel', 'demo@amd', 'nested-vmx-basic@intel']);
    expect(new Set(scene.vms.map((v) => v.host)).size).toBe(3);
    for (const v of scene.vms) v.machine.destroy();
  });

  it('keeps to the vendor or guest asked for', async () => {
    const amd = await buildScene(realStack, { vendor: 'amd' });
    expect(amd.vms.map((v) => `${v.name}@${v.host.info.vendor}`)).toEqual(['demo@amd']);
    const hello = await buildScene(realStack, { vendor: 'intel', target: 'hello' });
    expect(hello.vms.map((v) => v.name)).toEqual(['hello']);
    for (const v of [...amd.vms, ...hello.vms]) v.machine.destroy();
  });
});
