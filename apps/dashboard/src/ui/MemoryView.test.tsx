import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';
import { MemoryView } from './MemoryView.js';
import { VM } from '../../test/snapshots.js';

describe('MemoryView', () => {
  it('lists memslots and the TDP pages mapped and dirty', () => {
    expect(render(<MemoryView memslots={VM.memslots} mmu={VM.mmu} tdp="EPT" />).lastFrame()).toMatchInlineSnapshot(`
      "slot  GPA           size          flags   HVA
      0     0x0           0x200000      0x0     0x7f0000000000
      EPT pages mapped: 12 · dirty pages: 0"
    `);
  });
});
