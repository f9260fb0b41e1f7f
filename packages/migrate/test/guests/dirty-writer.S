/*
 * A migration witness, real mode, loaded and entered at 0x1000. Each iteration writes one word
 * into one of 16 pages at 0x20000 (a different page each time, so every pre-copy round finds
 * pages dirtied behind it), then OUTs the value to port 0x500: an exit per iteration, where a
 * VMM may migrate. At the end it sums the 64 KiB and OUTs the sum to port 0x501, then ends
 * through port 0xf4. A page missed by the dirty log changes the sum.
 */
#ifndef ITERS
#define ITERS 2000
#endif
    .code16
    .globl _start
_start:
    mov $0x2000, %ax
    mov %ax, %es
    xor %si, %si
1:  mov %si, %bx
    and $15, %bx
    shl $12, %bx
    mov %si, %di
    shr $4, %di
    and $2047, %di
    shl $1, %di
    add %bx, %di
    imul $0x9e37, %si, %ax
    xor %si, %ax
    mov %ax, %es:(%di)
    mov $0x500, %dx
    out %ax, %dx
    inc %si
    cmp $ITERS, %si
    jne 1b
    xor %ax, %ax
    xor %di, %di
    mov $0x8000, %cx
2:  add %es:(%di), %ax
    add $2, %di
    loop 2b
    mov $0x501, %dx
    out %ax, %dx
    xor %al, %al
    out %al, $0xf4
    hlt
