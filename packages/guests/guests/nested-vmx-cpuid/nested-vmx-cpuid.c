/*
 * nested-vmx-cpuid: the nested.cpuid benchmark's workload. L2 executes CPUID (leaf 0) 2000
 * times; each exits to L0, is reflected to L1, whose exit loop VMREADs the reason, the
 * instruction length and GUEST_RIP, VMWRITEs GUEST_RIP and VMRESUMEs: the L1 round trip a
 * nested hypervisor pays for every L2 CPUID. L2 runs under a VPID of its own, as KVM gives its
 * guests, so that its entries and exits need not flush its TLB (SDM 29.4.3.3).
 */
#include "../nested-vmx-common/vmx.h"

#define ITERS 2000

static uint8_t vmxon_region[4096] __attribute__((aligned(4096)));
static uint8_t vmcs[4096] __attribute__((aligned(4096)));
static uint8_t l2_stack[4096] __attribute__((aligned(4096)));

void l2_cpuid_loop(void);
asm(".text\n"
    "l2_cpuid_loop:\n\t"
    "mov $2000, %r12d\n"
    "1:\txor %eax, %eax\n\txor %ecx, %ecx\n\tcpuid\n\tdec %r12d\n\tjnz 1b\n\t"
    "hlt\n\tud2\n");

int main(void)
{
	uint32_t rev = (uint32_t)rdmsr(MSR_IA32_VMX_BASIC) & 0x7fffffff;
	write_cr4(read_cr4() | X86_CR4_VMXE);
	*(uint32_t *)vmxon_region = rev;
	*(uint32_t *)vmcs = rev;
	uint64_t on = (uint64_t)vmxon_region, pa = (uint64_t)vmcs;
	report_eq("VMXON, VMCLEAR, VMPTRLD", vmxon(&on) | vmclear(&pa) | vmptrld(&pa), VMX_OK);
	vmcs_setup_l2(l2_cpuid_loop, l2_stack + sizeof(l2_stack), CPU_BASED_HLT_EXITING | CPU_BASED_ACTIVATE_SECONDARY, 0, 0, 0);
	vmwrite(SECONDARY_VM_EXEC_CONTROL, vmx_ctl(MSR_IA32_VMX_PROCBASED_CTLS2, SECONDARY_EXEC_ENABLE_VPID));
	vmwrite(VIRTUAL_PROCESSOR_ID, 1);

	unsigned cpuids = 0, other = 0;
	for (int launch = 1;; launch = 0) {
		if (vmx_enter(launch) != VMX_OK)
			break;
		uint32_t reason = vmread(VM_EXIT_REASON);
		if (reason == EXIT_REASON_HLT)
			break;
		if (reason == EXIT_REASON_CPUID)
			cpuids++;
		else
			other++;
		vmwrite(GUEST_RIP, vmread(GUEST_RIP) + vmread(VM_EXIT_INSTRUCTION_LEN));
	}
	report_eq("L2 CPUIDs handled by L1", cpuids, ITERS);
	report_eq("other exits", other, 0);
	report_eq("VMXOFF", vmxoff(), VMX_OK);
	return report_summary();
}
