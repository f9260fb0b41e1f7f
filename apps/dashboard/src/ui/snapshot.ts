/** The plain data the dashboard's components render: no live objects, nothing that runs a guest. */
import type { HostInfo, MemslotInfo, MigrationReport } from '@kvmts/vmm';
import type { VendorInspection } from '@kvmts/core';

/** `in L2`: running a nested guest (is_guest_mode). */
export type VmState = 'running' | 'in L2' | 'paused' | 'halted' | 'ended';

export interface ExitRow {
  readonly name: string;
  readonly total: number;
  /** Per second, over the last second or so. */
  readonly rate: number;
  /** A child event (one exit reason under "exits"). */
  readonly child: boolean;
}

export interface VcpuSnapshot {
  readonly mode: string;
  readonly cpl: number;
  readonly rip: bigint;
  /** Disassembly at RIP (a few instructions), or why there is none. */
  readonly disasm: readonly string[];
  readonly regs: readonly (readonly [string, bigint])[];
  readonly cr0: number;
  readonly cr3: number;
  readonly cr4: number;
  readonly efer: number;
  readonly rflags: number;
}

export interface LastExit {
  readonly kind: string;
  readonly fields: readonly (readonly [string, string])[];
}

export interface VmSnapshot {
  readonly id: number;
  readonly name: string;
  readonly vendor: 'intel' | 'amd';
  readonly state: VmState;
  /** The final exit, once the guest has ended. */
  readonly ended: string | null;
  readonly exits: readonly ExitRow[];
  /** Read only for the selected VM while the vCPU view is shown (KVM_GET_REGS, disassembly). */
  readonly vcpu: VcpuSnapshot | null;
  /** Read only for the selected VM while the inspector is shown. */
  readonly inspection: VendorInspection | null;
  readonly memslots: readonly MemslotInfo[];
  readonly mmu: { readonly tdpPages: number; readonly dirtyPages: number } | null;
  readonly serial: string;
  /** Where `n` stopped. */
  readonly lastExit: LastExit | null;
  /** Live migrations so far (`v`), and the last one's figures. */
  readonly migrations?: number;
  readonly lastMigration?: MigrationReport | null;
}

/** What the screen shows, so the model reads only that (the vendor's inspect() is not free). */
export type Focus = 'exits' | 'vcpu' | 'inspector' | 'memory' | 'serial';

export interface DashboardSnapshot {
  readonly host: HostInfo;
  readonly vms: readonly VmSnapshot[];
  readonly selected: number;
  readonly paused: boolean;
  readonly message: string | null;
  /** Share of wall time spent inside KVM_RUN: what the UI leaves to the guests. */
  readonly guestShare: number;
  /** Snapshots taken in the last second: the screen's refresh rate. */
  readonly refreshRate: number;
  /** Ink's mean time to render one frame, in ms: the UI's cost per refresh. */
  readonly renderMs: number;
}
