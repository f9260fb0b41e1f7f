/*
 * nested-vmx-shadow: heavy VMREAD/VMWRITE traffic from an L1 hypervisor, to show what VMCS
 * shadowing saves. L2 executes CPUID 200 times; on each exit L1 VMREADs eight fields that L0
 * shadows (exit reason, qualification, instruction length, GUEST_RIP, GUEST_RSP, GUEST_RFLAGS,
 * GUEST_CR0, GUEST_INTERRUPTIBILITY_INFO) and four it does not (GUEST_CS_SELECTOR,
 * GUEST_ES_BASE, GUEST_DR7, VMCS_LINK_POINTER), VMWRITEs GUEST_RIP and GUEST_RFLAGS (shadowed)
 * and GUEST_DR7 (not), and checks every value against what it knows. Whether L0 shadows or
 * not, the results are the same; only the number of L1 exits differs.
 */
#include "../nested-vmx-common/vmx.h"

#define ITERS 200

void l2_loop(void);
asm(".text\n"
    "l2_loop:\n\t"
    "mov $200, %r12d\n"
    "1:\txor %eax, %eax\n\txor %ecx, %ecx\n\tcpuid\n\tdec %r12d\n\tjnz 1b\n\t"
    "hlt\n\tud2\n");

static unsigned exits, bad;
static uint64_t dr7 = 0x400;

/* Reads the twelve fields and checks each, writes the three, steps L2 on; L2's HLT ends the run. */
static int handle_exit(uint32_t reason)
{
	if (reason == EXIT_REASON_HLT)
		return 0;
	exits++;
	uint64_t rip = (uint64_t)l2_loop;
	uint64_t len = vmread(VM_EXIT_INSTRUCTION_LEN);
	uint64_t grip = vmread(GUEST_RIP);
	bad += reason != EXIT_REASON_CPUID;
	bad += vmread(EXIT_QUALIFICATION) != 0;
	bad += len != 2;
	bad += vmread(GUEST_RSP) != (uint64_t)L2_STACK_TOP;
	bad += (vmread(GUEST_RFLAGS) & ~0x8d5ul) != 2; /* arithmetic flags are L2's */
	bad += vmread(GUEST_CR0) != read_cr0();
	bad += vmread(GUEST_INTERRUPTIBILITY_INFO) != 0;
	bad += vmread(GUEST_CS_SELECTOR) != KERNEL_CS64;
	bad += vmread(GUEST_ES_BASE) != 0;
	bad += vmread(GUEST_DR7) != dr7;
	bad += vmread(VMCS_LINK_POINTER) != ~0ull;
	/* The loop body is 9 bytes: XOR, XOR, CPUID, DEC, JNZ back to the first XOR. */
	bad += grip < rip || grip > rip + 16;
	vmwrite(GUEST_RIP, grip + len);
	vmwrite(GUEST_RFLAGS, 2);
	dr7 ^= 1; /* L0 keeps whatever L1 writes; DR7.L0 has no effect without DR0 */
	vmwrite(GUEST_DR7, dr7);
	return 1;
}

int main(void)
{
	report_eq("VMXON, VMCLEAR, VMPTRLD", vmx_on_load_vmcs(), VMX_OK);
	vmcs_setup_l2(l2_loop, L2_STACK_TOP, CPU_BASED_HLT_EXITING, 0, 0, 0);

	bad += vmx_run_l2(handle_exit) != VMX_OK;
	report_eq("L2 CPUID exits", exits, ITERS);
	report_eq("fields that were not what L1 knows", bad, 0);
	report_eq("VMXOFF", vmxoff(), VMX_OK);
	return report_summary();
}
