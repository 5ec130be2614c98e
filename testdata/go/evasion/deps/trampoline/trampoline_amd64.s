#include "textflag.h"

// func callNoFP(fn, a0, a1 uintptr)
// Calls the ABIInternal function at fn with a0, a1 in AX, BX and BP cleared.
// The 16-byte frame is the callee's spill area for its two register arguments.
TEXT ·callNoFP(SB), NOSPLIT|NOFRAME, $16-24
	MOVQ	fn+0(FP), R12
	MOVQ	a0+8(FP), AX
	MOVQ	a1+16(FP), BX
	XORQ	BP, BP
	CALL	R12
	RET

// func jmpForged(fn, gadget, a0, a1 uintptr)
// Jumps to the ABIInternal function at fn with a0, a1 in AX, BX, BP cleared,
// and gadget as its return address. Below our own return address R it lays
// out what the callee and the gadget (ADDQ $0x10, SP; POPQ BP; RET) expect:
//
//	SP+0: gadget     the callee returns there
//	SP+8: spill      two words the callee may spill its arguments to
//	SP+24: BP        restored by the gadget's POPQ BP
//	SP+32: R         where the gadget's RET goes: our caller
TEXT ·jmpForged(SB), NOSPLIT|NOFRAME, $0-32
	MOVQ	fn+0(FP), R12
	MOVQ	gadget+8(FP), R13
	MOVQ	a0+16(FP), AX
	MOVQ	a1+24(FP), BX
	MOVQ	BP, -8(SP)
	MOVQ	R13, -32(SP)
	SUBQ	$32, SP
	XORQ	BP, BP
	JMP	R12
