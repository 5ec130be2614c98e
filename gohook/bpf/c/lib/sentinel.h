/* lib/sentinel.h: the system-call sentinel's parts, and tamper resistance.
 *
 * The sentinel (GOHOOK_SENTINEL=1) is a raw_syscalls:sys_enter program
 * (gohook_sentinel in gohook.bpf.c) limited to the processes of the binary
 * (registered in `targets` by the "created" probe, which every Go process
 * hits before its package initialization). For a capability system call
 * (sys_rules, gohook_sysrule of lib/sysrules.h) that no hook point covers (no
 * `marks` entry of this goroutine for an enclosing hooked call that checked
 * the same capability: gohook_run leaves them), it walks the user stack from the saved registers
 * with the same range table, falls back to the module of the cgo call in progress on
 * the thread (cgo_calls, set by the runtime.cgocall hook and cleared at
 * cgocall's RET), then to the goroutine's provenance, and decides like a hook
 * (gohook_run). So code that makes its system calls itself (a raw
 * `syscall` instruction, assembly, C through cgo) cannot get around the hook
 * points. A tracepoint cannot stop a system call: a SIGKILL sent here lands
 * when the call returns, so the call itself has happened. The module's own
 * `syscall` instructions are therefore also probed one by one (kind SITE,
 * lib/entry.h: the uprobe sits on the instruction and kills before it).
 */
#ifndef GOHOOK_LIB_SENTINEL_H
#define GOHOOK_LIB_SENTINEL_H

#include "gohook.h"
#include "lib/config.h"
#include "lib/maps.h"
#include "lib/walk.h"
#include "lib/provenance.h"
#include "lib/decide.h"
#include "lib/sysrules.h"

#if GOHOOK_SENTINEL || GOHOOK_GUARD
/* The runtime's own system-call functions (runtime.open for the huge-page
 * size at start-up, ...): EXEMPT(start, end) pairs of static vaddrs. */
#define EXEMPT(start, end) || (pc - (start) < (end) - (start))
static __always_inline int gohook_exempt(__u64 pc)
{
	return 0 GOHOOK_EXEMPT;
}

/* The system-call argument registers saved at system-call entry (kregs: the kernel's pt_regs). */
static __always_inline void gohook_sys_args(struct pt_regs *kregs, __u64 *args)
{
	bpf_probe_read_kernel(&args[0], 8, &kregs->di);
	bpf_probe_read_kernel(&args[1], 8, &kregs->si);
	bpf_probe_read_kernel(&args[2], 8, &kregs->dx);
	bpf_probe_read_kernel(&args[3], 8, &kregs->r10);
	bpf_probe_read_kernel(&args[4], 8, &kregs->r8);
	bpf_probe_read_kernel(&args[5], 8, &kregs->r9);
}

/* Judge system call nr with arguments args of a process of the binary (load bias `bias`) at its entry, as
 * judge `judge` (GOHOOK_J_SENTINEL or GOHOOK_J_GUARD), from the user registers saved in kregs. In one piece, like
 * gohook_run's walk loop: the marks loop as a function of its own changes the compiled code (see
 * gohook_run). */
static __always_inline int gohook_judge_syscall(struct pt_regs *kregs, __u64 *args, __u32 nr, __u64 bias,
						const __u32 judge)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;
	/* the user registers, one field at a time, and only for a capability call: a whole pt_regs would not
	 * fit the BPF stack, and most calls the guard sees (the runtime's mmap, madvise) need nothing */
	__u64 ip = 0, sp = 0, bp = 0, r14 = 0;
	struct gohook_call c = {};
	if (!gohook_sysrule(args, nr, judge, bias, &c, &c.capability))
		return 0;
	c.cap2 = c.capability;
	bpf_probe_read_kernel(&ip, 8, &kregs->ip);
	bpf_probe_read_kernel(&sp, 8, &kregs->sp);
	bpf_probe_read_kernel(&bp, 8, &kregs->bp);
	bpf_probe_read_kernel(&r14, 8, &kregs->r14);
	/* the runtime's own system calls, and those of the C code of the standard library's cgo calls */
	if (gohook_exempt(ip - bias - 1)) {
		gohook_count(GOHOOK_C_EXEMPT);
		return 0;
	}
#if GOHOOK_SENTINEL
	__u32 *cm = cgo_calls.lookup(&tid);
	if (cm && *cm == GOHOOK_CGO_STD) {
		gohook_count(GOHOOK_C_EXEMPT);
		return 0;
	}
	/* inside a hooked call of this goroutine that checked this capability: the hook's, while its mark's
	 * return address is still in place above RSP. Only the same capability: a raw system-call hook
	 * (syscall.Syscall6) checked `syscall` and the capability of the number it passed, so an allowed
	 * `syscall` covers no other system call. (Marks are kept only with the sentinel: without it the guard
	 * judges a hooked call's system call again, from the same stack, to the same verdict.) */
	__u64 capbit = 1ULL << (c.capability & 63);
	struct gohook_gkey gk = {.tgid = tgid};
	if (GOHOOK_GOID_OFFSET && r14)
		gk.goid = gohook_read_u64(r14 + GOHOOK_GOID_OFFSET);
	struct gohook_marks *ms = gk.goid ? marks.lookup(&gk) : 0;
	__u64 hi = ms ? gohook_read_u64(r14 + 8) : 0; /* g.stack.hi */
	if (ms && hi) {
#pragma unroll
		for (int i = 0; i < GOHOOK_MARKS; i++) {
			struct gohook_mark *m = &ms->m[i];
			__u64 at = hi - m->sp;
			if (m->sp && sp <= at && (m->capbit & capbit) &&
			    gohook_read_u64(at) == m->ret) {
				gohook_count(GOHOOK_C_COVERED);
				return 0;
			}
		}
	}
#endif
	c.pid_tgid = pid_tgid;
	c.hook_id = GOHOOK_SYSCALL_HOOK | nr;
	c.kind = GOHOOK_K_SYSCALL;
	struct gohook_regs r = {.ip = ip, .sp = sp, .bp = bp, .r14 = r14};
	return gohook_run((void *)0, &r, &c, bias, GOHOOK_K_SYSCALL, 0); /* (no tail call from here) */
}
#endif

#if GOHOOK_SENTINEL && GOHOOK_COMPAT_CAP >= 0 && defined(GOHOOK_KO_TASK_TI_STATUS)
#define GOHOOK_TS_COMPAT 0x0002 /* arch/x86/include/asm/thread_info.h: the current system call is an i386 one */
/* A system call through the i386 table, number nr (i386 numbering): tamper, attributed like any other
 * (never exempt: the runtime makes none). Reported with hook id GOHOOK_SYSCALL_HOOK | GOHOOK_SYSCALL_I386 | nr. */
static __always_inline int gohook_judge_compat(struct pt_regs *kregs, __u32 nr, __u64 bias)
{
	__u64 ip = 0, sp = 0, bp = 0, r14 = 0;
	bpf_probe_read_kernel(&ip, 8, &kregs->ip);
	bpf_probe_read_kernel(&sp, 8, &kregs->sp);
	bpf_probe_read_kernel(&bp, 8, &kregs->bp);
	bpf_probe_read_kernel(&r14, 8, &kregs->r14);
	struct gohook_call c = {};
	c.pid_tgid = bpf_get_current_pid_tgid();
	c.capability = GOHOOK_COMPAT_CAP;
	c.cap2 = GOHOOK_COMPAT_CAP;
	c.hook_id = GOHOOK_SYSCALL_HOOK | GOHOOK_SYSCALL_I386 | (nr & 0xffff);
	c.kind = GOHOOK_K_SYSCALL;
	struct gohook_regs r = {.ip = ip, .sp = sp, .bp = bp, .r14 = r14};
	return gohook_run((void *)0, &r, &c, bias, GOHOOK_K_SYSCALL, 0); /* (no tail call from here) */
}
#endif

#if GOHOOK_SENTINEL
/* The sentinel program's body (raw_syscalls:sys_enter as a raw tracepoint: args[0] is the user pt_regs,
 * args[1] the system call number). */
static __always_inline int gohook_syscall(struct bpf_raw_tracepoint_args *ctx)
{
	/* Every system call of every process comes here while the sentinel is
	 * attached: the rule test (one array lookup) goes first, the process
	 * test (a hash lookup) second, the register reads only after both. */
	__u32 nr = (__u32)ctx->args[1];
#if GOHOOK_COMPAT_CAP >= 0 && defined(GOHOOK_KO_TASK_TI_STATUS)
	/* A system call through the i386 table (`int 0x80`, `sysenter` from 64-bit code: TS_COMPAT): its
	 * number is not an x86-64 one, the guard's tracepoints do not fire for it and uprobes cannot sit on
	 * `int`: only this program sees it. It needs tamper, whatever it calls. Read before the rule test, so
	 * that no i386 number is taken for the x86-64 call of the same number. */
	__u32 status = 0;
	bpf_probe_read_kernel(&status, sizeof(status), (void *)(bpf_get_current_task() + GOHOOK_KO_TASK_TI_STATUS));
	if (status & GOHOOK_TS_COMPAT) {
		__u32 tgid = bpf_get_current_pid_tgid() >> 32;
		__u64 *bias = targets.lookup(&tgid);
		if (!bias)
			return 0;
		return gohook_judge_compat((struct pt_regs *)ctx->args[0], nr, *bias);
	}
#endif
	struct gohook_sysrule *rule = sys_rules.lookup(&nr);
	if (!rule || !(rule->judges & GOHOOK_J_SENTINEL))
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 *bias = targets.lookup(&tgid);
	if (!bias)
		return 0;
	struct pt_regs *kregs = (struct pt_regs *)ctx->args[0];
	__u64 args[8] = {};
	gohook_sys_args(kregs, args);
	return gohook_judge_syscall(kregs, args, nr, *bias, GOHOOK_J_SENTINEL);
}
#endif

#endif /* GOHOOK_LIB_SENTINEL_H */
