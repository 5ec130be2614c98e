/* lib/sysrules.h: the capability of a system call, by its number and arguments.
 *
 * sys_rules (filled by the loader from the plan's syscall_rules, gohook.sites.syscalls) says which
 * capability each x86-64 system call number needs, with the flags rule of the opens (files.write when
 * the flags ask for writing, else files.read) and which argument to report. Three judges use it: the
 * sentinel (lib/sentinel.h) for the system calls no hook point covered, the uprobe on each `syscall`
 * instruction of a module's own code (SITE, lib/entry.h), and the hooks on the call sites of the raw
 * system-call functions (HOOK_RAW: syscall.Syscall, Syscall6, RawSyscall, RawSyscall6, whose first
 * argument is the number), so that a raw system call needs the capability of the call it makes, not
 * only `syscall`.
 */
#ifndef GOHOOK_LIB_SYSRULES_H
#define GOHOOK_LIB_SYSRULES_H

#include "gohook.h"
#include "lib/config.h"
#include "lib/maps.h"

/* Does argument test `test` hold for args? bias: the binary's load bias in this process (GOHOOK_T_TEXT). */
static __always_inline int gohook_systest(__u8 test, __u8 a, __u64 operand, __u64 *args, __u64 bias)
{
	__u64 v = args[a & 7];
	switch (test) {
	case GOHOOK_T_MASK:
		return (v & operand) != 0;
	case GOHOOK_T_EQ:
		return v == operand;
	case GOHOOK_T_GUARD: {
		/* only a caller in gohook's own pid namespace can name gohook's processes by these numbers */
		struct bpf_pidns_info ns = {};
		if (bpf_get_ns_current_pid_tgid(GOHOOK_PIDNS_DEV, GOHOOK_PIDNS_INO, &ns, sizeof(ns)))
			return 0;
		__u32 pid = (__u32)v;
		return guarded.lookup(&pid) != 0;
	}
	case GOHOOK_T_TEXT: {
		/* address 0 is mmap's "anywhere" (MAP_FIXED at 0 fails: mmap_min_addr), not the text */
		__u64 lo = bias + GOHOOK_TEXT_START, end = v + args[(a + 1) & 7];
		if (end < v)
			end = ~0ULL; /* a length that wraps covers the rest of the address space */
		return v && v < lo + GOHOOK_TEXT_SIZE && end > lo;
	}
	case GOHOOK_T_TYPE:
		return ((1ULL << (v & 0xf)) & operand) != 0;
	case GOHOOK_T_SELF:
		return (__u32)v == (__u32)(bpf_get_current_pid_tgid() >> 32);
	case GOHOOK_T_PTR: {
		__u64 p = 0;
		if (bpf_probe_read_user(&p, sizeof(p), (void *)(v + operand)))
			return 1; /* unreadable: the kernel fails the call, or the memory changed under us: assume the worst */
		return p != 0;
	}
	}
	return 0;
}

/* The capability judge `judge` (GOHOOK_J_*) gives system call nr with arguments args, into *cap; 0 when it
 * has no rule for the number, or the rule says the call needs none. The argument the rule reports, if
 * any, goes into c's argument part. */
static __always_inline int gohook_sysrule(__u64 *args, __u32 nr, __u32 judge, __u64 bias, struct gohook_call *c,
					  __u32 *cap)
{
	struct gohook_sysrule *rule = sys_rules.lookup(&nr);
	if (!rule || !(rule->judges & judge))
		return 0;
	__u32 k = rule->cap;
	if (rule->test && gohook_systest(rule->test, rule->test_arg, rule->operand, args, bias))
		k = rule->cap_set;
	else if (rule->test2 && gohook_systest(rule->test2, rule->test2_arg, rule->operand2, args, bias))
		k = rule->cap2_set;
	if (k == GOHOOK_NOCAP)
		return 0;
	*cap = k;
	if (rule->arg != GOHOOK_NOARG) {
		c->arg_kind = rule->arg_kind;
		c->a0 = args[rule->arg & 7];
		c->a1 = rule->len_arg == GOHOOK_NOARG ? 0 : args[rule->len_arg & 7];
	}
	return 1;
}

/* The system-call argument registers of a uprobe on a `syscall` instruction. */
#define GOHOOK_SYSARGS(ctx) {(ctx)->di, (ctx)->si, (ctx)->dx, (ctx)->r10, (ctx)->r8, (ctx)->r9, 0, 0}

/* The system-call arguments a1..a6 of a call of syscall.Syscall6(trap, a1, ..., a6) in Go's register ABI
 * (RAX holds trap; RBX, RCX, RDI, RSI, R8, R9 the arguments); Syscall(trap, a1, a2, a3) passes only three,
 * the kernel then gets 0 for the others. */
#define GOHOOK_GOSYSARGS(ctx, nargs)                                                             \
	{(ctx)->bx, (ctx)->cx, (ctx)->di, (nargs) > 3 ? (ctx)->si : 0, (nargs) > 3 ? (ctx)->r8 : 0,      \
	 (nargs) > 3 ? (ctx)->r9 : 0, 0, 0}

#endif /* GOHOOK_LIB_SYSRULES_H */
