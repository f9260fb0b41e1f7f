import { Box, Text } from 'ink';
import { hex } from './format.js';
import type { LastExit, VcpuSnapshot, VmState } from './snapshot.js';
import { rflagsLetters } from './vcpu-view-data.js';

export function VcpuView({ vcpu, state, lastExit }: { vcpu: VcpuSnapshot; state: VmState; lastExit: LastExit | null }) {
  const rows: (readonly [string, bigint])[][] = [];
  for (let i = 0; i < vcpu.regs.length; i += 4) rows.push(vcpu.regs.slice(i, i + 4));
  return (
    <Box flexDirection="column">
      <Text>
        vCPU 0 · mode <Text bold>{vcpu.mode}</Text> · CPL {vcpu.cpl} · {state}
      </Text>
      <Text>
        rip {hex(vcpu.rip, 16)}  rflags {hex(vcpu.rflags, 8)} [{rflagsLetters(vcpu.rflags)}]
      </Text>
      {rows.map((row, i) => (
        <Text key={i}>{row.map(([n, v]) => `${n.padStart(3)} ${hex(v, 16)}`).join('  ')}</Text>
      ))}
      <Text>
        cr0 {hex(vcpu.cr0, 8)}  cr3 {hex(vcpu.cr3, 8)}  cr4 {hex(vcpu.cr4, 8)}  efer {hex(vcpu.efer, 4)}
      </Text>
      <Text bold>at RIP:</Text>
      {vcpu.disasm.map((line, i) => (
        <Text key={i} bold={i === 0}>{(i === 0 ? '> ' : '  ') + line}</Text>
      ))}
      {lastExit ? (
        <Text>
          last exit: <Text bold>{lastExit.kind}</Text> {lastExit.fields.map(([k, v]) => `${k}=${v}`).join(' ')}
        </Text>
      ) : null}
    </Box>
  );
}
