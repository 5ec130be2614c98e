#include "textflag.h"

// func getpid() int
TEXT ·getpid(SB), NOSPLIT, $0-8
	MOVQ	$39, AX // SYS_getpid
	SYSCALL
	MOVQ	AX, ret+0(FP)
	RET
