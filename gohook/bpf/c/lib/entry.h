/* lib/entry.h: what the entry programs are made of.
 *
 * One tiny entry program per hook point, generated from GOHOOK_HOOKS (one
 * HOOK / HOOK_CGO / HOOK_VALUE / HOOK_RAW / HOOK_RAW_STACK / SITE macro call per hook, rendered by
 * gohook/bpf/render.py), holds the hook's static probe address, capability
 * and argument registers as constants and hands them to the shared handler
 * (gohook_run, lib/decide.h) in a struct gohook_call. bcc 0.26 cannot
 * relocate BPF-to-BPF calls (nor bpf_loop callbacks), so "shared" means
 * either a tail call into the handler program of the hook's kind
 * (GOHOOK_SHARED_HANDLER=1, the default: the entry fills the per-CPU `calls`
 * slot and tail-calls the `handler` slot GOHOOK_HANDLER_SLOT(kind, direct);
 * each handler is verified once), or the handler inlined into every entry
 * program (0; each entry then costs tens of thousands of verified
 * instructions, ~45 ms to load).
 */
#ifndef GOHOOK_LIB_ENTRY_H
#define GOHOOK_LIB_ENTRY_H

#include "gohook.h"
#include "lib/config.h"
#include "lib/maps.h"
#include "lib/walk.h"
#include "lib/decide.h"
#include "lib/sentinel.h"
#include "lib/sysrules.h"

/* The gohook_call c of hook id, from the uprobe's registers: the argument registers of its ArgRead
 * (GOHOOK_REG of gohook.h; -1: none) and its capability, by its FlagRule when rreg >= 0. */
#define GOHOOK_FILL_CALL(c, ctx, id, probe_, cap, akind, areg0, areg1, rreg, rmask, cset, cclear, direct_, clen) \
	do {                                                                                    \
		(c)->pid_tgid = bpf_get_current_pid_tgid();                                     \
		(c)->a0 = GOHOOK_REG(ctx, areg0);                                               \
		(c)->a1 = GOHOOK_REG(ctx, areg1);                                               \
		(c)->probe = probe_;                                                            \
		(c)->hook_id = id;                                                              \
		(c)->capability = (rreg) < 0 ? (cap) : (GOHOOK_REG(ctx, rreg) & (rmask)) ? (cset) : (cclear); \
		(c)->arg_kind = akind;                                                          \
		(c)->direct = direct_;                                                          \
		(c)->kind = GOHOOK_K_CALL;                                                      \
		(c)->owner = 0;                                                                 \
		(c)->call_len = clen;                                                           \
		(c)->cap2 = (c)->capability; /* no second capability */                        \
	} while (0)

/* The registers the walk starts from, at a uprobe. */
static __always_inline struct gohook_regs gohook_uprobe_regs(struct pt_regs *ctx)
{
	struct gohook_regs r = {.ip = ctx->ip, .sp = ctx->sp, .bp = ctx->bp, .r14 = ctx->r14};
	return r;
}

#if GOHOOK_SHARED_HANDLER
/* An entry's gohook_call: the per-CPU slot the handler reads. */
#define GOHOOK_CALL(c)                                                                           \
	struct gohook_call *c = gohook_slot();                                                   \
	if (!c)                                                                                  \
		return 0;
/* Hand c over: tail-call the handler program of this kind (GOHOOK_HANDLER_SLOT). */
#define GOHOOK_DISPATCH(ctx, c, kind_, direct_)                                                  \
	gohook_tail_call(ctx, GOHOOK_HANDLER_SLOT(kind_, direct_));                              \
	gohook_count(GOHOOK_C_NOHANDLER); /* only if the tail call failed */                     \
	return 0;
#else
#define GOHOOK_CALL(c)                                                                           \
	struct gohook_call call_ = {};                                                           \
	struct gohook_call *c = &call_;
/* Run the handler, inlined. */
#define GOHOOK_DISPATCH(ctx, c, kind_, direct_)                                                  \
	struct gohook_regs r = gohook_uprobe_regs(ctx);                                          \
	return gohook_run(ctx, &r, c, ctx->ip - c->probe, kind_, direct_);
#endif

#define HOOK_KIND(id, kind_, probe_, cap, akind, areg0, areg1, rreg, rmask, cset, cclear, direct_, clen) \
	int gohook_hook_##id(struct pt_regs *ctx)                                                \
	{                                                                                        \
		int cap_ = (cap); /* < 0: not a capability call (HOOK_VALUE) */                 \
		if (cap_ < 0)                                                                    \
			return 0;                                                                \
		if ((rreg) >= 0 && ((GOHOOK_REG(ctx, rreg) & (rmask)) ? (cset) : (cclear)) < 0) \
			return 0; /* a flag rule's "no capability" outcome (-1) */               \
		GOHOOK_CALL(c)                                                                   \
		GOHOOK_FILL_CALL(c, ctx, id, probe_, cap_, akind, areg0, areg1, rreg, rmask, cset, cclear, direct_, clen); \
		c->kind = kind_;                                                                 \
		GOHOOK_DISPATCH(ctx, c, kind_, direct_)                                          \
	}

/* HOOK(id, probe, cap, arg_kind, arg_reg0, arg_reg1, rule_reg, rule_mask, cap_set, cap_clear, direct, call_len) */
#define HOOK(id, probe_, cap, akind, areg0, areg1, rreg, rmask, cset, cclear, direct_, clen)   \
	HOOK_KIND(id, GOHOOK_K_CALL, probe_, cap, akind, areg0, areg1, rreg, rmask, cset, cclear, direct_, clen)
/* runtime.cgocall (direct_caller_only): also tells the sentinel whose C code runs on the thread */
#define HOOK_CGO(id, probe_, cap, akind, areg0, areg1, rreg, rmask, cset, cclear, direct_, clen) \
	HOOK_KIND(id, GOHOOK_K_CGOCALL, probe_, cap, akind, areg0, areg1, rreg, rmask, cset, cclear, direct_, clen)

/* HOOK_RAW(id, probe, cap, nargs, direct, call_len): a call site of a raw system-call function
 * (syscall.Syscall, Syscall6, RawSyscall, RawSyscall6: func(trap, a1, ..., a<nargs>)) in module code. The
 * call needs cap (`syscall`) and, when sys_rules has a rule for the number trap (RAX, the first argument in
 * Go's register ABI), the capability of that system call with these arguments (cap2: files.write for
 * openat with O_CREAT); the rule's argument (the path) is reported, else trap itself. */
#define HOOK_RAW(id, probe_, cap, nargs, direct_, clen)                                          \
	int gohook_hook_##id(struct pt_regs *ctx)                                                \
	{                                                                                        \
		GOHOOK_CALL(c)                                                                   \
		GOHOOK_FILL_CALL(c, ctx, id, probe_, cap, GOHOOK_ARG_INT, 0, -1, -1, 0, 0, 0, direct_, clen); \
		c->kind = GOHOOK_K_RAWCALL;                                                      \
		__u64 args[8] = GOHOOK_GOSYSARGS(ctx, nargs);                                    \
		__u32 cap2_ = c->capability;                                                     \
		gohook_sysrule(args, (__u32)ctx->ax, GOHOOK_J_RAW, ctx->ip - (probe_), c, &cap2_);                                 \
		c->cap2 = cap2_;                                                                 \
		GOHOOK_DISPATCH(ctx, c, GOHOOK_K_RAWCALL, direct_)                               \
	}

/* HOOK_RAW_STACK(id, probe, cap, nargs, direct, call_len, off): HOOK_RAW at a call site of an ABI0 function
 * (Go's stack ABI: x/sys/unix's assembly reaches syscall.Syscall and the like through their ABI0 wrappers),
 * where RAX and the argument registers hold whatever the caller had in them: the number trap is the u64 at
 * RSP + off and argument k at RSP + off + 8k (off 0 at a CALL, 8 at a tail JMP from a called stub; the plan's
 * HookPoint.syscall_stack). The goroutine's stack there was just written by the caller; should it be
 * unreadable, the number is ~0 (no rule: the call needs only cap) and is reported as such. */
#define GOHOOK_RAW_NOTRAP (~0ULL)
#define HOOK_RAW_STACK(id, probe_, cap, nargs, direct_, clen, off)                               \
	int gohook_hook_##id(struct pt_regs *ctx)                                                \
	{                                                                                        \
		GOHOOK_CALL(c)                                                                   \
		GOHOOK_FILL_CALL(c, ctx, id, probe_, cap, GOHOOK_ARG_INT, -1, -1, -1, 0, 0, 0, direct_, clen); \
		c->kind = GOHOOK_K_RAWCALL;                                                      \
		__u64 trap_ = GOHOOK_RAW_NOTRAP;                                                 \
		__u64 args[8] = {};                                                              \
		if (bpf_probe_read_user(&trap_, sizeof(trap_), (void *)(ctx->sp + (off))) ||      \
		    bpf_probe_read_user(args, 8 * ((nargs) > 3 ? 6 : 3), (void *)(ctx->sp + (off) + 8))) \
			trap_ = GOHOOK_RAW_NOTRAP;                                               \
		c->a0 = trap_;                                                                   \
		__u32 cap2_ = c->capability;                                                     \
		gohook_sysrule(args, (__u32)trap_, GOHOOK_J_RAW, ctx->ip - (probe_), c, &cap2_); \
		c->cap2 = cap2_;                                                                 \
		GOHOOK_DISPATCH(ctx, c, GOHOOK_K_RAWCALL, direct_)                               \
	}

/* A `syscall` instruction of module `owner`: the call needs `syscall` (GOHOOK_SYSCALL_CAPBIT) and the
 * capability of the system call number in RAX (sys_rules); one without either is not counted. */
#if GOHOOK_SENTINEL
#define SITE(id, probe_, owner_)                                                                 \
	int gohook_hook_##id(struct pt_regs *ctx)                                                \
	{                                                                                        \
		GOHOOK_CALL(c)                                                                   \
		__u64 args[8] = GOHOOK_SYSARGS(ctx);                                             \
		GOHOOK_FILL_CALL(c, ctx, id, probe_, 0, GOHOOK_ARG_NONE, -1, -1, -1, 0, 0, 0, 0, 0); \
		__u32 cap_ = __builtin_ctzll(GOHOOK_SYSCALL_CAPBIT | 1ULL << 63);                \
		if (!gohook_sysrule(args, (__u32)ctx->ax, GOHOOK_J_RAW, ctx->ip - (probe_), c, &cap_) && \
		    !GOHOOK_SYSCALL_CAPBIT)                                                     \
			return 0; /* neither `syscall` nor a rule: not counted */                \
		c->capability = GOHOOK_SYSCALL_CAPBIT ? __builtin_ctzll(GOHOOK_SYSCALL_CAPBIT | 1ULL << 63) : cap_; \
		c->cap2 = cap_;                                                                  \
		c->kind = GOHOOK_K_SITE;                                                         \
		c->owner = owner_;                                                               \
		GOHOOK_DISPATCH(ctx, c, GOHOOK_K_SITE, 0)                                        \
	}
#endif

/* HOOK_VALUE(id, probe, rsp_offset, default_cap, direct, call_len, VCASE(value, cap)...): the
 * capability is chosen by the u64 at RSP + rsp_offset (a value table on a stack argument:
 * syscall.rawSyscallNoError's system call number); other values get default_cap, or with -1 are
 * not capability calls and pass uncounted. The goroutine's own stack at RSP is always mapped: an
 * unreadable slot passes too. */
#define VCASE(v, cap_) case (v): return (cap_);
#define HOOK_VALUE(id, probe_, off, dflt, direct_, clen, ...)                                    \
	static __always_inline int gohook_value_##id(struct pt_regs *ctx)                        \
	{                                                                                        \
		__u64 v = 0;                                                                     \
		if (bpf_probe_read_user(&v, sizeof(v), (void *)(ctx->sp + (off))))              \
			return -1;                                                               \
		switch (v) { __VA_ARGS__ }                                                       \
		return (dflt);                                                                   \
	}                                                                                        \
	HOOK_KIND(id, GOHOOK_K_CALL, probe_, gohook_value_##id(ctx), GOHOOK_ARG_NONE, -1, -1, -1, 0, 0, 0, direct_, clen)

/* HOOK_DEST(id, probe, cap, dest_reg, len_reg, direct, call_len): a send whose destination (struct sockaddr *
 * in dest_reg, its length in len_reg; the reported argument) reaches a peer without connect(2): cap, except
 * no destination (NULL: a connected socket) and the kernel over netlink (AF_NETLINK, pid 0, no groups, length
 * exactly GOHOOK_SOCKADDR_NL_LEN: syscall.NetlinkRIB under net.Interfaces), which are not counted. An
 * unreadable destination counts. */
#define GOHOOK_AF_NETLINK 16
#define GOHOOK_SOCKADDR_NL_LEN 12
struct gohook_sockaddr_nl {
	__u16 family;
	__u16 pad;
	__u32 pid;
	__u32 groups;
};
static __always_inline int gohook_dest_cap(__u64 sa, __u32 len, int cap) /* len: a _Socklen (uint32) */
{
	struct gohook_sockaddr_nl nl = {};
	if (!sa)
		return -1;
	if (len != GOHOOK_SOCKADDR_NL_LEN || bpf_probe_read_user(&nl, sizeof(nl), (void *)sa))
		return cap;
	return nl.family == GOHOOK_AF_NETLINK && !nl.pid && !nl.groups ? -1 : cap;
}
#define HOOK_DEST(id, probe_, cap, dreg, lreg, direct_, clen)                                   \
	HOOK_KIND(id, GOHOOK_K_CALL, probe_, gohook_dest_cap(GOHOOK_REG(ctx, dreg), GOHOOK_REG(ctx, lreg), cap), \
		  GOHOOK_ARG_SOCKADDR, dreg, lreg, -1, 0, 0, 0, direct_, clen)

#endif /* GOHOOK_LIB_ENTRY_H */
