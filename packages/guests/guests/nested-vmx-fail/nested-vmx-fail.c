/*
 * nested-vmx-fail: an L1 hypervisor that makes mistakes on purpose, each answered as the SDM
 * (vol. 3C, 31.2-31.4 and 27.8) says: VMfailInvalid (CF) when there is no current VMCS,
 * VMfailValid (ZF) with the error number in VM_INSTRUCTION_ERROR when there is one, or a VM-entry
 * failure that loads L1's host state and reports exit reason 0x80000021 (invalid guest state).
 * The last one twice: once caught by L0's own vmcs12 checks, once by the silicon on vmcs02.
 */
#include "../nested-vmx-common/vmx.h"

static uint8_t bad_rev[4096] __attribute__((aligned(4096)));

void l2_halt(void);
asm(".text\nl2_halt:\n\thlt\n\tud2\n");

#define GUEST_TR_AR_BYTES 0x4822
#define UNSUPPORTED_FIELD 0x7ffe

/* VMfailValid with error `err` read back from the current VMCS. */
#define FAIL_VALID(name, expr, err)                                                   \
	do {                                                                          \
		int s_ = (expr);                                                      \
		report_eq(name ": VMfailValid", s_, VMX_FAIL_VALID);                  \
		report_eq(name ": VM_INSTRUCTION_ERROR", vmread(VM_INSTRUCTION_ERROR), err); \
	} while (0)

/* A VM entry that fails its guest-state checks: L1 resumes at HOST_RIP with reason 33 | bit 31. */
static void expect_entry_failure(const char *name)
{
	int r = vmx_enter(1);
	report_eq(name, r == VMX_OK ? vmread(VM_EXIT_REASON) : 0xdead, EXIT_REASON_FAILED_VMENTRY | EXIT_REASON_INVALID_STATE);
}

int main(void)
{
	uint32_t rev = (uint32_t)rdmsr(MSR_IA32_VMX_BASIC) & 0x7fffffff;
	uint64_t v;

	write_cr4(read_cr4() | X86_CR4_VMXE);
	*(uint32_t *)vmxon_region = rev;
	*(uint32_t *)vmcs = rev;
	*(uint32_t *)bad_rev = rev ^ 0x1234;
	uint64_t on = (uint64_t)vmxon_region, a = (uint64_t)vmcs, bad = (uint64_t)bad_rev, misaligned = a + 8;

	report_eq("VMXON", vmxon(&on), VMX_OK);
	/* No current VMCS: there is nowhere to put an error number. */
	report_eq("VMXON in VMX operation, no current VMCS: VMfailInvalid", vmxon(&on), VMX_FAIL_INVALID);
	report_eq("VMREAD without a current VMCS: VMfailInvalid", vmread_status(GUEST_RIP, &v), VMX_FAIL_INVALID);
	report_eq("VMPTRLD of a misaligned address, no current VMCS: VMfailInvalid", vmptrld(&misaligned), VMX_FAIL_INVALID);

	report_eq("VMCLEAR", vmclear(&a), VMX_OK);
	report_eq("VMPTRLD", vmptrld(&a), VMX_OK);
	FAIL_VALID("VMXON in VMX root operation", vmxon(&on), 15);
	FAIL_VALID("VMPTRLD of a bad revision", vmptrld(&bad), 11);
	FAIL_VALID("VMPTRLD of the VMXON region", vmptrld(&on), 10);
	FAIL_VALID("VMCLEAR of the VMXON region", vmclear(&on), 3);
	FAIL_VALID("VMPTRLD of a misaligned address", vmptrld(&misaligned), 9);
	FAIL_VALID("VMWRITE to read-only VM_EXIT_REASON", vmwrite(VM_EXIT_REASON, 1), 13);
	FAIL_VALID("VMREAD of an unsupported field", vmread_status(UNSUPPORTED_FIELD, &v), 12);

	vmcs_setup_l2(l2_halt, L2_STACK_TOP, CPU_BASED_HLT_EXITING, 0, 0, 0);
	FAIL_VALID("VMRESUME of a clear VMCS", vmx_enter(0), 5);

	uint64_t pin = vmread(PIN_BASED_VM_EXEC_CONTROL);
	vmwrite(PIN_BASED_VM_EXEC_CONTROL, pin | (1u << 31));
	FAIL_VALID("VMLAUNCH with a reserved pin-based control set", vmx_enter(1), 7);
	vmwrite(PIN_BASED_VM_EXEC_CONTROL, pin);

	vmwrite(HOST_CR0, read_cr0() & ~1ul);
	FAIL_VALID("VMLAUNCH with HOST_CR0.PE clear", vmx_enter(1), 8);
	vmwrite(HOST_CR0, read_cr0());

	vmwrite(GUEST_RFLAGS, 0);
	expect_entry_failure("VMLAUNCH with RFLAGS bit 1 clear: entry failure, invalid guest state");
	report_eq("  exit qualification", vmread(EXIT_QUALIFICATION), 0);
	vmwrite(GUEST_RFLAGS, 2);

	vmwrite(GUEST_TR_AR_BYTES, 0x83);
	expect_entry_failure("VMLAUNCH with a 16-bit TSS in TR: entry failure, invalid guest state");
	vmwrite(GUEST_TR_AR_BYTES, 0x8b);

	report_eq("VMLAUNCH of the corrected VMCS: L2 runs to HLT", vmx_enter(1) == VMX_OK ? vmread(VM_EXIT_REASON) : 0xdead, EXIT_REASON_HLT);
	FAIL_VALID("VMLAUNCH of a launched VMCS", vmx_enter(1), 4);

	report_eq("VMCLEAR of the current VMCS", vmclear(&a), VMX_OK);
	report_eq("VMREAD after VMCLEAR of the current VMCS: VMfailInvalid", vmread_status(GUEST_RIP, &v), VMX_FAIL_INVALID);
	report_eq("VMPTRLD again", vmptrld(&a), VMX_OK);
	FAIL_VALID("VMRESUME after VMCLEAR", vmx_enter(0), 5);
	report_eq("VMXOFF", vmxoff(), VMX_OK);
	return report_summary();
}
