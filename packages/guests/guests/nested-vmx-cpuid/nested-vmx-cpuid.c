/*
 * nested-vmx-cpuid: the nested.cpuid benchmark's workload. L2 executes CPUID (leaf 0) 2000
 * times; each exits to L0, is reflected to L1, whose exit loop VMREADs the reason, the
 * instruction length and GUEST_RIP, VMWRITEs GUEST_RIP and VMRESUMEs: the L1 round trip a
 * nested hypervisor pays for every L2 CPUID. L2 runs under a VPID of its own, as KVM gives its
 * guests, so that its entries and exits need not flush its TLB (SDM 29.4.3.3).
 */
#include "../nested-vmx-common/vmx.h"

#define ITERS 2000

void l2_cpuid_loop(void);
asm(".text\n"
    "l2_cpuid_loop:\n\t"
    "mov $2000, %r12d\n"
    "1:\txor %eax, %eax\n\txor %ecx, %ecx\n\tcpuid\n\tdec %r12d\n\tjnz 1b\n\t"
    "hlt\n\tud2\n");

static unsigned cpuids, other;

/* Counts the exit and steps L2 past its instruction; L2's HLT ends the run. */
static int handle_exit(uint32_t reason)
{
	if (reason == EXIT_REASON_HLT)
		return 0;
	if (reason == EXIT_REASON_CPUID)
		cpuids++;
	else
		other++;
	skip_exit_insn();
	return 1;
}

int main(void)
{
	report_eq("VMXON, VMCLEAR, VMPTRLD", vmx_on_load_vmcs(), VMX_OK);
	vmcs_setup_l2(l2_cpuid_loop, L2_STACK_TOP, CPU_BASED_HLT_EXITING | CPU_BASED_ACTIVATE_SECONDARY, 0, 0, 0);
	vmwrite(SECONDARY_VM_EXEC_CONTROL, vmx_ctl(MSR_IA32_VMX_PROCBASED_CTLS2, SECONDARY_EXEC_ENABLE_VPID));
	vmwrite(VIRTUAL_PROCESSOR_ID, 1);

	vmx_run_l2(handle_exit);
	report_eq("L2 CPUIDs handled by L1", cpuids, ITERS);
	report_eq("other exits", other, 0);
	report_eq("VMXOFF", vmxoff(), VMX_OK);
	return report_summary();
}
