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
    expect(render(<InspectorView inspection={inspection} />).lastFrame()).toMatchInlineSnapshot(`
      "vmcs01 @ 0x5000
      guest state
      *GUEST_RIP                    0x1007
       GUEST_CR0                    0x30
      exit information
      *VM_EXIT_REASON               0x1e"
    `);
  });

  it('says when the vendor gives no view', () => {
    expect(render(<InspectorView inspection={null} />).lastFrame()).toContain('gives no VMCS/VMCB view');
  });
});
