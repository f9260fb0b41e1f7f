/* Selectors of the runtime GDT (gdt.S), for assembly and C alike. */
#define KERNEL_CS64 0x08
#define KERNEL_DS   0x10
#define KERNEL_CS32 0x18
#define TSS_SEL     0x20
#define USER_CS32   0x30
#define USER_DS     0x38
#define USER_CS64   0x40
#define STACK_SIZE  0x4000
