/* gohook.bpf.c: per-module capability enforcement at uprobes on Go functions.
 *
 * One tiny entry program per hook point (generated from GOHOOK_HOOKS) holds
 * the hook's static probe address, capability and argument registers as
 * constants and hands them to the shared handler. bcc 0.26 cannot relocate
 * BPF-to-BPF calls (nor bpf_loop callbacks), so "shared" means either a tail
 * call into one handler program, verified once (GOHOOK_SHARED_HANDLER=1, the
 * default), or the handler inlined into every entry program (0; each entry
 * then costs ~50k verified instructions, ~45 ms to load). The handler
 *   1. computes the load bias (ctx->ip - static probe address: the kernel sets
 *      ip to the probe address before running uprobe programs), so PIE
 *      binaries work in any number of processes without registration;
 *   2. walks the goroutine stack: the return address at [RSP] (the probe sits
 *      on the `jbe` after the entry stack check, or on `push rbp`, where RSP
 *      and RBP still hold the entry state), then the frame-pointer chain
 *      ret = [fp+8], fp = [fp]; it stops at fp == 0, at runtime.goexit, at an
 *      address outside the Go text, or after GOHOOK_MAX_FRAMES frames;
 *   3. maps each return address (minus 1, like the runtime) to the modules of
 *      its logical frames through the range table, and decides;
 *   4. sends SIGKILL on a violation in enforce/kill mode, before anything
 *      that can fail; then
 *   5. reports the event through the ring buffer (a full ring buffer only
 *      increments a counter: enforcement never depends on delivery).
 *
 * Every constant comes from gohook/bpf/render.py as a -D define (the
 * defaults below describe an empty plan). Compiled by bcc.
 */
#include <uapi/linux/ptrace.h>
#include "gohook.h"

/* --- plan constants (rendered by gohook/bpf/render.py) ------------------ */
#ifndef GOHOOK_TEXT_START
#define GOHOOK_TEXT_START 0ULL /* static vaddr of the Go text (runtime.text) */
#endif
#ifndef GOHOOK_TEXT_SIZE
#define GOHOOK_TEXT_SIZE 0ULL /* text_end - text_start */
#endif
#ifndef GOHOOK_GOEXIT_START
#define GOHOOK_GOEXIT_START 0ULL /* static vaddr of runtime.goexit */
#endif
#ifndef GOHOOK_GOEXIT_SIZE
#define GOHOOK_GOEXIT_SIZE 0ULL /* 0: no goexit stop */
#endif
#ifndef GOHOOK_GOID_OFFSET
#define GOHOOK_GOID_OFFSET 0 /* offset of goid in runtime.g; 0: unknown */
#endif
#ifndef GOHOOK_NRANGES
#define GOHOOK_NRANGES 1 /* entries of range_start / range_mods */
#endif
#ifndef GOHOOK_NPAGES
#define GOHOOK_NPAGES 1 /* text pages; page_first has GOHOOK_NPAGES + 1 entries */
#endif
#ifndef GOHOOK_SEARCH_STEPS
#define GOHOOK_SEARCH_STEPS 1 /* binary-search steps: ceil(log2(most ranges in one page + 1)) */
#endif
#ifndef GOHOOK_NMODULES
#define GOHOOK_NMODULES 0 /* module ids 1..GOHOOK_NMODULES */
#endif
#ifndef GOHOOK_KILL
#define GOHOOK_KILL 0 /* 1: a violation sends SIGKILL (enforce mode, action kill) */
#endif
#ifndef GOHOOK_STACK_MODE
#define GOHOOK_STACK_MODE 0 /* 0: nearest non-std module decides; 1: every non-std module must allow */
#endif
#ifndef GOHOOK_DENY_UNATTRIBUTED
#define GOHOOK_DENY_UNATTRIBUTED 0 /* 1: a call with no non-std frame is a violation */
#endif
#ifndef GOHOOK_REPORT_ALLOWED
#define GOHOOK_REPORT_ALLOWED 1 /* 1: allowed calls are reported too (learn mode, event streams) */
#endif
#ifndef GOHOOK_RINGBUF_PAGES
#define GOHOOK_RINGBUF_PAGES 256 /* ring buffer size in pages (power of two) */
#endif
#ifndef GOHOOK_STACK_COPY
#define GOHOOK_STACK_COPY 4096 /* goroutine stack bytes copied in one read (power of two >= 16) */
#endif
#ifndef GOHOOK_SHARED_HANDLER
#define GOHOOK_SHARED_HANDLER 1 /* 1: entries tail-call one handler program; 0: handler inlined in each */
#endif
#ifndef GOHOOK_HOOKS
#define GOHOOK_HOOKS /* HOOK(id, probe, cap, arg_kind, arg_reg0, arg_reg1, rule_reg, rule_mask, cap_set, cap_clear, direct) ... */
#endif

#define GOHOOK_EVENT_HEADER_SIZE ((__u64) & ((struct gohook_event *)0)->frames)

/* --- maps ----------------------------------------------------------------- */
BPF_RINGBUF_OUTPUT(events, GOHOOK_RINGBUF_PAGES);
BPF_PERCPU_ARRAY(counters, __u64, GOHOOK_NCOUNTERS);
BPF_PERCPU_ARRAY(scratch, struct gohook_event, 1); /* the event being built (too big for the stack) */
struct gohook_stack {
	__u64 len;  /* valid bytes; read back from the map so the verifier does not track it per path */
	__u8 bytes[GOHOOK_STACK_COPY];
};
BPF_PERCPU_ARRAY(stack_copy, struct gohook_stack, 1); /* [RSP, min(g.stack.hi, RSP + size)) of the caller */
BPF_ARRAY(range_start, __u32, GOHOOK_NRANGES);     /* sorted range starts, offsets from text start */
BPF_ARRAY(range_mods, __u64, GOHOOK_NRANGES);      /* 4 x u16 module ids per range, innermost first */
BPF_ARRAY(range_deny, __u64, GOHOOK_NRANGES);      /* capabilities some module of the range lacks */
BPF_ARRAY(page_first, __u32, GOHOOK_NPAGES + 1);   /* text page -> index of the range holding its start */
BPF_ARRAY(module_mask, __u64, GOHOOK_NMODULES + 1); /* module id -> allowed capability bits */

/* What one entry program hands the shared handler. */
struct gohook_call {
	__u64 pid_tgid;   /* who made the call: checked by the handler */
	__u64 a0, a1;     /* the argument registers named by the hook's ArgRead */
	__u64 probe;      /* static vaddr of the probe */
	__u32 hook_id;
	__u32 capability; /* bit index, after the FlagRule */
	__u32 arg_kind;
	__u32 direct;     /* direct_caller_only */
};

#if GOHOOK_SHARED_HANDLER
BPF_PROG_ARRAY(handler, 1);             /* slot 0: gohook_handler, filled by the loader */
BPF_PERCPU_ARRAY(calls, struct gohook_call, 1); /* entry -> handler, across the tail call */
#endif

/* Stack-walk state: on the handler's stack, never in shared memory, so a
 * preempting run on the same CPU cannot change a decision. */
struct gohook_walk {
	__u64 fp;      /* next frame pointer (runtime address) */
	__u64 bias;
	__u64 capbit;
	__u32 n;       /* frames recorded */
	__u32 flags;   /* GOHOOK_F_STOP_* */
	__u32 first;   /* innermost non-std module */
	__u32 violator; /* stack mode: innermost module without the capability */
	__u64 vmods;   /* stack mode: modules of the innermost frame whose range lacks the capability */
	__u64 mods0;   /* modules of frame 0 */
	__u32 direct;  /* module of the innermost logical frame at frame 0 */
	__u32 stop;    /* 1: the walk is over */
	__u64 base;    /* run-time address of stack_copy byte 0 (the entry RSP) */
};

static __always_inline void gohook_count(__u32 which)
{
	__u64 *v = counters.lookup(&which);
	if (v)
		*v += 1;
}

static __always_inline __u64 gohook_mask(__u32 module)
{
	__u64 *m = module_mask.lookup(&module);
	return m ? *m : 0;
}

/* Index of the range holding text offset off: the page index bounds a short
 * binary search for the last range starting at or before off. */
static __always_inline __u32 gohook_lookup(__u32 off)
{
	__u32 page = off >> 12, next = page + 1;
	__u32 *plo = page_first.lookup(&page);
	__u32 *phi = page_first.lookup(&next);
	if (!plo || !phi)
		return 0; /* range 0 */
	__u32 lo = *plo, hi = *phi;
#pragma unroll
	for (int i = 0; i < GOHOOK_SEARCH_STEPS; i++) {
		if (lo >= hi)
			break;
		__u32 mid = lo + ((hi - lo + 1) >> 1);
		__u32 *start = range_start.lookup(&mid);
		if (!start)
			return 0;
		if (*start <= off)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

/* Record one return address and attribute it; returns 1 when the walk ends here. */
static __always_inline int gohook_frame(struct gohook_walk *w, struct gohook_event *ev, __u64 ret)
{
	__u64 pc = ret - w->bias - 1; /* inside the call instruction */
	__u64 off = pc - GOHOOK_TEXT_START;
	if (off >= GOHOOK_TEXT_SIZE) {
		w->flags |= GOHOOK_F_STOP_OUTSIDE;
		return 1;
	}
	if (pc - GOHOOK_GOEXIT_START < GOHOOK_GOEXIT_SIZE) {
		w->flags |= GOHOOK_F_STOP_GOEXIT;
		return 1;
	}
	ev->frames[w->n & (GOHOOK_MAX_FRAMES - 1)] = ret;
	w->n++;
	if (!GOHOOK_STACK_MODE && w->first)
		return 0; /* caller mode: decided, the rest is only recorded */
	/* Few branches per frame: each path through this body is a state the
	 * verifier carries through the rest of the walk. */
	__u32 idx = gohook_lookup((__u32)off);
	__u64 *pm = range_mods.lookup(&idx);
	__u64 mods = pm ? *pm : 0;
	if (w->n == 1)
		w->mods0 = mods;
	/* slot 0 is the innermost logical frame (maybe std); slots 1.. are non-std */
	__u32 f = mods & 0xffff;
	if (!f)
		f = (mods >> 16) & 0xffff;
	if (!w->first)
		w->first = f;
	if (GOHOOK_STACK_MODE && !w->vmods) {
		__u64 *pd = range_deny.lookup(&idx);
		if (pd && (*pd & w->capbit))
			w->vmods = mods;
	}
	if (!GOHOOK_REPORT_ALLOWED && !GOHOOK_STACK_MODE && w->first && (gohook_mask(w->first) & w->capbit))
		return 1; /* allowed and not reported: the rest of the stack is not needed */
	return 0;
}

/* 16 bytes of user stack at addr: from the copy when it holds them, else one read. */
static __always_inline int gohook_read_pair(struct gohook_walk *w, struct gohook_stack *sc, __u64 addr,
					    __u64 *pair)
{
	__u64 off = addr - w->base;
	__u64 len = sc ? sc->len : 0;
	if (len >= 16 && off <= len - 16) {
		off &= GOHOOK_STACK_COPY - 1;
		if (off <= GOHOOK_STACK_COPY - 16) {
			pair[0] = *(__u64 *)(sc->bytes + off);
			pair[1] = *(__u64 *)(sc->bytes + off + 8);
			return 0;
		}
	}
	/* Read into tmp, then copy: both paths leave pair[] as spilled scalars, so
	 * the verifier sees one state per loop iteration, not two. */
	__u64 tmp[2];
	if (bpf_probe_read_user(tmp, sizeof(tmp), (void *)addr))
		return -1;
	pair[0] = tmp[0];
	pair[1] = tmp[1];
	return 0;
}

/* One step of the frame-pointer chain: ret = [fp+8], fp = [fp]. Returns 1 to stop. */
static __always_inline int gohook_step(struct gohook_walk *w, struct gohook_event *ev, struct gohook_stack *sc)
{
	__u64 pair[2];
	if (w->fp == 0) {
		w->flags |= GOHOOK_F_STOP_FP_ZERO;
		return 1;
	}
	if (gohook_read_pair(w, sc, w->fp, pair)) {
		w->flags |= GOHOOK_F_STOP_FAULT;
		return 1;
	}
	if (gohook_frame(w, ev, pair[1]))
		return 1;
	w->fp = pair[0];
	return 0;
}

/* The argument named by the hook's ArgRead, into ev->arg. */
static __always_inline void gohook_read_arg(struct gohook_call *c, struct gohook_event *ev)
{
	__u64 ptr = c->a0, len = c->a1;
	ev->arg_len = 0;
	if (c->arg_kind == GOHOOK_ARG_INT) {
		*(__u64 *)ev->arg = c->a0;
		ev->arg_len = 8;
		return;
	}
	if (c->arg_kind == GOHOOK_ARG_CSTRING) {
		long n = bpf_probe_read_user_str(ev->arg, GOHOOK_ARG_MAX, (void *)ptr);
		if (n < 0)
			ev->flags |= GOHOOK_F_ARG_FAULT;
		else if (n > 0)
			ev->arg_len = n - 1;
		return;
	}
	if (c->arg_kind == GOHOOK_ARG_STRING_SLICE0) {
		__u64 hdr[2];
		if (len == 0)
			return;
		if (bpf_probe_read_user(hdr, sizeof(hdr), (void *)ptr)) {
			ev->flags |= GOHOOK_F_ARG_FAULT;
			return;
		}
		ptr = hdr[0];
		len = hdr[1];
	} else if (c->arg_kind != GOHOOK_ARG_STRING && c->arg_kind != GOHOOK_ARG_SOCKADDR) {
		return;
	}
	if (len > GOHOOK_ARG_MAX - 1) {
		len = GOHOOK_ARG_MAX - 1;
		ev->flags |= GOHOOK_F_ARG_TRUNCATED;
	}
	len &= GOHOOK_ARG_MAX - 1;
	if (len == 0)
		return;
	if (bpf_probe_read_user(ev->arg, len, (void *)ptr)) {
		ev->flags |= GOHOOK_F_ARG_FAULT;
		return;
	}
	ev->arg_len = len;
}

/* The shared handler: walk, decide, kill, report. */
static __always_inline int gohook_run(struct pt_regs *ctx, struct gohook_call *c)
{
	__u32 zero = 0;
	struct gohook_event *ev = scratch.lookup(&zero);
	if (!ev)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	ev->time_ns = now; /* also the ownership tag of the scratch slot */

	struct gohook_stack *sc = stack_copy.lookup(&zero);
	struct gohook_walk w = {};
	w.bias = ctx->ip - c->probe;
	w.capbit = 1ULL << (c->capability & 63);

	/* One read of the goroutine stack from RSP up to g.stack.hi (R14 holds
	 * the g; stack.lo and stack.hi are its first two words in every Go
	 * release): a probe read costs about as much as walking 16 KiB of copy. */
	__u64 pair[2] = {};
	w.base = ctx->sp;
	if (sc)
		sc->len = 0;
	if (sc && ctx->r14 && !bpf_probe_read_user(pair, sizeof(pair), (void *)ctx->r14) &&
	    pair[0] <= ctx->sp && ctx->sp < pair[1]) {
		__u64 len = pair[1] - ctx->sp;
		if (len > GOHOOK_STACK_COPY)
			len = GOHOOK_STACK_COPY;
		len &= 2 * GOHOOK_STACK_COPY - 1; /* for the verifier: len <= GOHOOK_STACK_COPY already */
		if (len > GOHOOK_STACK_COPY)
			len = GOHOOK_STACK_COPY;
		if (len >= 16 && !bpf_probe_read_user(sc->bytes, len, (void *)ctx->sp))
			sc->len = len;
	}

	/* Frame 0: the return address at [RSP]. */
	if (gohook_read_pair(&w, sc, ctx->sp, pair))
		w.flags |= GOHOOK_F_STOP_FAULT;
	else if (!gohook_frame(&w, ev, pair[0]))
		w.fp = ctx->bp;
	else
		w.stop = 1;
	if (c->direct && !(w.mods0 & 0xffff)) {
		gohook_count(GOHOOK_C_IGNORED); /* called by std: the std lib is the mechanism */
		return 0;
	}
	if (w.n && !w.stop && !(w.flags & GOHOOK_F_STOP_FAULT)) {
		int i;
		for (i = 0; i < GOHOOK_MAX_FRAMES - 1; i++) {
			if (gohook_step(&w, ev, sc))
				break;
		}
		if (i == GOHOOK_MAX_FRAMES - 1)
			w.flags |= GOHOOK_F_TRUNCATED;
	}

	/* Decide. */
	__u32 flags = w.flags, module;
	int allowed;
	w.direct = w.mods0 & 0xffff;
	if (GOHOOK_STACK_MODE && w.vmods) {
		/* the innermost module of that frame that lacks the capability */
#pragma unroll
		for (int j = 0; j < GOHOOK_RANGE_MODULES; j++) {
			__u32 m = (w.vmods >> (16 * j)) & 0xffff;
			if (m && !w.violator && !(gohook_mask(m) & w.capbit))
				w.violator = m;
		}
	}
	if (c->direct) {
		flags |= GOHOOK_F_DIRECT;
		module = w.direct;
		allowed = (gohook_mask(module) & w.capbit) != 0;
	} else if (GOHOOK_STACK_MODE && w.violator) {
		module = w.violator;
		allowed = 0;
	} else {
		module = w.first;
		allowed = GOHOOK_STACK_MODE || (gohook_mask(module) & w.capbit) != 0;
	}
	if (!module) {
		flags |= GOHOOK_F_UNATTRIBUTED;
		allowed = !GOHOOK_DENY_UNATTRIBUTED;
	}
	gohook_count(GOHOOK_C_HITS);
	__u8 decision = GOHOOK_ALLOW;
	if (!allowed) {
		decision = GOHOOK_KILL ? GOHOOK_DENY : GOHOOK_AUDIT;
		if (GOHOOK_KILL) {
			if (bpf_send_signal(9)) {
				flags |= GOHOOK_F_SIGNAL_FAILED;
				gohook_count(GOHOOK_C_SIGFAIL);
			} else {
				gohook_count(GOHOOK_C_DENIED);
			}
		}
	}
	if (allowed && !GOHOOK_REPORT_ALLOWED)
		return 0;

	/* Report. */
	ev->pid = c->pid_tgid >> 32;
	ev->tid = (__u32)c->pid_tgid;
	ev->goid = 0;
	if (GOHOOK_GOID_OFFSET && ctx->r14)
		bpf_probe_read_user(&ev->goid, sizeof(ev->goid), (void *)(ctx->r14 + GOHOOK_GOID_OFFSET));
	ev->bias = w.bias;
	ev->hook_id = c->hook_id;
	ev->capability = c->capability;
	ev->module = module;
	ev->decision = decision;
	ev->arg_kind = c->arg_kind;
	ev->reserved = 0;
	ev->flags = flags;
	gohook_read_arg(c, ev);
	ev->nframes = w.n; /* <= GOHOOK_MAX_FRAMES by construction */
	if (ev->time_ns != now) {
		gohook_count(GOHOOK_C_GARBLED);
		return 0;
	}
	/* The whole struct, a constant size: a size computed from nframes would
	 * make the verifier check everything after the walk once per frame count
	 * (measured: 2-5x the verified instructions). */
	if (events.ringbuf_output(ev, sizeof(*ev), 0))
		gohook_count(GOHOOK_C_LOST);
	return 0;
}

/* --- entry programs ------------------------------------------------------- */

/* Go's integer argument registers, by index (gohook.plan.GO_ARG_REGS); -1: none. */
#define GOHOOK_REG(ctx, i)                                                                      \
	((i) == 0 ? (ctx)->ax : (i) == 1 ? (ctx)->bx : (i) == 2 ? (ctx)->cx : (i) == 3 ? (ctx)->di : \
	 (i) == 4 ? (ctx)->si : (i) == 5 ? (ctx)->r8 : (i) == 6 ? (ctx)->r9 : (i) == 7 ? (ctx)->r10 : \
	 (i) == 8 ? (ctx)->r11 : 0)

#define GOHOOK_FILL_CALL(c, ctx, id, probe_, cap, akind, areg0, areg1, rreg, rmask, cset, cclear, direct_) \
	do {                                                                                    \
		(c)->pid_tgid = bpf_get_current_pid_tgid();                                     \
		(c)->a0 = GOHOOK_REG(ctx, areg0);                                               \
		(c)->a1 = GOHOOK_REG(ctx, areg1);                                               \
		(c)->probe = probe_;                                                            \
		(c)->hook_id = id;                                                              \
		(c)->capability = (rreg) < 0 ? (cap) : (GOHOOK_REG(ctx, rreg) & (rmask)) ? (cset) : (cclear); \
		(c)->arg_kind = akind;                                                          \
		(c)->direct = direct_;                                                          \
	} while (0)

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

/* The handler program: the loader puts it in handler[0]. Under a preemptible
 * kernel another uprobe run on this CPU could reuse the per-CPU slot between
 * the entry's write and this read; the pid_tgid check catches that (counted
 * as garbled; the call is let through). */
int gohook_handler(struct pt_regs *ctx)
{
	struct gohook_call *slot = gohook_slot();
	if (!slot)
		return 0;
	struct gohook_call c = *slot;
	if (c.pid_tgid != bpf_get_current_pid_tgid()) {
		gohook_count(GOHOOK_C_GARBLED);
		return 0;
	}
	return gohook_run(ctx, &c);
}

#define HOOK(id, probe_, cap, akind, areg0, areg1, rreg, rmask, cset, cclear, direct_)         \
	int gohook_hook_##id(struct pt_regs *ctx)                                                \
	{                                                                                        \
		struct gohook_call *c = gohook_slot();                                           \
		if (!c)                                                                          \
			return 0;                                                                \
		GOHOOK_FILL_CALL(c, ctx, id, probe_, cap, akind, areg0, areg1, rreg, rmask, cset, cclear, direct_); \
		gohook_tail_call(ctx);                                                           \
		gohook_count(GOHOOK_C_NOHANDLER); /* only if the tail call failed */             \
		return 0;                                                                        \
	}
#else
#define HOOK(id, probe_, cap, akind, areg0, areg1, rreg, rmask, cset, cclear, direct_)         \
	int gohook_hook_##id(struct pt_regs *ctx)                                                \
	{                                                                                        \
		struct gohook_call c = {};                                                       \
		GOHOOK_FILL_CALL(&c, ctx, id, probe_, cap, akind, areg0, areg1, rreg, rmask, cset, cclear, direct_); \
		return gohook_run(ctx, &c);                                                      \
	}
#endif

GOHOOK_HOOKS
