/**
 * One physical machine: host physical memory with a page allocator, N physical CPUs brought
 * up as a 64-bit Linux kernel leaves them, a timer tick on each, the vendor module slot
 * (modprobe / rmmod) and the VMM processes.
 */
import {
  Cpu, PhysMemory, Bus, CR0, CR4, EFER, RFLAGS, SEG,
  type CpuModel, type VirtCpu,
} from '@kvmts/x86';
import type { HostKernel, Pcpu } from '../x86/kvm-types.js';
import type { KvmX86InitOps } from '../x86/kvm-x86-ops.js';
import { ERRNO } from '../uapi/errno.js';
import { PageAllocator } from './page-alloc.js';
import { Process } from './process.js';
import type { KFile } from './file.js';
import { KvmModule } from '../kvm/kvm-module.js';

/** Linux's LOCAL_TIMER_VECTOR: the APIC timer interrupt the host tick raises. */
export const LOCAL_TIMER_VECTOR = 0xec;
/** Guest instructions between host ticks (a 1 ms tick at ~1 G instr/s). */
export const HOST_TICK_INSTRUCTIONS = 1_000_000;

/** x86_64 Linux's GDT layout: __KERNEL_CS 0x10, __KERNEL_DS 0x18, the TSS at entry 8. */
export const HOST_SELECTORS = { KERNEL_CS: 0x10, KERNEL_DS: 0x18, TSS: 0x40 } as const;

export type CpuFactory = (bus: Bus, model: CpuModel) => VirtCpu;

export interface HostOptions {
  model: CpuModel;
  pcpus: number;
  memBytes: number;
  /** Builds a CPU; defaults to @kvmts/x86's Cpu. */
  createCpu?: CpuFactory;
  tickInstructions?: number;
  /** Where the kernel log (printk) goes; kept in `host.dmesg` too. */
  printk?: (line: string) => void;
}

const defaultCpuFactory: CpuFactory = (bus, model) => new Cpu({ bus, model });

/** The host-side GDT/IDT/TR and page tables of one pCPU, for the vendor's HOST_* state. */
export interface HostCpuTables {
  readonly gdt: number;
  readonly idt: number;
  readonly tss: number;
  readonly cr3: number;
}

export class Host implements HostKernel {
  readonly model: CpuModel;
  readonly mem: PhysMemory;
  readonly pcpus: Pcpu[] = [];
  readonly tables: HostCpuTables[] = [];
  readonly createCpu: CpuFactory;
  readonly dmesg: string[] = [];
  private readonly alloc: PageAllocator;
  private readonly printk: ((line: string) => void) | undefined;
  private readonly tick: number;
  private nextPid = 1000;
  /** The loaded vendor module (kvm.ko + kvm_intel/kvm_amd), or null. */
  module: KvmModule | null = null;

  constructor(opts: HostOptions) {
    this.model = opts.model;
    this.mem = new PhysMemory(opts.memBytes);
    this.alloc = new PageAllocator(this.mem);
    this.createCpu = opts.createCpu ?? defaultCpuFactory;
    this.printk = opts.printk;
    this.tick = opts.tickInstructions ?? HOST_TICK_INSTRUCTIONS;
    const cr3 = this.buildDirectMap();
    for (let id = 0; id < opts.pcpus; id++) {
      const cpu = this.createCpu(new Bus(this.mem), this.model);
      cpu.ext = this.model.createExtension(cpu);
      const t = this.bringUp(cpu, cr3);
      this.tables.push(t);
      this.startTick(cpu);
      this.pcpus.push({ id, cpu, vendor: null });
    }
  }

  allocPage(): number { return this.alloc.allocPage(); }
  allocPages(order: number): number { return this.alloc.allocPages(order); }
  freePage(hpa: number): void { this.alloc.freePage(hpa); }
  get pagesInUse(): number { return this.alloc.pagesInUse; }

  log(line: string): void {
    this.dmesg.push(line);
    this.printk?.(line);
  }

  /**
   * The kernel's page tables: physical memory identity-mapped with 2 MiB pages, so a linear
   * address the kernel uses (a VMXON region pointer on its stack, a VMCB) is its HPA.
   */
  private buildDirectMap(): number {
    const pml4 = this.allocPage();
    const pdpt = this.allocPage();
    this.mem.write32(pml4, pdpt | 0x3);
    const gib = Math.ceil(this.mem.size / 2 ** 30);
    for (let g = 0; g < Math.min(gib, 512); g++) {
      const pd = this.allocPage();
      this.mem.write32(pdpt + g * 8, pd | 0x3);
      for (let i = 0; i < 512; i++) {
        const pa = g * 2 ** 30 + i * 2 ** 21;
        this.mem.write32(pd + i * 8, (pa % 2 ** 32) | 0x83); // P | RW | PS
        this.mem.write32(pd + i * 8 + 4, Math.floor(pa / 2 ** 32));
      }
    }
    return pml4;
  }

  /** State as x86_64 Linux leaves a CPU after boot: long mode, paging, kernel segments, TR loaded. */
  private bringUp(cpu: VirtCpu, cr3: number): HostCpuTables {
    const gdt = this.allocPage();
    const idt = this.allocPage();
    const tss = this.allocPage();
    // Flat 64-bit kernel code and data descriptors, and a busy 64-bit TSS descriptor.
    this.mem.write64(gdt + HOST_SELECTORS.KERNEL_CS, 0x00af9b000000ffffn);
    this.mem.write64(gdt + HOST_SELECTORS.KERNEL_DS, 0x00cf93000000ffffn);
    const t = BigInt(tss);
    const tssLo = 0x67n | ((t & 0xffffffn) << 16n) | (0x8bn << 40n) | (((t >> 24n) & 0xffn) << 56n);
    this.mem.write64(gdt + HOST_SELECTORS.TSS, tssLo);
    this.mem.write64(gdt + HOST_SELECTORS.TSS + 8, t >> 32n);
    cpu.cr0 = CR0.PE | CR0.MP | CR0.ET | CR0.NE | CR0.WP | CR0.AM | CR0.PG; // 0x80050033
    cpu.cr4 = CR4.PAE | CR4.PGE | CR4.OSFXSR | CR4.OSXMMEXCPT;
    cpu.efer = EFER.SCE | EFER.LME | EFER.LMA | EFER.NXE;
    cpu.cr3 = cr3;
    cpu.seg[SEG.CS] = { selector: HOST_SELECTORS.KERNEL_CS, base: 0, limit: 0xffffffff, ar: 0xa09b };
    cpu.seg[SEG.SS] = { selector: HOST_SELECTORS.KERNEL_DS, base: 0, limit: 0xffffffff, ar: 0xc093 };
    for (const s of [SEG.DS, SEG.ES, SEG.FS, SEG.GS]) cpu.seg[s] = { selector: 0, base: 0, limit: 0xffffffff, ar: 0x1c093 };
    cpu.seg[SEG.TR] = { selector: HOST_SELECTORS.TSS, base: tss, limit: 0x67, ar: 0x8b };
    cpu.seg[SEG.LDTR] = { selector: 0, base: 0, limit: 0, ar: 0x10082 };
    cpu.gdtr = { base: gdt, limit: 0x7f };
    cpu.idtr = { base: idt, limit: 0xfff };
    cpu.setRflags(RFLAGS.FIXED1);
    cpu.rip = 0;
    cpu.stateChanged();
    return { gdt, idt, tss, cr3 };
  }

  hrtimerStart(pcpu: Pcpu, expires: number): void {
    const cpu = pcpu.cpu;
    if (expires < cpu.deadline) cpu.deadline = expires;
  }

  /** The host timer: an interrupt every `tick` instructions, so a running guest exits and KVM sees signals. */
  private startTick(cpu: VirtCpu): void {
    cpu.deadline = cpu.icount + this.tick;
    cpu.onDeadline = () => {
      cpu.raiseInterrupt(LOCAL_TIMER_VECTOR);
      cpu.deadline = cpu.icount + this.tick;
    };
  }

  /** modprobe kvm_intel / kvm_amd: kvm_x86_vendor_init. Returns 0 or -errno. */
  modprobe(initOps: KvmX86InitOps): number {
    if (this.module) return -ERRNO.EEXIST;
    const m = KvmModule.init(this, initOps);
    if (typeof m === 'number') return m;
    this.module = m;
    return 0;
  }

  /** rmmod: refused with -EBUSY while any VM exists. */
  rmmod(): number {
    if (!this.module) return -ERRNO.ENOENT;
    if (this.module.vms.size > 0) return -ERRNO.EBUSY;
    this.module.exit();
    this.module = null;
    return 0;
  }

  /** A new VMM process. */
  spawn(): Process {
    return new Process(this, this.nextPid++);
  }

  /** For the dashboard: the machine, the loaded module and every VM with its slots, MMU and stats. */
  snapshot() {
    return {
      cpuModel: this.model.name,
      pcpus: this.pcpus.length,
      memBytes: this.mem.size,
      residentBytes: this.mem.residentBytes,
      pagesInUse: this.pagesInUse,
      module: this.module?.ops.name ?? null,
      vms: this.module ? [...this.module.vms].map((vm) => vm.snapshot()) : [],
    };
  }

  /** The VFS lookup: a new open file, or -errno. */
  openDevice(path: string): KFile | number {
    if (path !== '/dev/kvm') return -ERRNO.ENOENT;
    if (!this.module) return -ERRNO.ENOENT;
    return this.module.openDev();
  }
}
