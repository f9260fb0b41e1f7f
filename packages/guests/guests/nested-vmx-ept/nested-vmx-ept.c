/*
 * nested-vmx-ept: L1 gives L2 its own EPT (EPT12), identity over the first 2 MiB except two
 * pages: one not mapped at all, one mapped read-only. L2 reads the first: an EPT violation comes
 * to L1 (read access, nothing permitted), which maps that L2 page onto another L1 page, INVEPTs
 * and resumes; L2's retried read sees the other page's contents. L2 then writes the read-only
 * page: an EPT violation again (write access, read permitted), L1 grants write, and the write
 * lands. L0 runs L2 on EPT02, built from EPT12 and its own mapping of L1's memory.
 */
#include "../nested-vmx-common/vmx.h"

static struct ept_tables ept;
uint64_t probe_page[512] __attribute__((aligned(4096)));
uint64_t alias_page[512] __attribute__((aligned(4096)));
uint64_t ro_page[512] __attribute__((aligned(4096)));

void l2_main(void);
asm(".text\n"
    "l2_main:\n\t"
    "mov probe_page(%rip), %rax\n\tmov %rax, %r12\n\t"
    "movq $0x5eed, ro_page+8(%rip)\n\t"
    "hlt\n\tud2\n");

static uint64_t eptp;
static unsigned probe, ro, step;

/* Fixes each EPT violation in EPT12 and lets L2 retry; L2's HLT ends the run. */
static int handle_exit(uint32_t reason)
{
	uint64_t qual = vmread(EXIT_QUALIFICATION), gpa = vmread(GUEST_PHYSICAL_ADDRESS);
	if (step == 0) {
		report_eq("unmapped page: EPT violation", reason, EXIT_REASON_EPT_VIOLATION);
		report_eq("  guest-physical address", gpa, (uint64_t)probe_page);
		report_eq("  read access, nothing permitted", qual & 0x3f, 1);
		ept.pt[probe] = (uint64_t)alias_page | EPT_RWX | EPT_WB;
		report_eq("  INVEPT single-context", invept_single(eptp), VMX_OK);
	} else if (step == 1) {
		report_eq("read-only page written: EPT violation", reason, EXIT_REASON_EPT_VIOLATION);
		report_eq("  guest-physical address", gpa, (uint64_t)ro_page + 8);
		report_eq("  write access, read permitted", qual & 0x3f, 2 | (1 << 3));
		ept.pt[ro] |= 2;
		report_eq("  INVEPT single-context", invept_single(eptp), VMX_OK);
	} else {
		report_eq("then HLT", reason, EXIT_REASON_HLT);
		return 0;
	}
	step++;
	return 1;
}

int main(void)
{
	report_eq("VMXON, VMCLEAR, VMPTRLD", vmx_on_load_vmcs(), VMX_OK);
	report("IA32_VMX_PROCBASED_CTLS2 allows EPT", (rdmsr(MSR_IA32_VMX_PROCBASED_CTLS2) >> 32) & SECONDARY_EXEC_ENABLE_EPT);

	probe_page[0] = 0x1111;
	alias_page[0] = 0xcafe;
	eptp = ept_identity_map(&ept);
	probe = (uint64_t)probe_page >> 12;
	ro = (uint64_t)ro_page >> 12;
	ept.pt[probe] = 0;
	ept.pt[ro] = (uint64_t)ro_page | 1 | EPT_WB;

	vmcs_setup_l2(l2_main, L2_STACK_TOP, CPU_BASED_HLT_EXITING | CPU_BASED_ACTIVATE_SECONDARY, 0, 0, 0);
	vmcs_enable_ept(eptp);

	int r = vmx_run_l2(handle_exit);
	if (r != VMX_OK)
		printf("VM entry failed: %d, error %lu\n", r, (unsigned long)vmread(VM_INSTRUCTION_ERROR));
	report_eq("L2 read the page L1 mapped in, not the one at its address", l2_regs[12], 0xcafe);
	report_eq("L2's write landed once L1 allowed it", ro_page[1], 0x5eed);
	report_eq("VMXOFF", vmxoff(), VMX_OK);
	return report_summary();
}
