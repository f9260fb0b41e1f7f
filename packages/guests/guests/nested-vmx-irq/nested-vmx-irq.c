/*
 * nested-vmx-irq: an interrupt that arrives while L2 runs is L1's when L1 asked for
 * external-interrupt exiting. L2 executes HLT, which L1 does not
 * intercept: L0 handles it and the VMM injects vector 0x20 (KVM_INTERRUPT). L0 turns the
 * interrupt into a VM exit to L1 (reason 1), with the vector in VM_EXIT_INTR_INFO because L1
 * set "acknowledge interrupt on exit". L1 resumes L2, whose VMCALL ends the run. L2 runs with
 * RFLAGS.IF set: were the interrupt not L1's, L2 would take it through the IDT it shares with
 * L1, whose handler for vector 0x20 reports an unhandled exception.
 */
#include "../nested-vmx-common/vmx.h"

#define PIN_BASED_EXT_INTR_MASK (1u << 0)
#define VM_EXIT_ACK_INTR_ON_EXIT (1u << 15)
#define EXIT_REASON_EXTERNAL_INTERRUPT 1
#define IDT_VECTORING_INFO_FIELD 0x4408

void l2_main(void);
asm(".text\nl2_main:\n\thlt\n\tmov $0x77, %eax\n\tvmcall\n\tud2\n");

int main(void)
{
	report_eq("VMXON, VMCLEAR, VMPTRLD", vmx_on_load_vmcs(), VMX_OK);
	vmcs_setup_l2(l2_main, L2_STACK_TOP, 0, 0, 0, 0);
	vmwrite(PIN_BASED_VM_EXEC_CONTROL, vmx_ctl(MSR_IA32_VMX_TRUE_PINBASED_CTLS, PIN_BASED_EXT_INTR_MASK));
	vmwrite(VM_EXIT_CONTROLS, vmx_ctl(MSR_IA32_VMX_TRUE_EXIT_CTLS, VM_EXIT_HOST_ADDR_SPACE_SIZE | VM_EXIT_ACK_INTR_ON_EXIT));
	vmwrite(GUEST_RFLAGS, 0x202);

	vmx_enter_expect_exit("VMLAUNCH", 1, "the interrupt exits to L1", EXIT_REASON_EXTERNAL_INTERRUPT);
	report_eq("  acknowledged: vector 0x20, external interrupt, valid", vmread(VM_EXIT_INTR_INFO), 0x80000020);
	report_eq("  no IDT-vectoring information", vmread(IDT_VECTORING_INFO_FIELD), 0);
	report_eq("  L2 is past its HLT", vmread(GUEST_RIP), (uint64_t)l2_main + 1);
	vmx_enter_expect_exit("VMRESUME", 0, "then L2's VMCALL", EXIT_REASON_VMCALL);
	report_eq("  with L2's RAX", l2_regs[0], 0x77);
	report_eq("VMXOFF", vmxoff(), VMX_OK);
	return report_summary();
}
