/*
 * nested-vmx-timer: the VMX-preemption timer for L1's guest (SDM 26.5.1, 28.3). L1 reads the
 * capability (pin-based bit 6, the "save VMX-preemption timer value" exit control, the rate in
 * IA32_VMX_MISC), then:
 * - runs an L2 that spins forever with a timer of 1000: a VM exit with reason 52 comes back,
 *   after L2 ran at least 1000 << rate instructions, with the saved value 0;
 * - runs an L2 that counts down 1000 (about 2000 instructions, 62 timer ticks) and executes
 *   CPUID, with a timer of 100000: the CPUID exit saves what is left, a little under 100000;
 * - without the save control, the field keeps what L1 wrote.
 */
#include "../nested-vmx-common/vmx.h"

#define VMX_PREEMPTION_TIMER_VALUE 0x482e
#define PIN_BASED_VMX_PREEMPTION_TIMER (1u << 6)
#define VM_EXIT_SAVE_VMX_PREEMPTION_TIMER (1u << 22)
#define MSR_IA32_VMX_MISC 0x485
#define EXIT_REASON_PREEMPTION_TIMER 52


void l2_spin(void);
void l2_cpuid(void);
/* R12 counts loop iterations (two instructions each). */
asm(".text\n"
    "l2_spin:\n\t"
    "xor %r12d, %r12d\n"
    "1:\tinc %r12\n\tjmp 1b\n"
    "l2_cpuid:\n\t"
    "mov $1000, %ecx\n"
    "2:\tdec %ecx\n\tjnz 2b\n\t"
    "xor %eax, %eax\n\txor %ecx, %ecx\n\tcpuid\n\t"
    "hlt\n\tud2\n");

int main(void)
{
	uint32_t rate = rdmsr(MSR_IA32_VMX_MISC) & 0x1f;
	report("the pin-based control may be 1", (rdmsr(MSR_IA32_VMX_TRUE_PINBASED_CTLS) >> 32) & PIN_BASED_VMX_PREEMPTION_TIMER);
	report("the save-timer exit control may be 1", (rdmsr(MSR_IA32_VMX_TRUE_EXIT_CTLS) >> 32) & VM_EXIT_SAVE_VMX_PREEMPTION_TIMER);
	report_eq("IA32_VMX_MISC: the timer counts every 2^5 TSC ticks", rate, 5);

	report_eq("VMXON, VMCLEAR, VMPTRLD", vmx_on_load_vmcs(), VMX_OK);
	vmcs_setup_l2(l2_spin, L2_STACK_TOP, CPU_BASED_HLT_EXITING, 0, 0, 0);
	uint32_t exit_ctl = vmread(VM_EXIT_CONTROLS);
	vmwrite(PIN_BASED_VM_EXEC_CONTROL, vmread(PIN_BASED_VM_EXEC_CONTROL) | PIN_BASED_VMX_PREEMPTION_TIMER);
	vmwrite(VM_EXIT_CONTROLS, exit_ctl | VM_EXIT_SAVE_VMX_PREEMPTION_TIMER);

	/* An L2 that never exits by itself. */
	vmwrite(VMX_PREEMPTION_TIMER_VALUE, 1000);
	vmx_enter_expect_exit("VMLAUNCH of a spinning L2 with a timer of 1000", 1,
			      "exit: VMX-preemption timer expired", EXIT_REASON_PREEMPTION_TIMER);
	report_eq("exit qualification 0", vmread(EXIT_QUALIFICATION), 0);
	report_eq("saved timer value 0", vmread(VMX_PREEMPTION_TIMER_VALUE), 0);
	report("L2 ran out the timer: at least 1000 << 5 instructions", l2_regs[12] * 2 >= (1000ull << rate));

	/* An L2 that exits at once: the timer is reloaded at entry, and what is left is saved. */
	vmwrite(GUEST_RIP, (uint64_t)l2_cpuid);
	vmwrite(VMX_PREEMPTION_TIMER_VALUE, 100000);
	vmx_enter_expect_exit("VMRESUME at a short loop and CPUID with a timer of 100000", 0, "exit: CPUID", EXIT_REASON_CPUID);
	uint64_t left = vmread(VMX_PREEMPTION_TIMER_VALUE);
	report("saved timer value: 100000 less the ~62 ticks L2 ran", left < 100000 && left > 99900);

	/* Without the save control the field is L1's to keep. */
	vmwrite(VM_EXIT_CONTROLS, exit_ctl);
	vmwrite(VMX_PREEMPTION_TIMER_VALUE, 777);
	skip_exit_insn();
	vmx_enter_expect_exit("VMRESUME to the HLT", 0, "exit: HLT", EXIT_REASON_HLT);
	report_eq("the timer value stays as L1 wrote it", vmread(VMX_PREEMPTION_TIMER_VALUE), 777);
	report_eq("VMXOFF", vmxoff(), VMX_OK);
	return report_summary();
}
