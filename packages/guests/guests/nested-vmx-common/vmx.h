/*
 * A small L1 hypervisor library for the nested-vmx-* guests: VMX instructions, the VMCS field
 * encodings (SDM Appendix B), VMX operation with one current VMCS, a complete VMCS for a 64-bit
 * L2 that shares L1's page tables and GDT, an identity EPT12 for it, the world switch
 * (vmx_enter) that saves L2's GPRs in l2_regs on every exit, and the exit loop around it.
 */
#ifndef NESTED_VMX_H
#define NESTED_VMX_H

#include "rt.h"

/* VMCS field encodings. */
#define VIRTUAL_PROCESSOR_ID 0x0000
#define GUEST_ES_SELECTOR 0x0800
#define GUEST_CS_SELECTOR 0x0802
#define GUEST_SS_SELECTOR 0x0804
#define GUEST_DS_SELECTOR 0x0806
#define GUEST_FS_SELECTOR 0x0808
#define GUEST_GS_SELECTOR 0x080a
#define GUEST_LDTR_SELECTOR 0x080c
#define GUEST_TR_SELECTOR 0x080e
#define HOST_ES_SELECTOR 0x0c00
#define HOST_CS_SELECTOR 0x0c02
#define HOST_SS_SELECTOR 0x0c04
#define HOST_DS_SELECTOR 0x0c06
#define HOST_FS_SELECTOR 0x0c08
#define HOST_GS_SELECTOR 0x0c0a
#define HOST_TR_SELECTOR 0x0c0c
#define IO_BITMAP_A 0x2000
#define IO_BITMAP_B 0x2002
#define MSR_BITMAP 0x2004
#define EPT_POINTER 0x201a
#define GUEST_PHYSICAL_ADDRESS 0x2400
#define VMCS_LINK_POINTER 0x2800
#define PIN_BASED_VM_EXEC_CONTROL 0x4000
#define CPU_BASED_VM_EXEC_CONTROL 0x4002
#define EXCEPTION_BITMAP 0x4004
#define VM_EXIT_CONTROLS 0x400c
#define VM_ENTRY_CONTROLS 0x4012
#define VM_ENTRY_INTR_INFO_FIELD 0x4016
#define SECONDARY_VM_EXEC_CONTROL 0x401e
#define VM_INSTRUCTION_ERROR 0x4400
#define VM_EXIT_REASON 0x4402
#define VM_EXIT_INTR_INFO 0x4404
#define VM_EXIT_INSTRUCTION_LEN 0x440c
#define GUEST_ES_LIMIT 0x4800
#define GUEST_ES_AR_BYTES 0x4814
#define GUEST_GDTR_LIMIT 0x4810
#define GUEST_IDTR_LIMIT 0x4812
#define GUEST_INTERRUPTIBILITY_INFO 0x4824
#define GUEST_ACTIVITY_STATE 0x4826
#define GUEST_SYSENTER_CS 0x482a
#define HOST_IA32_SYSENTER_CS 0x4c00
#define CR0_GUEST_HOST_MASK 0x6000
#define CR4_GUEST_HOST_MASK 0x6002
#define CR0_READ_SHADOW 0x6004
#define CR4_READ_SHADOW 0x6006
#define EXIT_QUALIFICATION 0x6400
#define GUEST_CR0 0x6800
#define GUEST_CR3 0x6802
#define GUEST_CR4 0x6804
#define GUEST_ES_BASE 0x6806
#define GUEST_GDTR_BASE 0x6816
#define GUEST_IDTR_BASE 0x6818
#define GUEST_DR7 0x681a
#define GUEST_RSP 0x681c
#define GUEST_RIP 0x681e
#define GUEST_RFLAGS 0x6820
#define GUEST_PENDING_DBG_EXCEPTIONS 0x6822
#define GUEST_SYSENTER_ESP 0x6824
#define GUEST_SYSENTER_EIP 0x6826
#define HOST_CR0 0x6c00
#define HOST_CR3 0x6c02
#define HOST_CR4 0x6c04
#define HOST_FS_BASE 0x6c06
#define HOST_GS_BASE 0x6c08
#define HOST_TR_BASE 0x6c0a
#define HOST_GDTR_BASE 0x6c0c
#define HOST_IDTR_BASE 0x6c0e
#define HOST_IA32_SYSENTER_ESP 0x6c10
#define HOST_IA32_SYSENTER_EIP 0x6c12
#define HOST_RSP 0x6c14
#define HOST_RIP 0x6c16

/* Exit reasons (SDM Appendix C). */
#define EXIT_REASON_CPUID 10
#define EXIT_REASON_HLT 12
#define EXIT_REASON_VMCALL 18
#define EXIT_REASON_IO_INSTRUCTION 30
#define EXIT_REASON_MSR_READ 31
#define EXIT_REASON_INVALID_STATE 33
#define EXIT_REASON_EPT_VIOLATION 48
#define EXIT_REASON_FAILED_VMENTRY 0x80000000u

#define MSR_IA32_VMX_BASIC 0x480
#define MSR_IA32_VMX_TRUE_PINBASED_CTLS 0x48d
#define MSR_IA32_VMX_TRUE_PROCBASED_CTLS 0x48e
#define MSR_IA32_VMX_TRUE_EXIT_CTLS 0x48f
#define MSR_IA32_VMX_TRUE_ENTRY_CTLS 0x490
#define MSR_IA32_VMX_PROCBASED_CTLS2 0x48b
#define MSR_IA32_VMX_EPT_VPID_CAP 0x48c
#define MSR_IA32_VMX_CR0_FIXED0 0x486
#define MSR_IA32_VMX_CR4_FIXED0 0x488

#define CPU_BASED_HLT_EXITING (1u << 7)
#define CPU_BASED_USE_IO_BITMAPS (1u << 25)
#define CPU_BASED_USE_MSR_BITMAPS (1u << 28)
#define CPU_BASED_ACTIVATE_SECONDARY (1u << 31)
#define SECONDARY_EXEC_ENABLE_EPT (1u << 1)
#define SECONDARY_EXEC_ENABLE_VPID (1u << 5)
#define VM_EXIT_HOST_ADDR_SPACE_SIZE (1u << 9)
#define VM_ENTRY_IA32E_MODE (1u << 9)
#define X86_CR4_VMXE (1ul << 13)

/* VMX instruction outcome: 0 VMsucceed, 1 VMfailInvalid (CF), 2 VMfailValid (ZF). */
#define VMX_OK 0
#define VMX_FAIL_INVALID 1
#define VMX_FAIL_VALID 2

/* VM-instruction error numbers (SDM 31.4). */
#define VMXERR_ENTRY_INVALID_CONTROL_FIELD 7

#define VMX_STATUS_ASM "jc 1f\n\tjz 2f\n\txor %k0, %k0\n\tjmp 3f\n1:\tmov $1, %k0\n\tjmp 3f\n2:\tmov $2, %k0\n3:"

static inline int vmxon(uint64_t *pa) { int r; asm volatile("vmxon %1\n\t" VMX_STATUS_ASM : "=r"(r) : "m"(*pa) : "cc", "memory"); return r; }
static inline int vmxoff(void) { int r; asm volatile("vmxoff\n\t" VMX_STATUS_ASM : "=r"(r) : : "cc", "memory"); return r; }
static inline int vmclear(uint64_t *pa) { int r; asm volatile("vmclear %1\n\t" VMX_STATUS_ASM : "=r"(r) : "m"(*pa) : "cc", "memory"); return r; }
static inline int vmptrld(uint64_t *pa) { int r; asm volatile("vmptrld %1\n\t" VMX_STATUS_ASM : "=r"(r) : "m"(*pa) : "cc", "memory"); return r; }
static inline int vmptrst(uint64_t *pa) { int r; asm volatile("vmptrst %1\n\t" VMX_STATUS_ASM : "=r"(r), "=m"(*pa) : : "cc", "memory"); return r; }
static inline int vmwrite(uint64_t field, uint64_t value)
{
	int r;
	asm volatile("vmwrite %1, %2\n\t" VMX_STATUS_ASM : "=r"(r) : "r"(value), "r"(field) : "cc", "memory");
	return r;
}
static inline uint64_t vmread(uint64_t field)
{
	uint64_t v;
	asm volatile("vmread %1, %0" : "=r"(v) : "r"(field) : "cc");
	return v;
}
static inline int vmread_status(uint64_t field, uint64_t *v)
{
	int r;
	asm volatile("vmread %2, %1\n\t" VMX_STATUS_ASM : "=r"(r), "=r"(*v) : "r"(field) : "cc");
	return r;
}

/* The operand of SGDT/SIDT/LGDT in 64-bit mode. */
struct __attribute__((packed)) dtr {
	uint16_t limit;
	uint64_t base;
};

/* Every L1 here has one VMXON region, one VMCS for its L2 and one stack for L2. */
extern uint8_t vmxon_region[4096];
extern uint8_t vmcs[4096];
extern uint8_t l2_stack[4096];
#define L2_STACK_TOP (l2_stack + sizeof(l2_stack))

/*
 * Enters VMX operation and makes `vmcs` current (SDM 24.7, 25.2, 25.11.3): CR4.VMXE set, both
 * regions stamped with IA32_VMX_BASIC's revision identifier, then VMXON, VMCLEAR and VMPTRLD.
 * The three outcomes or'ed: VMX_OK when all three succeeded.
 */
int vmx_on_load_vmcs(void);

/* L2's general-purpose registers, RAX..R15 (RSP unused: it lives in GUEST_RSP). */
extern uint64_t l2_regs[16];
/*
 * Enters L2 (VMLAUNCH when launch, else VMRESUME). 0 after a VM exit, else the VMfail status.
 * HOST_RSP/HOST_RIP are written at launch only; L1's RSP comes back from memory at the exit,
 * so VMRESUME may be called from any frame.
 */
int vmx_enter(int launch);

/* Control word from a capability MSR: the must-be-1 bits, the wanted bits where allowed. */
static inline uint32_t vmx_ctl(uint32_t msr, uint32_t want)
{
	uint64_t cap = rdmsr(msr);
	return ((uint32_t)cap | want) & (uint32_t)(cap >> 32);
}

/* Fills the current VMCS for a 64-bit L2 at rip/rsp, on L1's CR3, GDT, IDT and TSS. */
void vmcs_setup_l2(void (*rip)(void), void *rsp, uint32_t proc, void *io_a, void *io_b, void *msr_bitmap);

/* Steps L2 over the instruction that exited: GUEST_RIP += VM_EXIT_INSTRUCTION_LEN. */
static inline void skip_exit_insn(void)
{
	vmwrite(GUEST_RIP, vmread(GUEST_RIP) + vmread(VM_EXIT_INSTRUCTION_LEN));
}

/*
 * Enters L2 (VMLAUNCH when launch, else VMRESUME) and reports, under the names given, that the
 * entry succeeded and that L2 came back with exit reason `reason`.
 */
void vmx_enter_expect_exit(const char *entry, int launch, const char *exit, uint32_t reason);

/* Handles one L2 exit, given its basic exit reason: 1 to resume L2, 0 to stop. */
typedef int l1_exit_handler(uint32_t reason);
/*
 * L1's exit loop: VMLAUNCH, then VMRESUME after every exit handle_exit wants resumed. VMX_OK
 * once handle_exit stops, else the VMfail outcome of the entry that failed. Inline, so that the
 * compiler inlines each guest's handler too: a measured loop (nested.cpuid) runs no more L1
 * instructions per exit than one written out by hand.
 */
static inline __attribute__((always_inline)) int vmx_run_l2(l1_exit_handler *handle_exit)
{
	for (int launch = 1;; launch = 0) {
		int r = vmx_enter(launch);
		if (r != VMX_OK)
			return r;
		if (!handle_exit(vmread(VM_EXIT_REASON)))
			return VMX_OK;
	}
}

/*
 * EPT12, L1's EPT for L2 (SDM 29.3): four levels, one table each, enough for the first 2 MiB of
 * guest-physical memory in 4 KiB pages.
 */
#define EPT_RWX 7ul
#define EPT_WB (6ul << 3) /* memory type of a leaf entry: write-back */
/* EPT pointer (SDM 25.6.11): the paging structures' memory type, the page-walk length less 1. */
#define EPTP_WB 6ul
#define EPTP_PWL4 (3ul << 3)
struct __attribute__((aligned(4096))) ept_tables {
	uint64_t pml4[512], pdpt[512], pd[512], pt[512];
};
/* Maps guest-physical 0..2 MiB onto itself, read/write/execute, write-back; returns the EPTP. */
uint64_t ept_identity_map(struct ept_tables *t);
/* Turns EPT on in the current VMCS: the secondary controls' "enable EPT" and EPT_POINTER. */
void vmcs_enable_ept(uint64_t eptp);
/* INVEPT single-context (SDM 31.3): drops what was cached from the EPT that eptp names. */
int invept_single(uint64_t eptp);

#endif
