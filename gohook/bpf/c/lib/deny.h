/* lib/deny.h: what a violation does in enforce mode, by the charged module's action (module_action).
 *
 *   kill   SIGKILL of the process, before the hooked function runs another instruction;
 *   audit  nothing (the event records it);
 *   error  the hooked function returns at once with a denial (EPERM, an unset variable, ...: its catalog
 *          return plan, gohook.sites.catalog.ReturnPlan), and the process runs on (issue 15).
 *
 * error, on a kernel whose uprobe programs cannot write their registers (this one: "invalid bpf_context
 * access"): the program leaves the thread a mark in deny_marks (struct gohook_denymark: where the function
 * returns to, the stack pointer after the return, RBP, the load bias, the hook) and sends the thread
 * SIGSYS. gohook traces the process (gohook/attach/tracer.py); at the signal's delivery stop it sets the
 * registers from the mark and the hook's return plan and suppresses the signal. The signal is delivered
 * when the thread returns to user space from the probe, after the probed instruction and before the next
 * one; SIGSYS is a synchronous signal, which the kernel dequeues before any other pending one, so Go's
 * SIGURG preemption cannot run first. Without a tracer the Go runtime dies of SIGSYS: fail closed.
 *
 * error falls back to kill (GOHOOK_F_KILL_FALLBACK) whenever a part is missing: the process is not traced
 * (traced[tgid]: --pid targets gohook could not trace, processes of the binary gohook did not start; and the
 * thread itself, traced by gohook's tracer: not one made with CLONE_UNTRACED or traced by someone else), the
 * hook's function cannot report a denial (hook_deny), the hook is not a Go function call (a `syscall`
 * instruction, the sentinel), the return address is unknown, the thread blocks SIGSYS (the call would run
 * before the signal: a module that blocks it with rt_sigprocmask gains nothing), or the mark or the
 * signal fails.
 */
#ifndef GOHOOK_LIB_DENY_H
#define GOHOOK_LIB_DENY_H

#include "gohook.h"
#include "lib/config.h"
#include "lib/maps.h"

#if GOHOOK_ERROR_ACTION
/* Whether the current thread blocks SIGSYS (task_struct.blocked, its offset from BTF); unknown: blocked. */
static __always_inline int gohook_sigsys_blocked(void)
{
	__u64 blocked = ~0ULL;
	if (!GOHOOK_KO_TASK_BLOCKED)
		return 1;
	__u64 task = bpf_get_current_task();
	if (bpf_probe_read_kernel(&blocked, sizeof(blocked), (void *)(task + GOHOOK_KO_TASK_BLOCKED)))
		return 1;
	return (blocked >> (GOHOOK_SIGSYS - 1)) & 1;
}

/* Whether the current thread is traced by gohook's tracer (task_struct.ptrace has PT_PTRACED and the tracer,
 * task_struct.parent, is a thread of gohook's process): only then does a SIGSYS reach gohook first. A thread
 * made with CLONE_UNTRACED, or one that some other process traces, would let a handler of the program's
 * (signal.Notify) or another tracer swallow the signal and the call run. */
static __always_inline int gohook_traced_by_gohook(void)
{
	__u64 task = bpf_get_current_task(), parent = 0;
	__u32 ptrace = 0;
	__s32 tgid = 0;
	if (!GOHOOK_KO_TASK_PTRACE || !GOHOOK_KO_TASK_PARENT || !GOHOOK_KO_TASK_TGID || !GOHOOK_TRACER_TGID)
		return 0;
	if (bpf_probe_read_kernel(&ptrace, sizeof(ptrace), (void *)(task + GOHOOK_KO_TASK_PTRACE)) || !(ptrace & 1))
		return 0;
	if (bpf_probe_read_kernel(&parent, sizeof(parent), (void *)(task + GOHOOK_KO_TASK_PARENT)) || !parent)
		return 0;
	if (bpf_probe_read_kernel(&tgid, sizeof(tgid), (void *)(parent + GOHOOK_KO_TASK_TGID)))
		return 0;
	return tgid == GOHOOK_TRACER_TGID;
}

/* Hand the denied call c to the tracer: mark the thread, send it SIGSYS. 0 when done. */
static __always_inline int gohook_deny_error(struct gohook_call *c, __u64 ip, __u64 sp, __u64 bp, __u64 ret0,
					     __u64 bias)
{
	__u32 tgid = c->pid_tgid >> 32, tid = (__u32)c->pid_tgid, hook = c->hook_id;
	if (c->kind != GOHOOK_K_CALL && c->kind != GOHOOK_K_RAWCALL)
		return -1;
	__u32 *can = hook_deny.lookup(&hook);
	if (!can || !*can || !ret0 || !traced.lookup(&tgid) || gohook_sigsys_blocked() || !gohook_traced_by_gohook())
		return -1;
	struct gohook_denymark mark = {
		.resume_ip = ret0,
		.resume_sp = c->call_len ? sp : sp + 8,
		.bp = bp,
		.bias = bias,
		.probe_ip = ip,
		.time_ns = bpf_ktime_get_ns(),
		.hook_id = hook,
		.tgid = tgid,
	};
	if (deny_marks.update(&tid, &mark))
		return -1;
	if (bpf_send_signal_thread(GOHOOK_SIGSYS)) {
		deny_marks.delete(&tid);
		return -1;
	}
	return 0;
}
#endif

/* The decision for a violation of module in enforce mode (GOHOOK_DENY: killed, GOHOOK_ERROR, GOHOOK_AUDIT),
 * acted on here. c: the call (0 when unknown: kill); ip, sp, bp: the registers at the probe; ret0: the hooked
 * call's return address (0: unknown). */
static __always_inline __u8 gohook_deny(struct gohook_call *c, __u64 ip, __u64 sp, __u64 bp, __u64 ret0,
					__u64 bias, __u32 module, __u32 *flags)
{
	__u32 m = module;
	__u32 *act = module_action.lookup(&m);
	__u32 action = act ? *act : GOHOOK_ACT_KILL;
	if (action == GOHOOK_ACT_AUDIT)
		return GOHOOK_AUDIT;
#if GOHOOK_ERROR_ACTION
	if (action == GOHOOK_ACT_ERROR) {
		if (c && !gohook_deny_error(c, ip, sp, bp, ret0, bias)) {
			gohook_count(GOHOOK_C_ERRORS);
			return GOHOOK_ERROR;
		}
		*flags |= GOHOOK_F_KILL_FALLBACK;
	}
#endif
	if (bpf_send_signal(9)) {
		*flags |= GOHOOK_F_SIGNAL_FAILED;
		gohook_count(GOHOOK_C_SIGFAIL);
	} else {
		gohook_count(GOHOOK_C_DENIED);
	}
	return GOHOOK_DENY;
}

#endif /* GOHOOK_LIB_DENY_H */
