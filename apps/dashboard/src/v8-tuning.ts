/**
 * JIT tuning for the `kvmts` process, set before any emulation code runs.
 *
 * One VM exit is a deep chain of small functions: the CPU's run loop, the vendor silicon's exit
 * and entry, kvm_intel or kvm_amd, the common vcpu_run. V8 stops inlining into an optimized
 * function once the callees it inlined total 920 bytecodes, so the exit path ends up as a dozen
 * separately compiled functions that call each other. A larger budget lets TurboFan fold most of
 * the path into a few functions. Measured with `npm run bench` (each figure in its own process),
 * against the default budget: exit.cpuid.intel about 1.06 -> 0.89 µs. The price is compile time:
 * vm.create, whose path is mostly code that runs once per VM, takes longer to settle (after 300
 * warm-up creates about 360 -> 440 µs; after 2000, 215 -> 235 µs). Larger budgets shaved a
 * little more off exits and cost vm.create more (6000: 0.87 µs and 520 µs after 300).
 *
 * Inlining budgets only steer the optimizing compiler; they do not change what the code computes.
 */
import v8 from 'node:v8';

v8.setFlagsFromString('--max-inlined-bytecode-size-cumulative=4000');
