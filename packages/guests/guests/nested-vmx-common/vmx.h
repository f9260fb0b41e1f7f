/*
 * A small L1 hypervisor library for the nested-vmx-* guests: VMX instructions, the VMCS field
 * encodings (SDM Appendix B), a complete VMCS for a 64-bit L2 that shares L1's page tables and
 * GDT, and the world switch (vmx_enter) that saves L2's GPRs in l2_regs on every exit.
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
#define EXIT_REASON_FAILED_VMENTRY 0x80000000u

#define MSR_IA32_VMX_BASIC 0x480
#define MSR_IA32_VMX_TRUE_PINBASED_CTLS 0x48d
#define MSR_IA32_VMX_TRUE_PROCBASED_CTLS 0x48e
#define MSR_IA32_VMX_TRUE_EXIT_CTLS 0x48f
#define MSR_IA32_VMX_TRUE_ENTRY_CTLS 0x490
#define MSR_IA32_VMX_PROCBASED_CTLS2 0x48b
#define MSR_IA32_VMX_CR0_FIXED0 0x486
#define MSR_IA32_VMX_CR4_FIXED0 0x488

#define CPU_BASED_HLT_EXITING (1u << 7)
#define CPU_BASED_USE_IO_BITMAPS (1u << 25)
#define CPU_BASED_USE_MSR_BITMAPS (1u << 28)
#define CPU_BASED_ACTIVATE_SECONDARY (1u << 31)
#define SECONDARY_EXEC_ENABLE_VPID (1u << 5)
#define VM_EXIT_HOST_ADDR_SPACE_SIZE (1u << 9)
#define VM_ENTRY_IA32E_MODE (1u << 9)
#define X86_CR4_VMXE (1ul << 13)

/* VMX instruction outcome: 0 VMsucceed, 1 VMfailInvalid (CF), 2 VMfailValid (ZF). */
#define VMX_OK 0
#define VMX_FAIL_INVALID 1
#define VMX_FAIL_VALID 2

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

/* L2's general-purpose registers, RAX..R15 (RSP unused: it lives in GUEST_RSP). */
extern uint64_t l2_regs[16];
/*
 * Enters L2 (VMLAUNCH when launch, else VMRESUME). 0 after a VM exit, else the VMfail status.
 * HOST_RSP is set at launch: VMRESUME must come from the same stack frame as the VMLAUNCH.
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

#endif
