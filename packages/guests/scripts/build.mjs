#!/usr/bin/env node
/*
 * Builds every guest image with the machine's gcc, as and ld into images/ (or --out DIR).
 * The builds are deterministic: no build ids, no debug info, no timestamps, fixed flags,
 * so test/images.test.ts can rebuild them and compare bytes with the committed images.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const CFLAGS = [
  '-ffreestanding', '-nostdlib', '-fno-pic', '-fno-pie', '-mno-red-zone', '-mgeneral-regs-only',
  '-fno-stack-protector', '-fno-asynchronous-unwind-tables', '-fcf-protection=none', '-O2',
  '-Wall', '-Werror', '-Ilib',
];
const RUNTIME = ['lib/gdt.S', 'lib/isr.S', 'lib/setup.c', 'lib/io.c', 'lib/printf.c', 'lib/report.c', 'lib/string.c'];

/* C guests link with the runtime; entry 'real' boots through entry-real.S, 'long64' through entry-long64.S. */
const C_GUESTS = [
  { name: 'alu', bits: 64, entry: 'long64', src: ['guests/alu/alu.c'] },
  { name: 'alu32', bits: 32, entry: 'real', src: ['guests/alu/alu.c'] },
  { name: 'shift', bits: 64, entry: 'long64', src: ['guests/shift/shift.c'] },
  { name: 'shift32', bits: 32, entry: 'real', src: ['guests/shift/shift.c'] },
  { name: 'muldiv', bits: 64, entry: 'long64', src: ['guests/muldiv/muldiv.c'] },
  { name: 'muldiv32', bits: 32, entry: 'real', src: ['guests/muldiv/muldiv.c'] },
  { name: 'string', bits: 64, entry: 'long64', src: ['guests/string/string.c'] },
  { name: 'string32', bits: 32, entry: 'real', src: ['guests/string/string.c'] },
  { name: 'stack', bits: 64, entry: 'long64', src: ['guests/stack/stack.c'] },
  { name: 'stack32', bits: 32, entry: 'real', src: ['guests/stack/stack.c'] },
  { name: 'bitops', bits: 64, entry: 'long64', src: ['guests/bitops/bitops.c'] },
  { name: 'bitops32', bits: 32, entry: 'real', src: ['guests/bitops/bitops.c'] },
  { name: 'exceptions', bits: 64, entry: 'real', src: ['guests/exceptions/exceptions.c'] },
  { name: 'exceptions32', bits: 32, entry: 'real', src: ['guests/exceptions/exceptions.c'] },
  { name: 'smc', bits: 64, entry: 'long64', src: ['guests/smc/smc.c'] },
  { name: 'paging', bits: 64, entry: 'real', src: ['guests/paging/paging.c'] },
  { name: 'usermode', bits: 64, entry: 'real', src: ['guests/usermode/usermode.c'] },
  { name: 'timer-irq', bits: 64, entry: 'real', src: ['guests/timer-irq/timer-irq.c'] },
  { name: 'demo', bits: 64, entry: 'real', src: ['guests/demo/demo.c'] },
  { name: 'nested-vmx-basic', bits: 64, entry: 'long64', src: ['guests/nested-vmx-common/vmx.c', 'guests/nested-vmx-basic/nested-vmx-basic.c'] },
  { name: 'nested-vmx-fail', bits: 64, entry: 'long64', src: ['guests/nested-vmx-common/vmx.c', 'guests/nested-vmx-fail/nested-vmx-fail.c'] },
  { name: 'nested-vmx-cpuid', bits: 64, entry: 'long64', src: ['guests/nested-vmx-common/vmx.c', 'guests/nested-vmx-cpuid/nested-vmx-cpuid.c'] },
  { name: 'nested-vmx-shadow', bits: 64, entry: 'long64', src: ['guests/nested-vmx-common/vmx.c', 'guests/nested-vmx-shadow/nested-vmx-shadow.c'] },
  { name: 'nested-vmx-ept', bits: 64, entry: 'long64', src: ['guests/nested-vmx-common/vmx.c', 'guests/nested-vmx-ept/nested-vmx-ept.c'] },
  { name: 'nested-vmx-irq', bits: 64, entry: 'long64', src: ['guests/nested-vmx-common/vmx.c', 'guests/nested-vmx-irq/nested-vmx-irq.c'] },
  { name: 'nested-vmx-msr', bits: 64, entry: 'long64', src: ['guests/nested-vmx-common/vmx.c', 'guests/nested-vmx-msr/nested-vmx-msr.c'] },
  { name: 'nested-vmx-timer', bits: 64, entry: 'long64', src: ['guests/nested-vmx-common/vmx.c', 'guests/nested-vmx-timer/nested-vmx-timer.c'] },
  { name: 'nested-vmx-ept-ad', bits: 64, entry: 'long64', src: ['guests/nested-vmx-common/vmx.c', 'guests/nested-vmx-ept-ad/nested-vmx-ept-ad.c'] },
  { name: 'nested-vmx-sync', bits: 64, entry: 'long64', src: ['guests/nested-vmx-common/vmx.c', 'guests/nested-vmx-sync/nested-vmx-sync.c'] },
];

/* Stand-alone assembly guests, linked at 0x1000. */
const ASM_GUESTS = [
  { name: 'hello', src: 'guests/hello/hello.S' },
  { name: 'modes', src: 'guests/modes/modes.S' },
  { name: 'realmode', src: 'guests/realmode/realmode.S' },
  { name: 'mmio', src: 'guests/mmio/mmio.S' },
  { name: 'pio', src: 'guests/pio/pio.S' },
  { name: 'tasks32', src: 'guests/tasks32/tasks32.S' },
];

/* The anchors' workloads, built exactly as /work/shared/bench/build_all.sh builds them. */
const BENCH = [];
for (const m of [16, 32]) {
  const pm = m === 32 ? ['-DPMODE'] : [];
  for (const it of [1000, 1000000, 10000000]) BENCH.push({ name: `loop${m}_${it}`, src: 'guest.S', defs: ['-DWORKLOAD_LOOP', ...pm, `-DITERS=${it}`] });
  BENCH.push({ name: `out${m}`, src: 'guest.S', defs: ['-DWORKLOAD_OUT', ...pm, '-DITERS=100000'] });
  BENCH.push({ name: `cpuid${m}`, src: 'guest.S', defs: ['-DWORKLOAD_CPUID', ...pm, '-DITERS=100000'] });
  BENCH.push({ name: `hlt${m}`, src: 'guest.S', defs: ['-DWORKLOAD_HLT', ...pm] });
}
for (const it of [1000, 1000000, 10000000]) BENCH.push({ name: `loop64_${it}`, src: 'guest64.S', defs: ['-DWORKLOAD_LOOP', `-DITERS=${it}`] });
BENCH.push({ name: 'out64', src: 'guest64.S', defs: ['-DWORKLOAD_OUT', '-DITERS=100000'] });
BENCH.push({ name: 'cpuid64', src: 'guest64.S', defs: ['-DWORKLOAD_CPUID', '-DITERS=100000'] });
BENCH.push({ name: 'hlt64', src: 'guest64.S', defs: ['-DWORKLOAD_HLT'] });

function run(cmd, args) {
  execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
}

function objName(src, tag) {
  return src.replace(/[/.]/g, '_') + `.${tag}.o`;
}

export function buildAll(outDir) {
  const work = mkdtempSync(join(tmpdir(), 'kvmts-guests-'));
  mkdirSync(outDir, { recursive: true });
  const built = [];
  try {
    const compiled = new Map();
    const compile = (src, bits) => {
      const obj = join(work, objName(src, String(bits)));
      if (!compiled.has(obj)) {
        run('gcc', [`-m${bits}`, ...CFLAGS, '-c', '-o', obj, src]);
        compiled.set(obj, true);
      }
      return obj;
    };
    for (const g of C_GUESTS) {
      const entry = compile(`lib/entry-${g.entry}.S`, g.bits);
      const objs = [entry, ...RUNTIME.map((s) => compile(s, g.bits)), ...g.src.map((s) => compile(s, g.bits))];
      const elf = join(work, `${g.name}.elf`);
      run('ld', ['-m', g.bits === 64 ? 'elf_x86_64' : 'elf_i386', '-T', 'lib/guest.ld', '--build-id=none', '-z', 'noexecstack', '-nostdlib', '-o', elf, ...objs]);
      run('objcopy', ['-O', 'binary', elf, join(outDir, `${g.name}.bin`)]);
      built.push(g.name);
    }
    for (const g of ASM_GUESTS) {
      const obj = join(work, `${g.name}.o`);
      run('gcc', ['-c', '-Ilib', '-o', obj, g.src]);
      run('ld', ['-Ttext=0x1000', '--build-id=none', '-z', 'noexecstack', '--oformat=binary', '-o', join(outDir, `${g.name}.bin`), obj]);
      built.push(g.name);
    }
    for (const b of BENCH) {
      const obj = join(work, `${b.name}.o`);
      const bin = join(outDir, `${b.name}.bin`);
      run('gcc', ['-c', '-o', obj, ...b.defs, join('guests/bench', b.src)]);
      run('ld', ['-Ttext=0x7c00', '--oformat=binary', '-o', bin, obj]);
      if (statSync(bin).size !== 512) throw new Error(`${b.name}: a boot sector must be 512 bytes`);
      built.push(b.name);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return built;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--out');
  const outDir = i > 0 ? resolve(process.argv[i + 1] ?? '') : join(root, 'images');
  const names = buildAll(outDir);
  console.log(`built ${names.length} images into ${outDir}`);
}
