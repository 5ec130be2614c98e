/* gohook.bpf.c: per-module capability enforcement at uprobes on Go functions.
 *
 * The program entry points; their parts are in lib/, by concern:
 *   lib/config.h       the plan constants (-D defines) and their defaults
 *   lib/maps.h         the maps and the structs they hold
 *   lib/attribution.h  the range table: a return address -> the modules of its logical frames
 *   lib/walk.h         the frame-pointer stack walk
 *   lib/args.h         the capture of the hooked call's argument
 *   lib/provenance.h   goroutine ids and goroutine provenance
 *   lib/deny.h         what a violation does: kill, audit, or an error return through the tracer
 *   lib/decide.h       the shared handler gohook_run: walk, decide, deny, report
 *   lib/sysrules.h     the capability of a system call number (sentinel, sites, raw calls, guard)
 *   lib/guard.h        per-system-call tracepoints against tampering and escapes (always on)
 *   lib/sentinel.h     the system-call sentinel's parts
 *   lib/entry.h        the entry-program macros (HOOK, HOOK_CGO, HOOK_VALUE, HOOK_RAW, SITE)
 * and gohook.h is what the program shares with user space (gohook/bpf/abi.py).
 *
 * Every hook point gets an entry program (GOHOOK_HOOKS) that hands its
 * constants to the handler program of its kind (GOHOOK_HANDLERS), which
 *   1. computes the load bias (ctx->ip - static probe address: the kernel sets
 *      ip to the probe address before running uprobe programs), so PIE
 *      binaries work in any number of processes without registration;
 *   2. walks the goroutine stack: the return address at [RSP] (the probe sits
 *      on the `jbe` after the entry stack check, or on `push rbp`, where RSP
 *      and RBP still hold the entry state), then the frame-pointer chain
 *      ret = [fp+8], fp = [fp]; it stops at fp == 0, at runtime.goexit, at an
 *      address outside the Go text, or after GOHOOK_MAX_FRAMES frames;
 *   3. maps each return address (minus 1, like the runtime) to the modules of
 *      its logical frames through the range table, and decides; when the
 *      stack holds no non-std frame at all, the goroutine's provenance
 *      decides (GOHOOK_PROVENANCE=1: the CREATED programs below);
 *   4. sends SIGKILL on a violation in enforce/kill mode, before anything
 *      that can fail; then
 *   5. reports the event through the ring buffer (a full ring buffer only
 *      increments a counter: enforcement never depends on delivery).
 * With GOHOOK_SENTINEL=1 a raw_syscalls:sys_enter program judges the
 * capability system calls no hook point covered (lib/sentinel.h).
 *
 * Every constant comes from gohook/bpf/render.py as a -D define (the
 * defaults in lib/config.h describe an empty plan). Compiled by bcc, which
 * rewrites map accesses only in the main file: render.py therefore inlines
 * the lib/ headers here (gohook.bpf.render.program_source) before bcc sees
 * the text.
 */
#include <uapi/linux/ptrace.h>
#include "gohook.h"
#include "lib/config.h"
#include "lib/maps.h"
#include "lib/attribution.h"
#include "lib/walk.h"
#include "lib/args.h"
#include "lib/provenance.h"
#include "lib/deny.h"
#include "lib/decide.h"
#include "lib/sysrules.h"
#include "lib/sentinel.h"
#include "lib/guard.h"
#include "lib/fileopen.h"
#include "lib/entry.h"

#if GOHOOK_SHARED_HANDLER
/* The handler programs, one per (kind, direct_caller_only) the plan's hook points have (GOHOOK_HANDLERS,
 * rendered by gohook/bpf/render.py): the loader puts HANDLER(kind, direct) in slot
 * GOHOOK_HANDLER_SLOT(kind, direct) of `handler`. Each runs gohook_run compiled for its constants, so the
 * verifier explores only the paths of that kind (one handler for every kind would verify the walk once
 * per kind and direct_caller_only together, past the kernel's limit with `unattributed: deny`). Under a
 * preemptible kernel another uprobe run on this CPU could reuse the per-CPU slot between the entry's
 * write and this read; the pid_tgid check catches that (counted as garbled; the call is let through). */
static __always_inline int gohook_handle(struct pt_regs *ctx, const __u32 kind, const __u32 direct)
{
	struct gohook_call *slot = gohook_slot();
	if (!slot)
		return 0;
	struct gohook_call c = *slot;
	if (c.pid_tgid != bpf_get_current_pid_tgid()) {
		gohook_count(GOHOOK_C_GARBLED);
		return 0;
	}
	struct gohook_regs r = gohook_uprobe_regs(ctx);
	return gohook_run(ctx, &r, &c, ctx->ip - c.probe, kind, direct);
}

#define HANDLER(kind_, direct_)                                                                  \
	int gohook_handler_##kind_##_##direct_(struct pt_regs *ctx) { return gohook_handle(ctx, kind_, direct_); }
GOHOOK_HANDLERS

#if GOHOOK_ARG_RULES && GOHOOK_SHARED_HANDLER
/* The argument check of argument-scoped grants (lib/argmatch.h), slot GOHOOK_ARGCHECK_SLOT of `handler`. */
int gohook_argcheck(struct pt_regs *ctx)
{
	return gohook_argcheck_run(ctx);
}

/* Its glob match (lib/argmatch.h), slot GOHOOK_GLOBMATCH_SLOT. */
int gohook_globmatch(struct pt_regs *ctx)
{
	return gohook_globmatch_run(ctx);
}
#endif
#endif

#if GOHOOK_ERROR_ACTION
/* Loaded, never attached: whether this kernel's verifier lets a uprobe program write its registers (upstream
 * from 6.18 with commit 7384893d970e). The loader records the answer (Attached.deny_path); this one refuses it
 * ("invalid bpf_context access"), and action error returns through gohook's tracer (lib/deny.h). */
int gohook_ctxwrite(struct pt_regs *ctx)
{
	ctx->ax = (__u64)-1;
	return 0;
}
#endif

/* One entry program per hook point: HOOK, HOOK_CGO, HOOK_VALUE, HOOK_RAW, SITE (lib/entry.h). */
GOHOOK_HOOKS

#if GOHOOK_PROVENANCE
/* One program per place where goroutines are created (lib/provenance.h). */
#define CREATED(index, probe_)                                                                   \
	int gohook_created_##index(struct pt_regs *ctx) { return gohook_created(ctx, probe_); }
GOHOOK_CREATED
#endif

#if GOHOOK_SENTINEL
/* On the RET instruction(s) of runtime.cgocall: the thread's C code is done. */
int gohook_cgocall_ret(struct pt_regs *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	cgo_calls.delete(&tid);
	return 0;
}

/* raw_syscalls:sys_enter, as a raw tracepoint (lib/sentinel.h). */
int gohook_sentinel(struct bpf_raw_tracepoint_args *ctx)
{
	return gohook_syscall(ctx);
}
#endif

#if GOHOOK_SENTINEL || GOHOOK_FILEOPEN || GOHOOK_GUARD
/* sched:sched_process_exec / sched_process_exit: the process no longer runs the binary (`targets`, which
 * the sentinel, the file-open judge and the guard judge). */
int gohook_forget(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if ((__u32)pid_tgid == tgid)
		targets.delete(&tgid);
	return 0;
}
#endif

#if GOHOOK_FILEOPEN
/* syscalls:sys_exit_{open,openat,openat2,creat}: the capability the opened file carries (lib/fileopen.h). */
int gohook_fileopen(struct gohook_sys_exit_args *ctx)
{
	return gohook_fileopen_run(ctx);
}
#endif

#if GOHOOK_GUARD
/* syscalls:sys_enter_<name> of each guarded system call (lib/guard.h). */
int gohook_guard(struct gohook_sys_enter_args *ctx)
{
	return gohook_guard_run(ctx);
}
#endif
