import { Box, Text } from 'ink';

/** The last `lines` lines of a VM's COM1 output. */
export function SerialView({ text, lines, title }: { text: string; lines: number; title: string }) {
  const shown = text.split('\n').slice(-lines);
  return (
    <Box flexDirection="column" borderStyle="single" paddingX={1}>
      <Text dimColor>COM1 · {title}</Text>
      <Text>{shown.map((l) => l.replace(/[^\x20-\x7e]/g, '.') || ' ').join('\n')}</Text>
    </Box>
  );
}
