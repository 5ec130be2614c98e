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

/* The capability of system call nr with arguments args (sys_rules) into *cap; 0 when the number has no
 * rule. The argument the rule reports, if any, goes into c's argument part. */
static __always_inline int gohook_sysrule(__u64 *args, __u32 nr, struct gohook_call *c, __u32 *cap)
{
	struct gohook_sysrule *rule = sys_rules.lookup(&nr);
	if (!rule || !rule->valid)
		return 0;
	__u32 k = rule->cap;
	if (rule->flags_arg != GOHOOK_NOARG && (args[rule->flags_arg & 7] & rule->mask))
		k = rule->cap_set;
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
