import { Box, Text } from 'ink';

export const KEYS = [
  ['1-5', 'views: exits, vCPU, VMCS/VMCB, memory, serial'],
  ['p', 'pause or resume the guests'],
  ['n', 'run to the next exit and stop there'],
  ['o', 'sort exits by total or by rate'],
  ['f', 'filter exits by a regular expression (Enter applies, Esc clears)'],
  ['r', 'reset the exit counters'],
  ['g', 'pick the next VM'],
  ['x', 'show or hide child events (one line per exit reason)'],
  ['v', 'swap vendor (live migration)'],
  ['[ ]', 'previous or next page of the VMCS/VMCB inspector'],
  ['h ?', 'this help'],
  ['q', 'quit'],
] as const;

export function HelpView() {
  return (
    <Box flexDirection="column">
      <Text bold>Keys</Text>
      {KEYS.map(([k, what]) => <Text key={k}>{k.padEnd(6)}{what}</Text>)}
    </Box>
  );
}
