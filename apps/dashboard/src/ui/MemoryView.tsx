import { Box, Text } from 'ink';
import type { MemslotInfo } from '@kvmts/vmm';
import { hex } from './format.js';

export function MemoryView({ memslots, mmu, tdp }: { memslots: readonly MemslotInfo[]; mmu: { tdpPages: number; dirtyPages: number } | null; tdp: 'EPT' | 'NPT' }) {
  return (
    <Box flexDirection="column">
      <Text bold>{'slot'.padEnd(6)}{'GPA'.padEnd(14)}{'size'.padEnd(14)}{'flags'.padEnd(8)}HVA</Text>
      {memslots.map((s) => (
        <Text key={s.slot}>
          {String(s.slot).padEnd(6)}{('0x' + hex(s.gpa)).padEnd(14)}{('0x' + hex(s.size)).padEnd(14)}{('0x' + hex(s.flags)).padEnd(8)}0x{hex(s.hva)}
        </Text>
      ))}
      <Text>
        {tdp} pages mapped: {mmu ? mmu.tdpPages : '?'} · dirty pages: {mmu ? mmu.dirtyPages : '?'}
      </Text>
    </Box>
  );
}
