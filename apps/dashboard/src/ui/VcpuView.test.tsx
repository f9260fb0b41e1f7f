import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';
import { VcpuView } from './VcpuView.js';
import { VCPU } from '../../test/snapshots.js';

describe('VcpuView', () => {
  it('shows mode, CPL, state, RIP with disassembly, GPRs, CRs, EFER and RFLAGS letters', () => {
    const { lastFrame } = render(<VcpuView vcpu={VCPU} state="halted" lastExit={null} />);
    expect(lastFrame()).toMatchInlineSnapshot(`
      "vCPU 0 · mode long (64-bit) · CPL 0 · halted
      rip 0000000000007c10  rflags 00000246 [odItsZaPc iopl=0]
      rax 000000000000000a  rbx 0000000000000002  rcx 0000000000000000  rdx 00000000000003f8
      cr0 80000033  cr3 001fd000  cr4 00000020  efer 0500
      at RIP:
      > 000000007c10  f4               hlt"
    `);
  });

  it('shows the fields of the exit `n` stopped at', () => {
    const frame = render(<VcpuView vcpu={VCPU} state="paused" lastExit={{ kind: 'io', fields: [['dir', 'out'], ['port', '1296']] }} />).lastFrame()!;
    expect(frame).toContain('last exit: io dir=out port=1296');
  });
});
