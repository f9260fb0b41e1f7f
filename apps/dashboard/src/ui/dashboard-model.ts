/**
 * The dashboard's model: the VMs of the scene, run in slices on the event loop so the screen
 * keeps refreshing, and the controls (pause, next exit, reset, pick a VM). It acts on VMs only
 * through the VMM library, as any VMM would, and hands the UI plain snapshots.
 */
import type { HostPort, Machine, MachineStep, Vendor } from '@kvmts/vmm';
import { disassemble } from './disasm.js';
import { ExitRates } from './exit-rates.js';
import type { DashboardSnapshot, ExitRow, Focus, LastExit, VcpuSnapshot, VmSnapshot, VmState } from './snapshot.js';
import { codeBitness, cpuCpl, cpuMode, gprList, ripLinear } from './vcpu-view-data.js';

/** Time one VM may run before the event loop gets a turn (input and rendering). */
const SLICE_MS = 10;
/** A frame is due this long after the last snapshot: with SLICE_MS it keeps ≥ 10 refreshes a second. */
export const FRAME_MS = 100 - SLICE_MS;
/** COM1 output kept per VM. */
const SERIAL_KEEP = 8192;
/** `v`: exits the guest runs between pre-copy rounds, so the migration is live. */
const LIVE_EXITS = 200;

/** A host of `vendor` for `v` to migrate to, or why there is none. */
export type HostProvider = (vendor: Vendor) => Promise<HostPort | string>;

export interface SceneVm {
  readonly name: string;
  readonly host: HostPort;
  readonly machine: Machine;
}

interface VmRuntime extends SceneVm {
  readonly id: number;
  readonly rates: ExitRates;
  lastStep: MachineStep | null;
}

/** Exit-reason counters are child events under "exits" (kvm_stat's `x` drill-down). */
function isChildStat(name: string): boolean {
  return /^exits?[._/]/.test(name);
}

function stepFields(step: MachineStep): LastExit {
  const e = step.exit;
  const fields: [string, string][] = [];
  for (const [k, v] of Object.entries(e)) {
    if (k === 'kind') continue;
    fields.push([k, v instanceof Uint8Array ? Array.from(v, (b) => b.toString(16).padStart(2, '0')).join('') : typeof v === 'bigint' ? '0x' + v.toString(16) : String(v)]);
  }
  return { kind: e.kind, fields };
}

export class DashboardModel {
  private readonly vms: VmRuntime[];
  private selected = 0;
  private paused = false;
  private stepRequested = false;
  private message: string | null = null;
  private timer: NodeJS.Immediate | null = null;
  private readonly listeners = new Set<() => void>();
  private focus: Focus = 'exits';
  private readonly snapshotTimes: number[] = [];
  private guestMs = 0;
  private renderMs = 0;
  private lastSnapshot = -Infinity;
  private wallStart = performance.now();
  private readonly now: () => number;
  private readonly hostFor: HostProvider | null;

  constructor(scene: readonly SceneVm[], now: () => number = () => performance.now(), hostFor: HostProvider | null = null) {
    this.vms = scene.map((vm, id) => ({ ...vm, id, rates: new ExitRates(), lastStep: null }));
    this.now = now;
    this.hostFor = hostFor;
  }

  /** Starts running the guests in slices. */
  start(): void {
    this.wallStart = this.now();
    this.guestMs = 0;
    this.schedule();
  }

  stop(): void {
    if (this.timer) clearImmediate(this.timer);
    this.timer = null;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get isPaused(): boolean {
    return this.paused;
  }

  togglePause(): void {
    this.paused = !this.paused;
    this.message = this.paused ? 'paused' : null;
    if (!this.paused) this.schedule();
    this.emit();
  }

  /** `n`: run the selected VM to its next userspace exit, then stay paused there. */
  nextExit(): void {
    this.paused = true;
    this.stepRequested = true;
    this.schedule();
  }

  resetStats(): void {
    for (const vm of this.vms) vm.rates.reset(this.totals(vm));
    this.emit();
  }

  selectNextVm(): void {
    this.selected = (this.selected + 1) % this.vms.length;
    this.emit();
  }

  /**
   * `v` (issue 9): live-migrates the selected VM to a host of the other vendor; the guest runs on
   * between pre-copy rounds. Resolves once done; the message says how it went.
   */
  async swapVendor(): Promise<void> {
    const vm = this.vms[this.selected]!;
    const m = vm.machine;
    const to: Vendor = m.host.info.vendor === 'intel' ? 'amd' : 'intel';
    const host = this.hostFor ? await this.hostFor(to) : 'this dashboard has no other host';
    if (typeof host === 'string') return this.setMessage(`cannot migrate to ${to}: ${host}`);
    if (m.done) return this.setMessage(`VM ${vm.id} has ended: nothing to migrate`);
    const r = m.migrate(host, { liveExits: LIVE_EXITS });
    if (typeof r === 'string') return this.setMessage(`VM ${vm.id} stays on ${m.host.info.vendor}: ${r}`);
    // The new vCPU's kernel counters start from zero: so do the totals shown.
    vm.rates.reset(this.totals(vm));
    this.setMessage(`VM ${vm.id} migrated ${r.from} → ${r.to}: ${r.rounds} pre-copy rounds, ${r.pagesSent} pages sent, downtime ${Math.round(r.downtimeUs)} µs, total ${r.totalMs.toFixed(1)} ms`);
  }

  /** The view on screen: its details are read for the selected VM only. */
  setFocus(focus: Focus): void {
    this.focus = focus;
    this.emit();
  }

  setMessage(message: string | null): void {
    this.message = message;
    this.emit();
  }

  /** Runs every runnable VM for up to SLICE_MS each (or one exit, for `n`). Public for tests. */
  runSlice(): void {
    if (this.stepRequested) {
      this.stepRequested = false;
      const vm = this.vms[this.selected]!;
      if (!vm.machine.done) {
        const t0 = this.now();
        vm.lastStep = vm.machine.step();
        this.guestMs += this.now() - t0;
        this.message = `stopped at exit: ${vm.lastStep.exit.kind}`;
      }
      this.emit();
      return;
    }
    if (this.paused) return;
    for (const vm of this.vms) {
      if (vm.machine.done) continue;
      const t0 = this.now();
      do vm.lastStep = vm.machine.step();
      while (!vm.machine.done && this.now() - t0 < SLICE_MS);
      this.guestMs += this.now() - t0;
      // The refresh clock runs here, between slices, where a timer would fire late.
      if (this.now() - this.lastSnapshot >= FRAME_MS) this.emit();
    }
  }

  /** Ink's time per frame, so the header can show what the UI costs. */
  noteRender(ms: number): void {
    this.renderMs = this.renderMs === 0 ? ms : this.renderMs * 0.9 + ms * 0.1;
  }

  snapshot(): DashboardSnapshot {
    const t = this.now();
    const wall = t - this.wallStart;
    this.lastSnapshot = t;
    this.snapshotTimes.push(t);
    while (this.snapshotTimes[0]! <= t - 1000) this.snapshotTimes.shift();
    const sel = this.vms[this.selected]!;
    return {
      // The machine's host, not the scene's: a migration (`v`) moves the VM to another.
      host: sel.machine.host.info,
      vms: this.vms.map((vm) => this.vmSnapshot(vm, t, vm === sel)),
      selected: this.selected,
      paused: this.paused,
      message: this.message,
      guestShare: wall > 0 ? Math.min(1, this.guestMs / wall) : 0,
      refreshRate: this.snapshotTimes.length,
      renderMs: this.renderMs,
    };
  }

  private totals(vm: VmRuntime): Record<string, number> {
    const stats = vm.machine.vcpu.stats();
    if (Object.keys(stats).length > 0) return { ...stats };
    // Without kernel stats, count the userspace exits the VMM saw.
    const counts: Record<string, number> = { exits: 0 };
    for (const [k, n] of Object.entries(vm.machine.exitCounts)) { counts.exits! += n; counts[`exit.${k}`] = n; }
    return counts;
  }

  private vmSnapshot(vm: VmRuntime, t: number, selected: boolean): VmSnapshot {
    const exits: ExitRow[] = vm.rates.sample(t, this.totals(vm)).map(([name, total, rate]) => ({ name, total, rate, child: isChildStat(name) }));
    const m = vm.machine;
    const state: VmState = m.done ? 'ended' : this.paused ? 'paused' : vm.lastStep?.exit.kind === 'hlt' ? 'halted' : m.vcpu.isGuestMode?.() ? 'in L2' : 'running';
    return {
      id: vm.id,
      name: vm.name,
      vendor: m.host.info.vendor,
      migrations: m.migrations.length,
      lastMigration: m.migrations.at(-1) ?? null,
      state,
      ended: m.final ? m.final.exit + (m.final.code !== undefined ? ` (code ${m.final.code})` : '') : null,
      exits,
      vcpu: selected && this.focus === 'vcpu' ? this.vcpuSnapshot(vm) : null,
      inspection: selected && this.focus === 'inspector' ? m.vcpu.inspect() : null,
      memslots: m.vm.memslots(),
      mmu: m.vm.mmuStats(),
      serial: m.serialText.slice(-SERIAL_KEEP),
      lastExit: vm.lastStep ? stepFields(vm.lastStep) : null,
    };
  }

  private vcpuSnapshot(vm: VmRuntime): VcpuSnapshot {
    const m = vm.machine;
    const regs = m.regs();
    const sregs = m.sregs();
    const linear = ripLinear(regs, sregs);
    const paging = (sregs.cr0 & 0x80000000) !== 0;
    const gpa = paging ? (m.vcpu.translate?.(linear) ?? null) : Number(linear);
    let disasm: string[];
    if (gpa === null) disasm = [paging ? '(RIP is not mapped, or KVM_TRANSLATE is not available)' : ''];
    else if (gpa >= m.mem) disasm = ['(RIP is outside guest memory)'];
    else disasm = disassemble(m.memory.read(gpa, Math.min(48, m.mem - gpa)), codeBitness(sregs), linear, 6);
    return {
      mode: cpuMode(sregs), cpl: cpuCpl(sregs), rip: regs.rip, disasm, regs: gprList(regs),
      cr0: sregs.cr0, cr3: sregs.cr3, cr4: sregs.cr4, efer: sregs.efer, rflags: Number(regs.rflags & 0xffffffffn),
    };
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setImmediate(() => {
      this.timer = null;
      this.runSlice();
      const runnable = this.vms.some((vm) => !vm.machine.done);
      if (runnable && !this.paused) this.schedule();
    });
  }

  private emit(): void {
    for (const l of this.listeners) l();
  }
}
