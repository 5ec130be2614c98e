/* lib/entry.h: what the entry programs are made of.
 *
 * One tiny entry program per hook point, generated from GOHOOK_HOOKS (one
 * HOOK / HOOK_CGO / HOOK_VALUE / SITE macro call per hook, rendered by
 * gohook/bpf/render.py), holds the hook's static probe address, capability
 * and argument registers as constants and hands them to the shared handler
 * (gohook_run, lib/decide.h) in a struct gohook_call. bcc 0.26 cannot
 * relocate BPF-to-BPF calls (nor bpf_loop callbacks), so "shared" means
 * either a tail call into one handler program, verified once
 * (GOHOOK_SHARED_HANDLER=1, the default: the entry fills the per-CPU `calls`
 * slot and tail-calls gohook_handler), or the handler inlined into every
 * entry program (0; each entry then costs ~50k verified instructions, ~45 ms
 * to load).
 */
#ifndef GOHOOK_LIB_ENTRY_H
#define GOHOOK_LIB_ENTRY_H

#include "gohook.h"
#include "lib/config.h"
#include "lib/maps.h"
#include "lib/walk.h"
#include "lib/decide.h"
#include "lib/sentinel.h"

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
	} while (0)

/* The registers the walk starts from, at a uprobe. */
static __always_inline struct gohook_regs gohook_uprobe_regs(struct pt_regs *ctx)
{
	struct gohook_regs r = {.ip = ctx->ip, .sp = ctx->sp, .bp = ctx->bp, .r14 = ctx->r14};
	return r;
}

#if GOHOOK_SHARED_HANDLER
/* bcc rewrites map calls only outside macros: the HOOK macro goes through these. */
static __always_inline struct gohook_call *gohook_slot(void)
{
	__u32 zero = 0;
	return calls.lookup(&zero);
}

static __always_inline void gohook_tail_call(struct pt_regs *ctx)
{
	handler.call(ctx, 0);
}

#define GOHOOK_ENTRY_END(ctx)                                                                    \
	gohook_tail_call(ctx);                                                                   \
	gohook_count(GOHOOK_C_NOHANDLER); /* only if the tail call failed */                     \
	return 0;

#define HOOK_KIND(id, kind_, probe_, cap, akind, areg0, areg1, rreg, rmask, cset, cclear, direct_, clen) \
	int gohook_hook_##id(struct pt_regs *ctx)                                                \
	{                                                                                        \
		int cap_ = (cap); /* < 0: not a capability call (HOOK_VALUE) */                 \
		if (cap_ < 0)                                                                    \
			return 0;                                                                \
		struct gohook_call *c = gohook_slot();                                           \
		if (!c)                                                                          \
			return 0;                                                                \
		GOHOOK_FILL_CALL(c, ctx, id, probe_, cap_, akind, areg0, areg1, rreg, rmask, cset, cclear, direct_, clen); \
		c->kind = kind_;                                                                 \
		GOHOOK_ENTRY_END(ctx)                                                            \
	}

/* A `syscall` instruction of module `owner`: the capability comes from the
 * system call number in RAX (not a capability system call: not counted). */
#if GOHOOK_SENTINEL
#define SITE(id, probe_, owner_)                                                                 \
	int gohook_hook_##id(struct pt_regs *ctx)                                                \
	{                                                                                        \
		struct gohook_call *c = gohook_slot();                                           \
		if (!c)                                                                          \
			return 0;                                                                \
		__u64 args[8] = GOHOOK_SYSARGS(ctx);                                             \
		GOHOOK_FILL_CALL(c, ctx, id, probe_, 0, GOHOOK_ARG_NONE, -1, -1, -1, 0, 0, 0, 0, 0); \
		if (!gohook_sysrule(args, (__u32)ctx->ax, c))                                    \
			return 0;                                                                \
		c->kind = GOHOOK_K_SITE;                                                         \
		c->owner = owner_;                                                               \
		GOHOOK_ENTRY_END(ctx)                                                            \
	}
#endif
#else
#define HOOK_KIND(id, kind_, probe_, cap, akind, areg0, areg1, rreg, rmask, cset, cclear, direct_, clen) \
	int gohook_hook_##id(struct pt_regs *ctx)                                                \
	{                                                                                        \
		int cap_ = (cap); /* < 0: not a capability call (HOOK_VALUE) */                 \
		if (cap_ < 0)                                                                    \
			return 0;                                                                \
		struct gohook_call c = {};                                                       \
		GOHOOK_FILL_CALL(&c, ctx, id, probe_, cap_, akind, areg0, areg1, rreg, rmask, cset, cclear, direct_, clen); \
		c.kind = kind_;                                                                  \
		struct gohook_regs r = gohook_uprobe_regs(ctx);                                  \
		return gohook_run(&r, &c, ctx->ip - c.probe);                                    \
	}
#if GOHOOK_SENTINEL
#define SITE(id, probe_, owner_)                                                                 \
	int gohook_hook_##id(struct pt_regs *ctx)                                                \
	{                                                                                        \
		struct gohook_call c = {};                                                       \
		__u64 args[8] = GOHOOK_SYSARGS(ctx);                                             \
		GOHOOK_FILL_CALL(&c, ctx, id, probe_, 0, GOHOOK_ARG_NONE, -1, -1, -1, 0, 0, 0, 0, 0); \
		if (!gohook_sysrule(args, (__u32)ctx->ax, &c))                                   \
			return 0;                                                                \
		c.kind = GOHOOK_K_SITE;                                                          \
		c.owner = owner_;                                                                \
		struct gohook_regs r = gohook_uprobe_regs(ctx);                                  \
		return gohook_run(&r, &c, ctx->ip - c.probe);                                    \
	}
#endif
#endif

/* HOOK(id, probe, cap, arg_kind, arg_reg0, arg_reg1, rule_reg, rule_mask, cap_set, cap_clear, direct, call_len) */
#define HOOK(id, probe_, cap, akind, areg0, areg1, rreg, rmask, cset, cclear, direct_, clen)   \
	HOOK_KIND(id, GOHOOK_K_CALL, probe_, cap, akind, areg0, areg1, rreg, rmask, cset, cclear, direct_, clen)
/* runtime.cgocall (direct_caller_only): also tells the sentinel whose C code runs on the thread */
#define HOOK_CGO(id, probe_, cap, akind, areg0, areg1, rreg, rmask, cset, cclear, direct_, clen) \
	HOOK_KIND(id, GOHOOK_K_CGOCALL, probe_, cap, akind, areg0, areg1, rreg, rmask, cset, cclear, direct_, clen)
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

#endif /* GOHOOK_LIB_ENTRY_H */
