/*
 * nested-vmx-basic: L1 is a minimal hypervisor. It turns on CR4.VMXE, does VMXON, VMCLEAR,
 * VMPTRLD, writes a complete VMCS for a 64-bit L2 and VMLAUNCHes it. L2 runs CPUID, VMCALL, an
 * OUT to port 0x510 (set in L1's I/O bitmap: L1 sees it), OUTs to COM1 (not in the bitmap: they
 * pass through to the VMM's serial port), RDMSR of EFER (set in L1's MSR bitmap), then HLT. L1's
 * exit loop VMREADs each exit's fields, checks them, emulates, advances GUEST_RIP by
 * VM_EXIT_INSTRUCTION_LEN and VMRESUMEs.
 */
#include "../nested-vmx-common/vmx.h"

#define VMCS12_REVISION 0x11e57ed0u
#define TEST_PORT 0x510
#define MSR_EFER 0xc0000080u

static uint8_t io_a[4096] __attribute__((aligned(4096)));
static uint8_t io_b[4096] __attribute__((aligned(4096)));
static uint8_t msr_bitmap[4096] __attribute__((aligned(4096)));

void l2_main(void);
/* L2: each instruction that exits is followed by a MOV that keeps what L1 made of it. */
asm(".text\n"
    "l2_main:\n\t"
    "xor %eax, %eax\n\txor %ecx, %ecx\n\tcpuid\n\tmov %rax, %r12\n\t"
    "mov $0x42, %eax\n\tvmcall\n\tmov %rax, %r13\n\t"
    "mov $0x510, %edx\n\tmov $0x5a, %al\n\toutb %al, %dx\n\t"
    "lea l2_msg(%rip), %rsi\n\tmov $0x3f8, %edx\n"
    "1:\tlodsb\n\ttest %al, %al\n\tjz 2f\n\toutb %al, %dx\n\tjmp 1b\n"
    "2:\tmov $0xc0000080, %ecx\n\trdmsr\n\tmov %rax, %r14\n\tmov %rdx, %r15\n\t"
    "hlt\n\t"
    "ud2\n"
    ".section .rodata\n"
    "l2_msg: .asciz \"L2: hello through COM1, not intercepted by L1\\n\"\n"
    ".text\n");

static const uint32_t expected[] = { EXIT_REASON_CPUID, EXIT_REASON_VMCALL, EXIT_REASON_IO_INSTRUCTION, EXIT_REASON_MSR_READ, EXIT_REASON_HLT };
static unsigned n;
static int ok = 1;

/* Checks each exit against `expected` and emulates it; L2's HLT ends the run. */
static int handle_exit(uint32_t reason)
{
	uint64_t len = vmread(VM_EXIT_INSTRUCTION_LEN);
	uint64_t qual = vmread(EXIT_QUALIFICATION);
	if (n >= ARRAY_SIZE(expected) || reason != expected[n]) {
		printf("exit %u: reason %u, qualification %lx\n", n, reason, (unsigned long)qual);
		ok = 0;
		return 0;
	}
	n++;
	switch (reason) {
	case EXIT_REASON_CPUID:
		report_eq("CPUID exit: length", len, 2);
		report_eq("CPUID exit: L2's EAX", l2_regs[0], 0);
		l2_regs[0] = 0x4c32; /* "L2" */
		l2_regs[1] = l2_regs[2] = l2_regs[3] = 0;
		break;
	case EXIT_REASON_VMCALL:
		report_eq("VMCALL exit: length", len, 3);
		report_eq("VMCALL exit: L2's RAX", l2_regs[0], 0x42);
		l2_regs[0] = 0x43;
		break;
	case EXIT_REASON_IO_INSTRUCTION:
		report_eq("OUT exit: port", qual >> 16, TEST_PORT);
		report_eq("OUT exit: size 1, OUT, DX", qual & 0xffff, 0);
		report_eq("OUT exit: data", l2_regs[0] & 0xff, 0x5a);
		report_eq("OUT exit: length", len, 1);
		break;
	case EXIT_REASON_MSR_READ:
		report_eq("RDMSR exit: ECX", l2_regs[1], MSR_EFER);
		report_eq("RDMSR exit: length", len, 2);
		l2_regs[0] = 0x1234;
		l2_regs[2] = 0x5678;
		break;
	case EXIT_REASON_HLT:
		report_eq("HLT exit: length", len, 1);
		report_eq("L2 saw L1's CPUID", l2_regs[12], 0x4c32);
		report_eq("L2 saw L1's VMCALL result", l2_regs[13], 0x43);
		report_eq("L2 saw L1's RDMSR EAX", l2_regs[14], 0x1234);
		report_eq("L2 saw L1's RDMSR EDX", l2_regs[15], 0x5678);
		return 0;
	}
	vmwrite(GUEST_RIP, vmread(GUEST_RIP) + len);
	return 1;
}

int main(void)
{
	uint64_t basic = rdmsr(MSR_IA32_VMX_BASIC);
	report_eq("IA32_VMX_BASIC revision is VMCS12_REVISION", basic & 0x7fffffff, VMCS12_REVISION);
	report_eq("IA32_VMX_BASIC region size", (basic >> 32) & 0x1fff, 4096);

	write_cr4(read_cr4() | X86_CR4_VMXE);
	*(uint32_t *)vmxon_region = (uint32_t)basic;
	*(uint32_t *)vmcs = (uint32_t)basic;
	uint64_t vmxon_pa = (uint64_t)vmxon_region, vmcs_pa = (uint64_t)vmcs, got = 0;
	report_eq("VMXON", vmxon(&vmxon_pa), VMX_OK);
	report_eq("VMCLEAR", vmclear(&vmcs_pa), VMX_OK);
	report_eq("VMPTRLD", vmptrld(&vmcs_pa), VMX_OK);
	report_eq("VMPTRST", vmptrst(&got) == VMX_OK ? got : 0, vmcs_pa);

	io_a[TEST_PORT >> 3] |= 1 << (TEST_PORT & 7);
	msr_bitmap[1024 + ((MSR_EFER & 0x1fff) >> 3)] |= 1 << (MSR_EFER & 7);
	vmcs_setup_l2(l2_main, L2_STACK_TOP,
		      CPU_BASED_HLT_EXITING | CPU_BASED_USE_IO_BITMAPS | CPU_BASED_USE_MSR_BITMAPS, io_a, io_b, msr_bitmap);
	report_eq("VMREAD GUEST_RIP", vmread(GUEST_RIP), (uint64_t)l2_main);

	int r = vmx_run_l2(handle_exit);
	if (r != VMX_OK) {
		printf("VM entry failed: %d, error %lu\n", r, (unsigned long)vmread(VM_INSTRUCTION_ERROR));
		ok = 0;
	}
	report("every L2 exit came to L1, in order", ok && n == ARRAY_SIZE(expected));
	report_eq("VMXOFF", vmxoff(), VMX_OK);
	return report_summary();
}
