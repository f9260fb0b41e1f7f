import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';
import { InspectorView } from './InspectorView.js';

describe('InspectorView', () => {
  it('shows each structure with its groups and fields', () => {
    const inspection = {
      vendor: 'intel' as const,
      structures: [{
        name: 'vmcs01', hpa: 0x5000,
        groups: [
          { name: 'guest state', fields: [{ name: 'GUEST_RIP', value: 0x1007n, changed: true }, { name: 'GUEST_CR0', value: 0x30n, changed: false }] },
          { name: 'exit information', fields: [{ name: 'VM_EXIT_REASON', value: 30n, changed: true }] },
        ],
      }],
      counters: {},
    };
    expect(render(<InspectorView inspection={inspection} height={4} width={120} page={0} />).lastFrame()).toMatchInlineSnapshot(`
      "VMCS · page 1/1 ([ ]) · 2 fields changed at the last exit (*)
      vmcs01 @ 0x5000                                    GUEST_CR0                        0x30
      guest state                                       exit information
      *GUEST_RIP                        0x1007          *VM_EXIT_REASON                   0x1e"
    `);
  });

  it('pages when the fields do not fit', () => {
    const fields = Array.from({ length: 20 }, (_, i) => ({ name: `F${i}`, value: BigInt(i), changed: false }));
    const inspection = { vendor: 'amd' as const, structures: [{ name: 'vmcb', hpa: 0x9000, groups: [{ name: 'save area', fields }] }], counters: {} };
    const frame = render(<InspectorView inspection={inspection} height={6} width={60} page={1} />).lastFrame()!;
    expect(frame.split('\n')[0]).toBe('VMCB · page 2/5 ([ ]) · 0 fields changed at the last exit (*)');
    expect(frame).toContain(' F3 ');
    expect(frame).not.toContain(' F2 ');
  });

  it('says when the vendor gives no view', () => {
    expect(render(<InspectorView inspection={null} height={10} width={100} page={0} />).lastFrame()).toContain('gives no VMCS/VMCB view');
  });
});
