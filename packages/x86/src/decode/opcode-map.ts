/**
 * The opcode maps, one entry per opcode, in the SDM's operand notation (Vol. 2, Appendix A):
 * "MNEMONIC operands attributes". Operands: E/G (ModRM r/m and reg), I (immediate), J (relative
 * offset), M (memory only), O (moffs), S (Sreg in ModRM.reg), C/D (control/debug register in
 * ModRM.reg), R (general register in ModRM.r/m), A (far pointer), Z (register in the opcode's
 * low bits), AL/rAX/DX/CL/1 (fixed); sizes b, w, d, v, z, p, y. Attributes (Vol. 2, Table A-1
 * superscripts): i64 = invalid in 64-bit mode, d64 = operand size defaults to 64 there, f64 =
 * forced to 64 there, lock = LOCK allowed (with a memory destination), end = ends a decoded block
 * (changes control flow or mode, or may consult the virtualization extension, which reads
 * cpu.insnLength). `#UD` marks undefined opcodes, and the x87/SSE/AVX/MMX
 * opcodes this CPU does not implement. `GRPn` opens a group table indexed by ModRM.reg.
 */
export const ONE_BYTE_MAP = [
  /* 00 */ 'ADD Eb,Gb lock', 'ADD Ev,Gv lock', 'ADD Gb,Eb', 'ADD Gv,Ev', 'ADD AL,Ib', 'ADD rAX,Iz', 'PUSHSEG ES i64', 'POPSEG ES i64 end',
  /* 08 */ 'OR Eb,Gb lock', 'OR Ev,Gv lock', 'OR Gb,Eb', 'OR Gv,Ev', 'OR AL,Ib', 'OR rAX,Iz', 'PUSHSEG CS i64', '#UD',
  /* 10 */ 'ADC Eb,Gb lock', 'ADC Ev,Gv lock', 'ADC Gb,Eb', 'ADC Gv,Ev', 'ADC AL,Ib', 'ADC rAX,Iz', 'PUSHSEG SS i64', 'POPSEG SS i64 end',
  /* 18 */ 'SBB Eb,Gb lock', 'SBB Ev,Gv lock', 'SBB Gb,Eb', 'SBB Gv,Ev', 'SBB AL,Ib', 'SBB rAX,Iz', 'PUSHSEG DS i64', 'POPSEG DS i64 end',
  /* 20 */ 'AND Eb,Gb lock', 'AND Ev,Gv lock', 'AND Gb,Eb', 'AND Gv,Ev', 'AND AL,Ib', 'AND rAX,Iz', '#UD', 'DAA i64',
  /* 28 */ 'SUB Eb,Gb lock', 'SUB Ev,Gv lock', 'SUB Gb,Eb', 'SUB Gv,Ev', 'SUB AL,Ib', 'SUB rAX,Iz', '#UD', 'DAS i64',
  /* 30 */ 'XOR Eb,Gb lock', 'XOR Ev,Gv lock', 'XOR Gb,Eb', 'XOR Gv,Ev', 'XOR AL,Ib', 'XOR rAX,Iz', '#UD', 'AAA i64',
  /* 38 */ 'CMP Eb,Gb', 'CMP Ev,Gv', 'CMP Gb,Eb', 'CMP Gv,Ev', 'CMP AL,Ib', 'CMP rAX,Iz', '#UD', 'AAS i64',
  /* 40 */ 'INC Zv i64', 'INC Zv i64', 'INC Zv i64', 'INC Zv i64', 'INC Zv i64', 'INC Zv i64', 'INC Zv i64', 'INC Zv i64',
  /* 48 */ 'DEC Zv i64', 'DEC Zv i64', 'DEC Zv i64', 'DEC Zv i64', 'DEC Zv i64', 'DEC Zv i64', 'DEC Zv i64', 'DEC Zv i64',
  /* 50 */ 'PUSH Zv d64', 'PUSH Zv d64', 'PUSH Zv d64', 'PUSH Zv d64', 'PUSH Zv d64', 'PUSH Zv d64', 'PUSH Zv d64', 'PUSH Zv d64',
  /* 58 */ 'POP Zv d64', 'POP Zv d64', 'POP Zv d64', 'POP Zv d64', 'POP Zv d64', 'POP Zv d64', 'POP Zv d64', 'POP Zv d64',
  /* 60 */ 'PUSHA i64', 'POPA i64', 'BOUND Gv,Ma i64', 'ARPL Ew,Gw', '#UD', '#UD', '#UD', '#UD',
  /* 68 */ 'PUSH Iz d64', 'IMUL3 Gv,Ev,Iz', 'PUSH Ib d64', 'IMUL3 Gv,Ev,Ib', 'INS Yb,DX', 'INS Yz,DX', 'OUTS DX,Xb', 'OUTS DX,Xz',
  /* 70 */ 'JCC Jb f64 end', 'JCC Jb f64 end', 'JCC Jb f64 end', 'JCC Jb f64 end', 'JCC Jb f64 end', 'JCC Jb f64 end', 'JCC Jb f64 end', 'JCC Jb f64 end',
  /* 78 */ 'JCC Jb f64 end', 'JCC Jb f64 end', 'JCC Jb f64 end', 'JCC Jb f64 end', 'JCC Jb f64 end', 'JCC Jb f64 end', 'JCC Jb f64 end', 'JCC Jb f64 end',
  /* 80 */ 'GRP1 Eb,Ib', 'GRP1 Ev,Iz', 'GRP1 Eb,Ib i64', 'GRP1 Ev,Ib', 'TEST Eb,Gb', 'TEST Ev,Gv', 'XCHG Eb,Gb lock', 'XCHG Ev,Gv lock',
  /* 88 */ 'MOV Eb,Gb', 'MOV Ev,Gv', 'MOV Gb,Eb', 'MOV Gv,Ev', 'MOVFROMSEG Ev,Sw', 'LEA Gv,M', 'MOVTOSEG Sw,Ew end', 'GRP1A Ev d64',
  /* 90 */ 'NOP90 Zv', 'XCHG Zv,rAX', 'XCHG Zv,rAX', 'XCHG Zv,rAX', 'XCHG Zv,rAX', 'XCHG Zv,rAX', 'XCHG Zv,rAX', 'XCHG Zv,rAX',
  /* 98 */ 'CBW', 'CWD', 'CALLF Ap i64 end', 'FWAIT', 'PUSHF d64 end', 'POPF d64 end', 'SAHF', 'LAHF',
  /* A0 */ 'MOV AL,Ob', 'MOV rAX,Ov', 'MOV Ob,AL', 'MOV Ov,rAX', 'MOVS Yb,Xb', 'MOVS Yv,Xv', 'CMPS Xb,Yb', 'CMPS Xv,Yv',
  /* A8 */ 'TEST AL,Ib', 'TEST rAX,Iz', 'STOS Yb,AL', 'STOS Yv,rAX', 'LODS AL,Xb', 'LODS rAX,Xv', 'SCAS AL,Yb', 'SCAS rAX,Yv',
  /* B0 */ 'MOV Zb,Ib', 'MOV Zb,Ib', 'MOV Zb,Ib', 'MOV Zb,Ib', 'MOV Zb,Ib', 'MOV Zb,Ib', 'MOV Zb,Ib', 'MOV Zb,Ib',
  /* B8 */ 'MOV Zv,Iv', 'MOV Zv,Iv', 'MOV Zv,Iv', 'MOV Zv,Iv', 'MOV Zv,Iv', 'MOV Zv,Iv', 'MOV Zv,Iv', 'MOV Zv,Iv',
  /* C0 */ 'GRP2 Eb,Ib', 'GRP2 Ev,Ib', 'RET Iw f64 end', 'RET f64 end', 'LES Gz,Mp i64 end', 'LDS Gz,Mp i64 end', 'GRP11 Eb,Ib', 'GRP11 Ev,Iz',
  /* C8 */ 'ENTER Iw,Ib d64', 'LEAVE d64', 'RETF Iw end', 'RETF end', 'INT3 end', 'INT Ib end', 'INTO i64 end', 'IRET end',
  /* D0 */ 'GRP2 Eb,1', 'GRP2 Ev,1', 'GRP2 Eb,CL', 'GRP2 Ev,CL', 'AAM Ib i64', 'AAD Ib i64', 'SALC i64', 'XLAT',
  /* D8 */ '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD',
  /* E0 */ 'LOOPNE Jb f64 end', 'LOOPE Jb f64 end', 'LOOP Jb f64 end', 'JCXZ Jb f64 end', 'IN AL,Ib end', 'IN eAX,Ib end', 'OUT Ib,AL end', 'OUT Ib,eAX end',
  /* E8 */ 'CALL Jz f64 end', 'JMP Jz f64 end', 'JMPF Ap i64 end', 'JMP Jb f64 end', 'IN AL,DX end', 'IN eAX,DX end', 'OUT DX,AL end', 'OUT DX,eAX end',
  /* F0 */ '#UD', 'INT1 end', '#UD', '#UD', 'HLT end', 'CMC', 'GRP3 Eb', 'GRP3 Ev',
  /* F8 */ 'CLC', 'STC', 'CLI end', 'STI end', 'CLD', 'STD', 'GRP4 Eb', 'GRP5 Ev',
] as const;

/** The two-byte map (0F xx). */
export const TWO_BYTE_MAP = [
  /* 00 */ 'GRP6 Ew', 'GRP7', 'LAR Gv,Ew', 'LSL Gv,Ew', '#UD', 'SYSCALL end', 'CLTS end', 'SYSRET end',
  /* 08 */ 'INVD end', 'WBINVD end', '#UD', 'UD2', '#UD', 'NOP Ev', '#UD', '#UD',
  /* 10 */ '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD',
  /* 18 */ 'NOP Ev', 'NOP Ev', 'NOP Ev', 'NOP Ev', 'NOP Ev', 'NOP Ev', 'NOP Ev', 'NOP Ev',
  /* 20 */ 'MOVFROMCR Ry,Cy f64 end', 'MOVFROMDR Ry,Dy f64 end', 'MOVTOCR Cy,Ry f64 end', 'MOVTODR Dy,Ry f64 end', '#UD', '#UD', '#UD', '#UD',
  /* 28 */ '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD',
  /* 30 */ 'WRMSR end', 'RDTSC end', 'RDMSR end', 'RDPMC end', 'SYSENTER end', 'SYSEXIT end', '#UD', '#UD',
  /* 38 */ 'ESC38', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD',
  /* 40 */ 'CMOVCC Gv,Ev', 'CMOVCC Gv,Ev', 'CMOVCC Gv,Ev', 'CMOVCC Gv,Ev', 'CMOVCC Gv,Ev', 'CMOVCC Gv,Ev', 'CMOVCC Gv,Ev', 'CMOVCC Gv,Ev',
  /* 48 */ 'CMOVCC Gv,Ev', 'CMOVCC Gv,Ev', 'CMOVCC Gv,Ev', 'CMOVCC Gv,Ev', 'CMOVCC Gv,Ev', 'CMOVCC Gv,Ev', 'CMOVCC Gv,Ev', 'CMOVCC Gv,Ev',
  /* 50 */ '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD',
  /* 58 */ '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD',
  /* 60 */ '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD',
  /* 68 */ '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD',
  /* 70 */ '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD',
  /* 78 */ 'VMREAD Ey,Gy f64 exit', 'VMWRITE Gy,Ey f64 exit', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD',
  /* 80 */ 'JCC Jz f64 end', 'JCC Jz f64 end', 'JCC Jz f64 end', 'JCC Jz f64 end', 'JCC Jz f64 end', 'JCC Jz f64 end', 'JCC Jz f64 end', 'JCC Jz f64 end',
  /* 88 */ 'JCC Jz f64 end', 'JCC Jz f64 end', 'JCC Jz f64 end', 'JCC Jz f64 end', 'JCC Jz f64 end', 'JCC Jz f64 end', 'JCC Jz f64 end', 'JCC Jz f64 end',
  /* 90 */ 'SETCC Eb', 'SETCC Eb', 'SETCC Eb', 'SETCC Eb', 'SETCC Eb', 'SETCC Eb', 'SETCC Eb', 'SETCC Eb',
  /* 98 */ 'SETCC Eb', 'SETCC Eb', 'SETCC Eb', 'SETCC Eb', 'SETCC Eb', 'SETCC Eb', 'SETCC Eb', 'SETCC Eb',
  /* A0 */ 'PUSHSEG FS d64', 'POPSEG FS d64 end', 'CPUID end', 'BT Ev,Gv', 'SHLD Ev,Gv,Ib', 'SHLD Ev,Gv,CL', '#UD', '#UD',
  /* A8 */ 'PUSHSEG GS d64', 'POPSEG GS d64 end', 'RSM end', 'BTS Ev,Gv lock', 'SHRD Ev,Gv,Ib', 'SHRD Ev,Gv,CL', 'GRP15', 'IMUL2 Gv,Ev',
  /* B0 */ 'CMPXCHG Eb,Gb lock', 'CMPXCHG Ev,Gv lock', 'LSS Gv,Mp end', 'BTR Ev,Gv lock', 'LFS Gv,Mp end', 'LGS Gv,Mp end', 'MOVZX Gv,Eb', 'MOVZX Gv,Ew',
  /* B8 */ 'POPCNT Gv,Ev', 'UD1 Gv,Ev', 'GRP8 Ev,Ib', 'BTC Ev,Gv lock', 'BSF Gv,Ev', 'BSR Gv,Ev', 'MOVSX Gv,Eb', 'MOVSX Gv,Ew',
  /* C0 */ 'XADD Eb,Gb lock', 'XADD Ev,Gv lock', '#UD', '#UD', '#UD', '#UD', '#UD', 'GRP9',
  /* C8 */ 'BSWAP Zv', 'BSWAP Zv', 'BSWAP Zv', 'BSWAP Zv', 'BSWAP Zv', 'BSWAP Zv', 'BSWAP Zv', 'BSWAP Zv',
  /* D0 */ '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD',
  /* D8 */ '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD',
  /* E0 */ '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD',
  /* E8 */ '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD',
  /* F0 */ '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD',
  /* F8 */ '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', 'UD0 Gv,Ev',
] as const;

/** The three-byte map 0F 38 (only the entries this CPU has; the rest are #UD). Key: third byte. */
export const THREE_BYTE_38_MAP = {
  0x80: 'INVEPT Gy,Mdq f64 end',
  0x81: 'INVVPID Gy,Mdq f64 end',
  0xf0: 'MOVBE Gv,Mv',
  0xf1: 'MOVBE Mv,Gv',
} as const;

/** Group tables (SDM Vol. 2, Table A-6), indexed by ModRM.reg; operands come from the opcode entry unless given. */
export const GROUPS = {
  GRP1: ['ADD lock', 'OR lock', 'ADC lock', 'SBB lock', 'AND lock', 'SUB lock', 'XOR lock', 'CMP'],
  GRP1A: ['POP', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD'],
  GRP2: ['ROL', 'ROR', 'RCL', 'RCR', 'SHL', 'SHR', 'SHL', 'SAR'],
  GRP3: ['TEST I', 'TEST I', 'NOT lock', 'NEG lock', 'MUL', 'IMUL1', 'DIV', 'IDIV'],
  GRP4: ['INC lock', 'DEC lock', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD'],
  GRP5: ['INC lock', 'DEC lock', 'CALLN f64 end', 'CALLF Mp end', 'JMPN f64 end', 'JMPF Mp end', 'PUSH d64', '#UD'],
  GRP6: ['SLDT end', 'STR end', 'LLDT end', 'LTR end', 'VERR end', 'VERW end', '#UD', '#UD'],
  GRP7: ['SGDT M end', 'SIDT M end', 'LGDT M end', 'LIDT M end', 'SMSW end', '#UD', 'LMSW end', 'INVLPG M end'],
  GRP8: ['#UD', '#UD', '#UD', '#UD', 'BT', 'BTS lock', 'BTR lock', 'BTC lock'],
  GRP9: ['#UD', 'CMPXCHG8B Mq lock', '#UD', '#UD', '#UD', '#UD', 'VMPTRLD Mq end', 'VMPTRST Mq end'],
  GRP11: ['MOV', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD', '#UD'],
  GRP15: ['#UD', '#UD', '#UD', '#UD', '#UD', 'LFENCE', 'MFENCE', 'SFENCE'],
} as const;

/** 0F 01 with ModRM.mod = 3, by ModRM byte (SDM Vol. 2, Table A-6 note on 0F 01). */
export const GRP7_REG_FORMS = {
  0xc1: 'VMCALL end', 0xc2: 'VMLAUNCH end', 0xc3: 'VMRESUME end', 0xc4: 'VMXOFF end',
  0xc8: 'MONITOR end', 0xc9: 'MWAIT end', 0xca: 'CLAC', 0xcb: 'STAC',
  0xd0: 'XGETBV end', 0xd1: 'XSETBV end', 0xd4: 'VMFUNC end',
  0xd8: 'VMRUN end', 0xd9: 'VMMCALL end', 0xda: 'VMLOAD end', 0xdb: 'VMSAVE end',
  0xdc: 'STGI end', 0xdd: 'CLGI end', 0xde: 'SKINIT end', 0xdf: 'INVLPGA end',
  0xf8: 'SWAPGS end', 0xf9: 'RDTSCP end',
} as const;
