/** Disassembly at RIP with iced-x86, in GNU syntax to match the guests' sources. */
import iced from 'iced-x86';

const formatter = new iced.Formatter(iced.FormatterSyntax.Gas);
formatter.uppercaseHex = false;

/** Up to `count` instructions decoded from `bytes`, which sit at address `ip`. */
export function disassemble(bytes: Uint8Array, bitness: 16 | 32 | 64, ip: bigint, count: number): string[] {
  const decoder = new iced.Decoder(bitness, bytes, iced.DecoderOptions.None);
  decoder.ip = ip;
  const lines: string[] = [];
  try {
    while (lines.length < count && decoder.canDecode) {
      const insn = decoder.decode();
      const at = insn.ip;
      const len = insn.length;
      const hex = Array.from(bytes.subarray(Number(at - ip), Number(at - ip) + len), (b) => b.toString(16).padStart(2, '0')).join('');
      lines.push(`${at.toString(16).padStart(bitness === 64 ? 12 : 8, '0')}  ${hex.padEnd(16)} ${insn.isInvalid ? '(bad)' : formatter.format(insn)}`);
      insn.free();
    }
  } finally {
    decoder.free();
  }
  return lines;
}
