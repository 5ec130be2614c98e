#include "textflag.h"

// func syscall6(nr, a1, a2, a3, a4, a5, a6 uintptr) (r uintptr, errno uintptr)
// The module's own `syscall` instruction: no standard-library function is on the way.
TEXT ·syscall6(SB), NOSPLIT, $0-72
	MOVQ	a1+8(FP), DI
	MOVQ	a2+16(FP), SI
	MOVQ	a3+24(FP), DX
	MOVQ	a4+32(FP), R10
	MOVQ	a5+40(FP), R8
	MOVQ	a6+48(FP), R9
	MOVQ	nr+0(FP), AX
	SYSCALL
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	MOVQ	$-1, r+56(FP)
	NEGQ	AX
	MOVQ	AX, errno+64(FP)
	RET
ok:
	MOVQ	AX, r+56(FP)
	MOVQ	$0, errno+64(FP)
	RET

// func int80(nr, a1, a2, a3 uintptr) (r uintptr)
// The i386 system-call interface from 64-bit code (`int 0x80`: i386 numbers, 32-bit arguments in
// EBX, ECX, EDX). The kernel's per-system-call tracepoints do not fire for these calls.
TEXT ·int80(SB), NOSPLIT, $0-40
	MOVQ	a1+8(FP), BX
	MOVQ	a2+16(FP), CX
	MOVQ	a3+24(FP), DX
	MOVQ	nr+0(FP), AX
	INT	$0x80
	MOVQ	AX, r+32(FP)
	RET
