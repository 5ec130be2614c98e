/* lib/guard.h: the guard, per-system-call tracepoints that keep enforcement on.
 *
 * The hooks and the sentinel judge the capability calls; the guard judges the system calls that can
 * switch enforcement off or slip past it, in every process of the binary and whatever --sentinel says
 * (GOHOOK_GUARD=1, with goroutine provenance: its "created" probe registers the processes in
 * `targets`): making memory executable or the code writable (mmap, mprotect, pkey_mprotect, mremap,
 * personality), dropping the probed code pages (madvise on the text), signals to gohook's own processes
 * (kill, tkill, tgkill, rt_sigqueueinfo, rt_tgsigqueueinfo, pidfd_open of them), ptrace and
 * process_vm_readv/writev (of gohook: tamper; of another process: process.debug), io_uring_setup, bpf,
 * perf_event_open. Which calls, and what each needs, is the sys_rules entries whose judges include
 * GOHOOK_J_GUARD (gohook.sites.syscalls.REFINED); the loader attaches this one program to the
 * syscalls:sys_enter_<name> tracepoint of each, so it runs only for those system calls (a raw_syscalls
 * program would run for every system call of the machine).
 *
 * A tracepoint cannot stop the call it sees, but the SIGKILL it sends is delivered before the process
 * runs its next instruction: code made writable is never written, executable memory never run, the
 * io_uring never used. A signal that kills gohook itself still arrives, together with the target's
 * own death (fail closed; a process started with -- CMD cannot name gohook at all: it runs in a pid
 * namespace of its own).
 *
 * Attribution is the sentinel's (gohook_judge_syscall in lib/sentinel.h): the user registers of the
 * task (bpf_task_pt_regs), the stack walk, cgo and provenance fallbacks, the policy's decision.
 */
#ifndef GOHOOK_LIB_GUARD_H
#define GOHOOK_LIB_GUARD_H

#include "gohook.h"
#include "lib/config.h"
#include "lib/maps.h"
#include "lib/sentinel.h"

#if GOHOOK_GUARD
/* The context of a syscalls:sys_enter_<name> tracepoint (its format file: the common fields, then
 * __syscall_nr and the six arguments). */
struct gohook_sys_enter_args {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__u64 args[6];
};

static __always_inline int gohook_guard_run(struct gohook_sys_enter_args *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 *bias = targets.lookup(&tgid);
	if (!bias)
		return 0;
	/* the arguments from the tracepoint's record, in one copy (a direct read of ctx->args fails to attach
	 * where the call takes fewer than six); the user registers only once the rule says it is a capability
	 * call (gohook_judge_syscall): about 45 % less time per guarded call (bench/bench_guard.py) */
	__u64 args[8] = {};
	bpf_probe_read_kernel(args, 6 * sizeof(__u64), ctx->args);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	struct pt_regs *kregs = (struct pt_regs *)bpf_task_pt_regs(task);
	return gohook_judge_syscall(kregs, args, (__u32)ctx->nr, *bias, GOHOOK_J_GUARD);
}
#endif

#endif /* GOHOOK_LIB_GUARD_H */
