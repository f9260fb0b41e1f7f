/*
 * nested-vmx-ept: L1 gives L2 its own EPT (EPT12), identity over the first 2 MiB except two
 * pages: one not mapped at all, one mapped read-only. L2 reads the first: an EPT violation comes
 * to L1 (read access, nothing permitted), which maps that L2 page onto another L1 page, INVEPTs
 * and resumes; L2's retried read sees the other page's contents. L2 then writes the read-only
 * page: an EPT violation again (write access, read permitted), L1 grants write, and the write
 * lands. L0 runs L2 on EPT02, built from EPT12 and its own mapping of L1's memory.
 */
#include "../nested-vmx-common/vmx.h"

#define MSR_IA32_VMX_PROCBASED_CTLS2 0x48b
#define SECONDARY_EXEC_ENABLE_EPT (1u << 1)
#define CPU_BASED_ACTIVATE_SECONDARY (1u << 31)
#define EPT_POINTER 0x201a
#define GUEST_PHYSICAL_ADDRESS 0x2400
#define EXIT_REASON_EPT_VIOLATION 48
#define EPT_RWX 7ul
#define EPT_WB (6ul << 3)

static uint8_t vmxon_region[4096] __attribute__((aligned(4096)));
static uint8_t vmcs[4096] __attribute__((aligned(4096)));
static uint8_t l2_stack[4096] __attribute__((aligned(4096)));
static uint64_t ept_pml4[512] __attribute__((aligned(4096)));
static uint64_t ept_pdpt[512] __attribute__((aligned(4096)));
static uint64_t ept_pd[512] __attribute__((aligned(4096)));
static uint64_t ept_pt[512] __attribute__((aligned(4096)));
uint64_t probe_page[512] __attribute__((aligned(4096)));
uint64_t alias_page[512] __attribute__((aligned(4096)));
uint64_t ro_page[512] __attribute__((aligned(4096)));

void l2_main(void);
asm(".text\n"
    "l2_main:\n\t"
    "mov probe_page(%rip), %rax\n\tmov %rax, %r12\n\t"
    "movq $0x5eed, ro_page+8(%rip)\n\t"
    "hlt\n\tud2\n");

static int invept_single(uint64_t eptp)
{
	struct { uint64_t eptp, zero; } desc = { eptp, 0 };
	int r;
	asm volatile("invept %1, %2\n\t" VMX_STATUS_ASM : "=r"(r) : "m"(desc), "r"(1ul) : "cc", "memory");
	return r;
}

int main(void)
{
	uint32_t rev = (uint32_t)rdmsr(MSR_IA32_VMX_BASIC) & 0x7fffffff;
	write_cr4(read_cr4() | X86_CR4_VMXE);
	*(uint32_t *)vmxon_region = rev;
	*(uint32_t *)vmcs = rev;
	uint64_t on = (uint64_t)vmxon_region, pa = (uint64_t)vmcs;
	report_eq("VMXON, VMCLEAR, VMPTRLD", vmxon(&on) | vmclear(&pa) | vmptrld(&pa), VMX_OK);
	report("IA32_VMX_PROCBASED_CTLS2 allows EPT", (rdmsr(MSR_IA32_VMX_PROCBASED_CTLS2) >> 32) & SECONDARY_EXEC_ENABLE_EPT);

	probe_page[0] = 0x1111;
	alias_page[0] = 0xcafe;
	ept_pml4[0] = (uint64_t)ept_pdpt | EPT_RWX;
	ept_pdpt[0] = (uint64_t)ept_pd | EPT_RWX;
	ept_pd[0] = (uint64_t)ept_pt | EPT_RWX;
	for (unsigned i = 0; i < 512; i++)
		ept_pt[i] = (uint64_t)i * 4096 | EPT_RWX | EPT_WB;
	unsigned probe = (uint64_t)probe_page >> 12, ro = (uint64_t)ro_page >> 12;
	ept_pt[probe] = 0;
	ept_pt[ro] = (uint64_t)ro_page | 1 | EPT_WB;
	uint64_t eptp = (uint64_t)ept_pml4 | 6 | (3 << 3);

	vmcs_setup_l2(l2_main, l2_stack + sizeof(l2_stack), CPU_BASED_HLT_EXITING | CPU_BASED_ACTIVATE_SECONDARY, 0, 0, 0);
	vmwrite(SECONDARY_VM_EXEC_CONTROL, vmx_ctl(MSR_IA32_VMX_PROCBASED_CTLS2, SECONDARY_EXEC_ENABLE_EPT));
	vmwrite(EPT_POINTER, eptp);

	unsigned step = 0;
	for (int launch = 1;; launch = 0) {
		int r = vmx_enter(launch);
		if (r != VMX_OK) {
			printf("VM entry failed: %d, error %lu\n", r, (unsigned long)vmread(VM_INSTRUCTION_ERROR));
			break;
		}
		uint32_t reason = vmread(VM_EXIT_REASON);
		uint64_t qual = vmread(EXIT_QUALIFICATION), gpa = vmread(GUEST_PHYSICAL_ADDRESS);
		if (step == 0) {
			report_eq("unmapped page: EPT violation", reason, EXIT_REASON_EPT_VIOLATION);
			report_eq("  guest-physical address", gpa, (uint64_t)probe_page);
			report_eq("  read access, nothing permitted", qual & 0x3f, 1);
			ept_pt[probe] = (uint64_t)alias_page | EPT_RWX | EPT_WB;
			report_eq("  INVEPT single-context", invept_single(eptp), VMX_OK);
		} else if (step == 1) {
			report_eq("read-only page written: EPT violation", reason, EXIT_REASON_EPT_VIOLATION);
			report_eq("  guest-physical address", gpa, (uint64_t)ro_page + 8);
			report_eq("  write access, read permitted", qual & 0x3f, 2 | (1 << 3));
			ept_pt[ro] |= 2;
			report_eq("  INVEPT single-context", invept_single(eptp), VMX_OK);
		} else {
			report_eq("then HLT", reason, EXIT_REASON_HLT);
			break;
		}
		step++;
	}
	report_eq("L2 read the page L1 mapped in, not the one at its address", l2_regs[12], 0xcafe);
	report_eq("L2's write landed once L1 allowed it", ro_page[1], 0x5eed);
	report_eq("VMXOFF", vmxoff(), VMX_OK);
	return report_summary();
}
