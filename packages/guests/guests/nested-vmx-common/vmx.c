/* The L1 hypervisor library of the nested-vmx-* guests (see vmx.h). */
#include "vmx.h"

uint8_t vmxon_region[4096] __attribute__((aligned(4096)));
uint8_t vmcs[4096] __attribute__((aligned(4096)));
uint8_t l2_stack[4096] __attribute__((aligned(4096)));

uint64_t l2_regs[16];
uint64_t launch_flag; /* read by vmx_enter only */
uint64_t l1_rsp; /* vmx_enter's RSP at the last entry, for the exit point */

int vmx_on_load_vmcs(void)
{
	uint32_t rev = (uint32_t)rdmsr(MSR_IA32_VMX_BASIC) & 0x7fffffff;
	write_cr4(read_cr4() | X86_CR4_VMXE);
	*(uint32_t *)vmxon_region = rev;
	*(uint32_t *)vmcs = rev;
	uint64_t on = (uint64_t)vmxon_region, pa = (uint64_t)vmcs;
	int r = vmxon(&on);
	r |= vmclear(&pa);
	r |= vmptrld(&pa);
	return r;
}

/*
 * vmx_enter: callee-saved registers on L1's stack, HOST_RSP/HOST_RIP pointing here, L2's GPRs
 * loaded, then VMLAUNCH or VMRESUME. A VM exit lands on vmx_exit_point with RSP = HOST_RSP and
 * L2's GPRs still in the registers; they are stored in l2_regs before L1's are restored from
 * the stack of the vmx_enter that entered.
 */
asm(".text\n"
    ".globl vmx_enter\n"
    "vmx_enter:\n\t"
    "push %rbp\n\tpush %rbx\n\tpush %r12\n\tpush %r13\n\tpush %r14\n\tpush %r15\n\t"
    "mov %rdi, launch_flag(%rip)\n\t"
    "mov %rsp, l1_rsp(%rip)\n\t"
    /*
     * HOST_RSP/HOST_RIP are written at launch only (a VMWRITE at every entry would cost L1 an
     * exit to L0 each time); the exit point takes RSP from l1_rsp, so resumes may come from
     * any frame.
     */
    "test %rdi, %rdi\n\tjz 4f\n\t"
    "mov $0x6c14, %rdx\n\tvmwrite %rsp, %rdx\n\t"
    "lea vmx_exit_point(%rip), %rax\n\tmov $0x6c16, %rdx\n\tvmwrite %rax, %rdx\n"
    "4:\t"
    "mov l2_regs+8(%rip), %rcx\n\tmov l2_regs+16(%rip), %rdx\n\tmov l2_regs+24(%rip), %rbx\n\t"
    "mov l2_regs+40(%rip), %rbp\n\tmov l2_regs+48(%rip), %rsi\n\tmov l2_regs+56(%rip), %rdi\n\t"
    "mov l2_regs+64(%rip), %r8\n\tmov l2_regs+72(%rip), %r9\n\tmov l2_regs+80(%rip), %r10\n\t"
    "mov l2_regs+88(%rip), %r11\n\tmov l2_regs+96(%rip), %r12\n\tmov l2_regs+104(%rip), %r13\n\t"
    "mov l2_regs+112(%rip), %r14\n\tmov l2_regs+120(%rip), %r15\n\t"
    "cmpq $0, launch_flag(%rip)\n\t"
    "mov l2_regs(%rip), %rax\n\t"
    "jne 1f\n\t"
    "vmresume\n\tjmp 2f\n"
    "1:\tvmlaunch\n"
    "2:\tpushfq\n\tpop %rax\n\t"
    "pop %r15\n\tpop %r14\n\tpop %r13\n\tpop %r12\n\tpop %rbx\n\tpop %rbp\n\t"
    "test $1, %al\n\tjnz 3f\n\tmov $2, %eax\n\tret\n"
    "3:\tmov $1, %eax\n\tret\n"
    "vmx_exit_point:\n\t"
    "mov %rax, l2_regs(%rip)\n\tmov %rcx, l2_regs+8(%rip)\n\tmov %rdx, l2_regs+16(%rip)\n\t"
    "mov %rbx, l2_regs+24(%rip)\n\tmov %rbp, l2_regs+40(%rip)\n\tmov %rsi, l2_regs+48(%rip)\n\t"
    "mov %rdi, l2_regs+56(%rip)\n\tmov %r8, l2_regs+64(%rip)\n\tmov %r9, l2_regs+72(%rip)\n\t"
    "mov %r10, l2_regs+80(%rip)\n\tmov %r11, l2_regs+88(%rip)\n\tmov %r12, l2_regs+96(%rip)\n\t"
    "mov %r13, l2_regs+104(%rip)\n\tmov %r14, l2_regs+112(%rip)\n\tmov %r15, l2_regs+120(%rip)\n\t"
    "mov l1_rsp(%rip), %rsp\n\t"
    "pop %r15\n\tpop %r14\n\tpop %r13\n\tpop %r12\n\tpop %rbx\n\tpop %rbp\n\t"
    "xor %eax, %eax\n\tret\n");

static uint64_t tss_base(const struct dtr *gdt, uint16_t tr)
{
	const uint8_t *d = (const uint8_t *)(gdt->base + (tr & ~7));
	uint64_t base = d[2] | (d[3] << 8) | ((uint64_t)d[4] << 16) | ((uint64_t)d[7] << 24);
	return base | ((uint64_t)*(const uint32_t *)(d + 8) << 32);
}

void vmcs_setup_l2(void (*rip)(void), void *rsp, uint32_t proc, void *io_a, void *io_b, void *msr_bitmap)
{
	struct dtr gdt, idt;
	uint16_t tr;
	asm volatile("sgdt %0\n\tsidt %1\n\tstr %2" : "=m"(gdt), "=m"(idt), "=r"(tr));
	uint64_t trbase = tss_base(&gdt, tr);

	vmwrite(PIN_BASED_VM_EXEC_CONTROL, vmx_ctl(MSR_IA32_VMX_TRUE_PINBASED_CTLS, 0));
	vmwrite(CPU_BASED_VM_EXEC_CONTROL, vmx_ctl(MSR_IA32_VMX_TRUE_PROCBASED_CTLS, proc));
	vmwrite(VM_EXIT_CONTROLS, vmx_ctl(MSR_IA32_VMX_TRUE_EXIT_CTLS, VM_EXIT_HOST_ADDR_SPACE_SIZE));
	vmwrite(VM_ENTRY_CONTROLS, vmx_ctl(MSR_IA32_VMX_TRUE_ENTRY_CTLS, VM_ENTRY_IA32E_MODE));
	vmwrite(EXCEPTION_BITMAP, 0);
	if (io_a) {
		vmwrite(IO_BITMAP_A, (uint64_t)io_a);
		vmwrite(IO_BITMAP_B, (uint64_t)io_b);
	}
	if (msr_bitmap)
		vmwrite(MSR_BITMAP, (uint64_t)msr_bitmap);
	vmwrite(VMCS_LINK_POINTER, ~0ull);
	vmwrite(CR0_GUEST_HOST_MASK, 0);
	vmwrite(CR4_GUEST_HOST_MASK, 0);

	/* Host state: L1 as it is now. */
	vmwrite(HOST_CR0, read_cr0());
	vmwrite(HOST_CR3, read_cr3());
	vmwrite(HOST_CR4, read_cr4());
	vmwrite(HOST_CS_SELECTOR, KERNEL_CS64);
	vmwrite(HOST_SS_SELECTOR, KERNEL_DS);
	vmwrite(HOST_DS_SELECTOR, KERNEL_DS);
	vmwrite(HOST_ES_SELECTOR, KERNEL_DS);
	vmwrite(HOST_FS_SELECTOR, KERNEL_DS);
	vmwrite(HOST_GS_SELECTOR, KERNEL_DS);
	vmwrite(HOST_TR_SELECTOR, tr);
	vmwrite(HOST_FS_BASE, 0);
	vmwrite(HOST_GS_BASE, 0);
	vmwrite(HOST_TR_BASE, trbase);
	vmwrite(HOST_GDTR_BASE, gdt.base);
	vmwrite(HOST_IDTR_BASE, idt.base);
	vmwrite(HOST_IA32_SYSENTER_CS, 0);
	vmwrite(HOST_IA32_SYSENTER_ESP, 0);
	vmwrite(HOST_IA32_SYSENTER_EIP, 0);

	/* Guest state: a flat 64-bit L2 on L1's page tables and descriptor tables. */
	vmwrite(GUEST_CR0, read_cr0());
	vmwrite(GUEST_CR3, read_cr3());
	vmwrite(GUEST_CR4, read_cr4());
	vmwrite(CR0_READ_SHADOW, read_cr0());
	vmwrite(CR4_READ_SHADOW, read_cr4());
	for (int i = 0; i < 6; i++) {
		int cs = i == 1;
		vmwrite(GUEST_ES_SELECTOR + 2 * i, cs ? KERNEL_CS64 : KERNEL_DS);
		vmwrite(GUEST_ES_BASE + 2 * i, 0);
		vmwrite(GUEST_ES_LIMIT + 2 * i, 0xffffffff);
		vmwrite(GUEST_ES_AR_BYTES + 2 * i, cs ? 0xa09b : 0xc093);
	}
	vmwrite(GUEST_LDTR_SELECTOR, 0);
	vmwrite(GUEST_ES_BASE + 12, 0);
	vmwrite(GUEST_ES_LIMIT + 12, 0);
	vmwrite(GUEST_ES_AR_BYTES + 12, 0x10000);
	vmwrite(GUEST_TR_SELECTOR, tr);
	vmwrite(GUEST_ES_BASE + 14, trbase);
	vmwrite(GUEST_ES_LIMIT + 14, 0x67);
	vmwrite(GUEST_ES_AR_BYTES + 14, 0x8b);
	vmwrite(GUEST_GDTR_BASE, gdt.base);
	vmwrite(GUEST_GDTR_LIMIT, gdt.limit);
	vmwrite(GUEST_IDTR_BASE, idt.base);
	vmwrite(GUEST_IDTR_LIMIT, idt.limit);
	vmwrite(GUEST_DR7, 0x400);
	vmwrite(GUEST_RSP, (uint64_t)rsp);
	vmwrite(GUEST_RIP, (uint64_t)rip);
	vmwrite(GUEST_RFLAGS, 2);
	vmwrite(GUEST_INTERRUPTIBILITY_INFO, 0);
	vmwrite(GUEST_ACTIVITY_STATE, 0);
	vmwrite(GUEST_PENDING_DBG_EXCEPTIONS, 0);
	vmwrite(GUEST_SYSENTER_CS, 0);
	vmwrite(GUEST_SYSENTER_ESP, 0);
	vmwrite(GUEST_SYSENTER_EIP, 0);
}

void vmx_enter_expect_exit(const char *entry, int launch, const char *exit, uint32_t reason)
{
	report_eq(entry, vmx_enter(launch), VMX_OK);
	report_eq(exit, vmread(VM_EXIT_REASON), reason);
}

uint64_t ept_identity_map(struct ept_tables *t)
{
	t->pml4[0] = (uint64_t)t->pdpt | EPT_RWX;
	t->pdpt[0] = (uint64_t)t->pd | EPT_RWX;
	t->pd[0] = (uint64_t)t->pt | EPT_RWX;
	for (unsigned i = 0; i < 512; i++)
		t->pt[i] = (uint64_t)i * 4096 | EPT_RWX | EPT_WB;
	return (uint64_t)t->pml4 | EPTP_WB | EPTP_PWL4;
}

void vmcs_enable_ept(uint64_t eptp)
{
	vmwrite(SECONDARY_VM_EXEC_CONTROL, vmx_ctl(MSR_IA32_VMX_PROCBASED_CTLS2, SECONDARY_EXEC_ENABLE_EPT));
	vmwrite(EPT_POINTER, eptp);
}

int invept_single(uint64_t eptp)
{
	struct { uint64_t eptp, zero; } desc = { eptp, 0 };
	int r;
	asm volatile("invept %1, %2\n\t" VMX_STATUS_ASM : "=r"(r) : "m"(desc), "r"(1ul) : "cc", "memory");
	return r;
}
