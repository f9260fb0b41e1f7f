/*
 * nested-vmx-ept-ad: accessed and dirty flags in L1's EPT (SDM 29.3.5). L1 reads the capability
 * (IA32_VMX_EPT_VPID_CAP bit 21), gives L2 an identity EPT12 over the first 2 MiB with bit 6 of
 * the EPT pointer set, and runs an L2 that reads one page and writes another. Afterwards the
 * accessed flag is set in the EPT12 entries of every level on those paths, the dirty flag only
 * in the written page's entry, and neither in the entry of a page L2 never touched. L1 then
 * clears the flags of the written page, INVEPTs, and runs L2 again to only read it: accessed
 * comes back, dirty does not. L2's own page walk counts as a write: with the page of its PML4
 * read-only in EPT12 it is an EPT violation for a write. A reserved EPTP bit (7) is VMfailValid(7).
 */
#include "../nested-vmx-common/vmx.h"

#define VMX_EPT_AD_BIT (1ul << 21)
#define EPT_ACCESSED (1ul << 8)
#define EPT_DIRTY (1ul << 9)
#define EPTP_AD (1ul << 6)
#define EPT_W (1ul << 1)

static struct ept_tables ept;
uint64_t read_page[512] __attribute__((aligned(4096)));
uint64_t write_page[512] __attribute__((aligned(4096)));
uint64_t idle_page[512] __attribute__((aligned(4096)));

void l2_main(void);
void l2_read_again(void);
asm(".text\n"
    "l2_main:\n\t"
    "mov read_page(%rip), %r12\n\t"
    "movq $0x5eed, write_page+8(%rip)\n\t"
    "hlt\n\tud2\n"
    "l2_read_again:\n\t"
    "mov write_page+8(%rip), %r13\n\t"
    "hlt\n\tud2\n");

#define AD(e) ((e) & (EPT_ACCESSED | EPT_DIRTY))

int main(void)
{
	report("IA32_VMX_EPT_VPID_CAP offers EPT accessed/dirty flags", rdmsr(MSR_IA32_VMX_EPT_VPID_CAP) & VMX_EPT_AD_BIT);
	report_eq("VMXON, VMCLEAR, VMPTRLD", vmx_on_load_vmcs(), VMX_OK);

	read_page[0] = 0x1111;
	uint64_t eptp = ept_identity_map(&ept) | EPTP_AD;
	unsigned rd = (uint64_t)read_page >> 12, wr = (uint64_t)write_page >> 12, idle = (uint64_t)idle_page >> 12;

	vmcs_setup_l2(l2_main, L2_STACK_TOP, CPU_BASED_HLT_EXITING | CPU_BASED_ACTIVATE_SECONDARY, 0, 0, 0);
	vmcs_enable_ept(eptp | (1ul << 7));
	report_eq("EPTP with reserved bit 7: VMLAUNCH fails", vmx_enter(1), VMX_FAIL_VALID);
	report_eq("  VM-instruction error 7", vmread(VM_INSTRUCTION_ERROR), VMXERR_ENTRY_INVALID_CONTROL_FIELD);
	vmwrite(EPT_POINTER, eptp);

	vmx_enter_expect_exit("VMLAUNCH with A/D flags on", 1, "exit: HLT", EXIT_REASON_HLT);
	report_eq("L2 read the page", l2_regs[12], 0x1111);
	report_eq("L2's write landed", write_page[1], 0x5eed);
	report_eq("EPT PML4E: accessed", ept.pml4[0] & EPT_ACCESSED, EPT_ACCESSED);
	report_eq("EPT PDPTE: accessed", ept.pdpt[0] & EPT_ACCESSED, EPT_ACCESSED);
	report_eq("EPT PDE: accessed", ept.pd[0] & EPT_ACCESSED, EPT_ACCESSED);
	report_eq("EPT PTE of the read page: accessed, not dirty", AD(ept.pt[rd]), EPT_ACCESSED);
	report_eq("EPT PTE of the written page: accessed and dirty", AD(ept.pt[wr]), EPT_ACCESSED | EPT_DIRTY);
	report_eq("EPT PTE of an untouched page: neither", AD(ept.pt[idle]), 0);

	/* Flags cleared by L1 and the cached translations dropped: a read sets accessed only. */
	ept.pt[wr] &= ~(EPT_ACCESSED | EPT_DIRTY);
	report_eq("INVEPT single-context", invept_single(eptp), VMX_OK);
	vmwrite(GUEST_RIP, (uint64_t)l2_read_again);
	vmx_enter_expect_exit("VMRESUME: L2 reads the written page", 0, "exit: HLT", EXIT_REASON_HLT);
	report_eq("L2 read what it wrote", l2_regs[13], 0x5eed);
	report_eq("EPT PTE of the page read again: accessed, not dirty", AD(ept.pt[wr]), EPT_ACCESSED);

	/* With A/D on, L2's page walk writes its paging structures as far as EPT12 goes (SDM 29.3.3.2):
	 * the page holding L2's PML4 made read-only, the walk is an EPT violation for a write. */
	uint64_t pml4 = read_cr3() & ~0xffful;
	ept.pt[pml4 >> 12] &= ~EPT_W;
	invept_single(eptp);
	vmx_enter_expect_exit("VMRESUME: L2's walk meets a read-only PML4 page", 0, "exit: EPT violation", EXIT_REASON_EPT_VIOLATION);
	report_eq("  at the PML4 page", vmread(GUEST_PHYSICAL_ADDRESS), pml4);
	report_eq("  a read and a write by the walk, linear address valid, not yet translated", vmread(EXIT_QUALIFICATION) & 0x183, 0x83);
	report_eq("VMXOFF", vmxoff(), VMX_OK);
	return report_summary();
}
