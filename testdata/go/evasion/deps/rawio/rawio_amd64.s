#include "textflag.h"

// func openat(dirfd int, path *byte, flags int, mode int) (r int)
TEXT ·openat(SB), NOSPLIT, $0-40
	MOVQ	dirfd+0(FP), DI
	MOVQ	path+8(FP), SI
	MOVQ	flags+16(FP), DX
	MOVQ	mode+24(FP), R10
	MOVQ	$257, AX // SYS_openat
	SYSCALL
	MOVQ	AX, r+32(FP)
	RET
