/*
 * nested-vmx-msr: the MSR lists of vmcs12 (SDM 27.4, 28.4, 28.6). L1 sets IA32_KERNEL_GS_BASE,
 * then enters L2 with a VM-entry MSR-load list (KERNEL_GS_BASE, SYSENTER_ESP), a VM-exit
 * MSR-store list (the same two) and a VM-exit MSR-load list (KERNEL_GS_BASE). L2 reads both
 * MSRs (L1's MSR bitmap passes them), writes new values and VMCALLs. L1 checks what L2 saw, what
 * the store list caught and what the exit load list left in its own KERNEL_GS_BASE. Then the
 * mistakes: an entry list whose second entry names FS_BASE is a VM-entry failure (reason 34,
 * qualification 2) after the first entry was loaded, and a misaligned list is VMfailValid(7).
 */
#include "../nested-vmx-common/vmx.h"

#define VM_EXIT_MSR_STORE_ADDR 0x2006
#define VM_EXIT_MSR_LOAD_ADDR 0x2008
#define VM_ENTRY_MSR_LOAD_ADDR 0x200a
#define VM_EXIT_MSR_STORE_COUNT 0x400e
#define VM_EXIT_MSR_LOAD_COUNT 0x4010
#define VM_ENTRY_MSR_LOAD_COUNT 0x4014
#define EXIT_REASON_MSR_LOAD_FAIL 34

#define MSR_KERNEL_GS_BASE 0xc0000102u
#define MSR_FS_BASE 0xc0000100u
#define MSR_IA32_SYSENTER_ESP 0x175u

#define L1_KGS 0x1111000ull
#define ENTRY_KGS 0x2222000ull
#define ENTRY_ESP 0x3333000ull
#define L2_KGS 0x5555000ull
#define L2_ESP 0x6666000ull
#define EXIT_KGS 0x4444000ull
#define FAILED_KGS 0x7777000ull

struct msr_entry {
	uint32_t index;
	uint32_t reserved;
	uint64_t value;
};

static uint8_t msr_bitmap[4096] __attribute__((aligned(4096)));
static struct msr_entry entry_load[2] __attribute__((aligned(16)));
static struct msr_entry exit_store[2] __attribute__((aligned(16)));
static struct msr_entry exit_load[1] __attribute__((aligned(16)));

void l2_main(void);
/* L2: both MSRs into R12/R13, new values written, VMCALL; then HLT. */
asm(".text\n"
    "l2_main:\n\t"
    "mov $0xc0000102, %ecx\n\trdmsr\n\tshl $32, %rdx\n\tor %rax, %rdx\n\tmov %rdx, %r12\n\t"
    "mov $0x175, %ecx\n\trdmsr\n\tshl $32, %rdx\n\tor %rax, %rdx\n\tmov %rdx, %r13\n\t"
    "mov $0xc0000102, %ecx\n\tmov $0x5555000, %eax\n\txor %edx, %edx\n\twrmsr\n\t"
    "mov $0x175, %ecx\n\tmov $0x6666000, %eax\n\txor %edx, %edx\n\twrmsr\n\t"
    "vmcall\n\t"
    "hlt\n\t"
    "ud2\n");

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	asm volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static void set_entry(struct msr_entry *e, uint32_t index, uint64_t value)
{
	e->index = index;
	e->reserved = 0;
	e->value = value;
}

int main(void)
{
	report_eq("VMXON, VMCLEAR, VMPTRLD", vmx_on_load_vmcs(), VMX_OK);
	vmcs_setup_l2(l2_main, L2_STACK_TOP, CPU_BASED_HLT_EXITING | CPU_BASED_USE_MSR_BITMAPS, 0, 0, msr_bitmap);

	wrmsr(MSR_KERNEL_GS_BASE, L1_KGS);
	set_entry(&entry_load[0], MSR_KERNEL_GS_BASE, ENTRY_KGS);
	set_entry(&entry_load[1], MSR_IA32_SYSENTER_ESP, ENTRY_ESP);
	set_entry(&exit_store[0], MSR_KERNEL_GS_BASE, 0);
	set_entry(&exit_store[1], MSR_IA32_SYSENTER_ESP, 0);
	set_entry(&exit_load[0], MSR_KERNEL_GS_BASE, EXIT_KGS);
	vmwrite(VM_ENTRY_MSR_LOAD_ADDR, (uint64_t)entry_load);
	vmwrite(VM_ENTRY_MSR_LOAD_COUNT, 2);
	vmwrite(VM_EXIT_MSR_STORE_ADDR, (uint64_t)exit_store);
	vmwrite(VM_EXIT_MSR_STORE_COUNT, 2);
	vmwrite(VM_EXIT_MSR_LOAD_ADDR, (uint64_t)exit_load);
	vmwrite(VM_EXIT_MSR_LOAD_COUNT, 1);

	vmx_enter_expect_exit("VMLAUNCH with the MSR lists", 1, "exit: VMCALL", EXIT_REASON_VMCALL);
	report_eq("VM-entry MSR-load list: L2 read KERNEL_GS_BASE", l2_regs[12], ENTRY_KGS);
	report_eq("VM-entry MSR-load list: L2 read SYSENTER_ESP", l2_regs[13], ENTRY_ESP);
	report_eq("VM-exit MSR-store list: L2's KERNEL_GS_BASE", exit_store[0].value, L2_KGS);
	report_eq("VM-exit MSR-store list: L2's SYSENTER_ESP", exit_store[1].value, L2_ESP);
	report_eq("VM-exit MSR-load list: L1's KERNEL_GS_BASE", rdmsr(MSR_KERNEL_GS_BASE), EXIT_KGS);
	skip_exit_insn();

	/* Entry 2 names FS_BASE, which no list may load: a VM-entry failure, entry 1 already loaded. */
	wrmsr(MSR_KERNEL_GS_BASE, L1_KGS);
	set_entry(&entry_load[0], MSR_KERNEL_GS_BASE, FAILED_KGS);
	set_entry(&entry_load[1], MSR_FS_BASE, 0);
	exit_load[0].value = EXIT_KGS;
	vmx_enter_expect_exit("VMRESUME with a bad entry list exits", 0,
			      "exit: VM-entry failure, MSR loading", EXIT_REASON_FAILED_VMENTRY | EXIT_REASON_MSR_LOAD_FAIL);
	report_eq("exit qualification: the failing entry, 1-based", vmread(EXIT_QUALIFICATION), 2);
	report_eq("the VM-exit MSR-load list ran after the failure", rdmsr(MSR_KERNEL_GS_BASE), EXIT_KGS);
	report_eq("L2 did not run: the store list is untouched", exit_store[0].value, L2_KGS);

	/* A list address that is not 16-byte aligned: VMfailValid(7). */
	set_entry(&entry_load[1], MSR_IA32_SYSENTER_ESP, ENTRY_ESP);
	vmwrite(VM_ENTRY_MSR_LOAD_ADDR, (uint64_t)entry_load + 8);
	report_eq("VMRESUME with a misaligned list", vmx_enter(0), VMX_FAIL_VALID);
	report_eq("VM-instruction error 7", vmread(VM_INSTRUCTION_ERROR), VMXERR_ENTRY_INVALID_CONTROL_FIELD);
	vmwrite(VM_ENTRY_MSR_LOAD_ADDR, (uint64_t)entry_load);

	vmx_enter_expect_exit("VMRESUME after the fix", 0, "exit: HLT", EXIT_REASON_HLT);
	report_eq("VM-exit MSR-store list again: KERNEL_GS_BASE from the entry list", exit_store[0].value, FAILED_KGS);
	report_eq("VMXOFF", vmxoff(), VMX_OK);
	return report_summary();
}
