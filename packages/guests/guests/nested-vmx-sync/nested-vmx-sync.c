/*
 * nested-vmx-sync: the guest state L2 seldom changes (segments, descriptor tables) reaches L1
 * exactly, although L0 copies it between vmcs02 and vmcs12 only when needed (KVM's
 * sync_vmcs02_to_vmcs12_rare and prepare_vmcs02_rare). L2 loads a null ES, a smaller GDT limit
 * and a new GS base, then VMCALLs: L1's VMREADs of those fields see L2's values. L1 then
 * VMWRITEs ES (selector, limit, access rights: a null load left a limit that G=1 forbids), the
 * GDT limit and the GS base, resumes, and L2 reads back what L1 wrote. L2 loads a null ES
 * again, and L1, without looking, VMWRITEs an unrelated field that is not shadowed: L2 keeps its
 * own ES. A last run ends at a VMCALL; L1 VMCLEARs the VMCS, and the test reads vmcs12 in L1's
 * memory.
 */
#include "../nested-vmx-common/vmx.h"

#define GUEST_GS_BASE 0x6810
#define MSR_GS_BASE 0xc0000101u
#define L2_GS_BASE 0x7000ul
#define L1_GS_BASE 0x9000ul

/* All zero: L2's RDMSR/WRMSR of GS_BASE do not exit to L1. */
static uint8_t msr_bitmap[4096] __attribute__((aligned(4096)));

struct dtr l2_gdt;

void l2_main(void);
void l2_null_es(void);
/* R12: ES selector, R13: GDT limit, R14: GS base, each as L2 finds them after L1's VMWRITEs. */
asm(".text\n"
    "l2_main:\n\t"
    "xor %eax, %eax\n\tmov %eax, %es\n\t"
    "sgdt l2_gdt(%rip)\n\tsubw $8, l2_gdt(%rip)\n\tlgdt l2_gdt(%rip)\n\t"
    "mov $0xc0000101, %ecx\n\tmov $0x7000, %eax\n\txor %edx, %edx\n\twrmsr\n\t"
    "vmcall\n\t"
    "mov %es, %eax\n\tmovzx %ax, %r12\n\t"
    "sgdt l2_gdt(%rip)\n\tmovzwq l2_gdt(%rip), %r13\n\t"
    "mov $0xc0000101, %ecx\n\trdmsr\n\tshl $32, %rdx\n\tor %rax, %rdx\n\tmov %rdx, %r14\n\t"
    "vmcall\n\t"
    "hlt\n\tud2\n"
    /* R15: ES as L2 finds it after a VMCALL at which L1 VMWRITEs an unrelated field. */
    "l2_null_es:\n\t"
    "xor %eax, %eax\n\tmov %eax, %es\n\t"
    "vmcall\n\t"
    "mov %es, %eax\n\tmovzx %ax, %r15\n\t"
    "vmcall\n\t"
    "hlt\n\tud2\n");

int main(void)
{
	report_eq("VMXON, VMCLEAR, VMPTRLD", vmx_on_load_vmcs(), VMX_OK);
	vmcs_setup_l2(l2_main, L2_STACK_TOP, CPU_BASED_HLT_EXITING | CPU_BASED_USE_MSR_BITMAPS, 0, 0, msr_bitmap);
	uint32_t gdt_limit = vmread(GUEST_GDTR_LIMIT);

	vmx_enter_expect_exit("VMLAUNCH", 1, "exit: VMCALL", EXIT_REASON_VMCALL);
	report_eq("L2's ES selector", vmread(GUEST_ES_SELECTOR), 0);
	report_eq("L2's ES is unusable", (vmread(GUEST_ES_AR_BYTES) >> 16) & 1, 1);
	report_eq("L2's GDT limit", vmread(GUEST_GDTR_LIMIT), gdt_limit - 8);
	report_eq("L2's GS base", vmread(GUEST_GS_BASE), L2_GS_BASE);

	vmwrite(GUEST_ES_SELECTOR, KERNEL_DS);
	vmwrite(GUEST_ES_LIMIT, 0xffffffff);
	vmwrite(GUEST_ES_AR_BYTES, 0xc093);
	vmwrite(GUEST_GDTR_LIMIT, gdt_limit);
	vmwrite(GUEST_GS_BASE, L1_GS_BASE);
	skip_exit_insn();
	vmx_enter_expect_exit("VMRESUME", 0, "exit: VMCALL again", EXIT_REASON_VMCALL);
	report_eq("L2 got L1's ES selector", l2_regs[12], KERNEL_DS);
	report_eq("L2 got L1's GDT limit", l2_regs[13], gdt_limit);
	report_eq("L2 got L1's GS base", l2_regs[14], L1_GS_BASE);

	/*
	 * L2 loads a null ES; L1 does not look, but VMWRITEs a field that is not shadowed (so vmcs12
	 * is dirty and prepare_vmcs02_rare runs): L2 must keep its own ES, not vmcs12's stale one.
	 */
	vmwrite(GUEST_RIP, (uint64_t)l2_null_es);
	vmx_enter_expect_exit("VMRESUME at a null ES load", 0, "exit: VMCALL", EXIT_REASON_VMCALL);
	vmwrite(GUEST_SYSENTER_CS, 0);
	skip_exit_insn();
	report_eq("VMRESUME after an unrelated VMWRITE", vmx_enter(0), VMX_OK);
	report_eq("L2 kept its own null ES", l2_regs[15], 0);
	vmwrite(GUEST_ES_SELECTOR, KERNEL_DS);
	vmwrite(GUEST_ES_LIMIT, 0xffffffff);
	vmwrite(GUEST_ES_AR_BYTES, 0xc093);

	/* L2 moves ES to null again without L1 looking: VMCLEAR must still write it to vmcs12. */
	skip_exit_insn();
	vmwrite(GUEST_RIP, (uint64_t)l2_main);
	vmx_enter_expect_exit("VMRESUME from the top", 0, "exit: VMCALL", EXIT_REASON_VMCALL);
	uint64_t pa = (uint64_t)vmcs;
	report_eq("VMCLEAR", vmclear(&pa), VMX_OK);
	report_eq("VMXOFF", vmxoff(), VMX_OK);
	return report_summary();
}
