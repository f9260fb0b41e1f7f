import { Box, Text } from 'ink';
import type { VendorInspection } from '@kvmts/core';
import { hex } from './format.js';

/** The vendor's structures (VMCS/VMCB …) by the manuals' groups; fields the last exit changed stand out (inverse, and marked *). */
export function InspectorView({ inspection }: { inspection: VendorInspection | null }) {
  if (!inspection) return <Text dimColor>(the vendor module gives no VMCS/VMCB view for this vCPU yet)</Text>;
  return (
    <Box flexDirection="row" gap={2}>
      {inspection.structures.map((s) => (
        <Box key={s.name} flexDirection="column">
          <Text bold>{s.name} @ 0x{hex(s.hpa)}</Text>
          {s.groups.map((g) => (
            <Box key={g.name} flexDirection="column">
              <Text underline>{g.name}</Text>
              {g.fields.map((f) => (
                <Text key={f.name} inverse={f.changed}>{f.changed ? '*' : ' '}{f.name.padEnd(28)} 0x{hex(f.value)}</Text>
              ))}
            </Box>
          ))}
        </Box>
      ))}
    </Box>
  );
}
