/* lib/walk.h: the frame-pointer stack walk.
 *
 * From the registers of the probe (or of the system call), frame 0 is the
 * return address at [RSP] (or the address after the call instruction at a
 * call site, or the `syscall` instruction itself), then the frame-pointer
 * chain ret = [fp+8], fp = [fp]. The walk stops at fp == 0, at
 * runtime.goexit, at an address outside the Go text, at a frame it cannot
 * read, or after GOHOOK_MAX_FRAMES frames; it records every return address
 * in the event and attributes each through the range table
 * (lib/attribution.h) until the frame that decides. The goroutine's stack is
 * copied in one read first (gohook_copy_stack): the chain is then read from
 * the copy, and from user memory only beyond it.
 */
#ifndef GOHOOK_LIB_WALK_H
#define GOHOOK_LIB_WALK_H

#include "gohook.h"
#include "lib/config.h"
#include "lib/maps.h"
#include "lib/attribution.h"

/* The registers the walk starts from: the uprobe's, or the user registers
 * saved at system-call entry (sentinel). */
struct gohook_regs {
	__u64 ip, sp, bp, r14;
};

/* Stack-walk state: on the handler's stack, never in shared memory, so a
 * preempting run on the same CPU cannot change a decision. */
struct gohook_walk {
	__u64 fp;      /* next frame pointer (runtime address) */
	__u64 bias;
	__u64 capbit;  /* the capabilities the call needs (two for a raw system call) */
	__u32 n;       /* frames recorded */
	__u32 flags;   /* GOHOOK_F_STOP_* */
	__u32 first;   /* innermost non-std module */
	__u32 violator; /* stack mode: innermost module without the capability */
	__u64 vmods;   /* stack mode: modules of the innermost frame whose range lacks the capability */
	__u64 mods0;   /* modules of frame 0 */
	__u32 direct;  /* module of the innermost logical frame at frame 0 */
	__u32 trusted; /* 1: a trusted module's frame was on the stack (GOHOOK_F_TRUSTED) */
	__u64 base;    /* run-time address of stack_copy byte 0 (the entry RSP) */
};

/* Record return address ret as frame idx and, with attr, attribute it; returns 1 when the walk ends here
 * (ret is outside the Go text or in runtime.goexit: not recorded). */
static __always_inline int gohook_frame(struct gohook_walk *w, struct gohook_event *ev, __u64 ret, __u32 idx,
					const int attr)
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
	ev->frames[idx & (GOHOOK_MAX_FRAMES - 1)] = ret;
	if (!attr)
		return 0;
	/* Few branches per frame: each path through this body is a state the
	 * verifier carries through the rest of the walk. */
	__u32 range = gohook_lookup((__u32)off);
	__u64 *pm = range_mods.lookup(&range);
	__u64 mods = pm ? *pm : 0;
	if (idx == 0)
		w->mods0 = mods;
	/* slot 0 is the innermost logical frame (maybe std); slots 1.. are non-std */
	__u32 f = mods & 0xffff;
	if (!f)
		f = (mods >> 16) & 0xffff;
	if (!w->first)
		w->first = f;
#if GOHOOK_PROVENANCE
	__u32 *pf = range_flags.lookup(&range);
	/* not a flag: a flag tested after the walk would make the verifier tell apart the walk's every way
	 * of ending (the GOHOOK_F_STOP_* bits beside it), and check the rest of the program once for each */
	w->trusted |= pf && (*pf & GOHOOK_RANGE_TRUSTED);
#endif
	if (GOHOOK_STACK_MODE && !w->vmods) {
		__u64 *pd = range_deny.lookup(&range);
		if (pd && (*pd & w->capbit))
			w->vmods = mods;
	}
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

/* One step of the frame-pointer chain: ret = [fp+8] becomes frame idx (attributed with attr), fp = [fp].
 * Returns 1 to stop. */
static __always_inline int gohook_step(struct gohook_walk *w, struct gohook_event *ev, struct gohook_stack *sc,
				       __u32 idx, const int attr)
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
	if (gohook_frame(w, ev, pair[1], idx, attr))
		return 1;
	w->fp = pair[0];
	return 0;
}

/* Whether the instruction at ip (a run-time address; bias: the load bias) is in the Go text. */
static __always_inline int gohook_ip_in_text(__u64 ip, __u64 bias)
{
	return ip - bias - 1 - GOHOOK_TEXT_START < GOHOOK_TEXT_SIZE;
}

/* One read of the goroutine stack from RSP up to g.stack.hi into sc (R14 holds
 * the g; stack.lo and stack.hi are its first two words in every Go
 * release): a probe read costs about as much as walking 16 KiB of copy.
 * (A fixed-size copy without reading g first verified in half the
 * instructions but made the HTTP service's hooks 100 ns dearer: it
 * touches memory past the top of small goroutine stacks.) sc->hi gets
 * g.stack.hi, 0 when the g or its stack bounds could not be read. pair: 16
 * bytes of scratch. The bounds are tested on differences, not on RSP itself:
 * a test of RSP would narrow its range in the verifier's state, and the walk
 * would then be verified once for each outcome. */
static __always_inline void gohook_copy_stack(struct gohook_regs *r, struct gohook_stack *sc, __u64 *pair)
{
	if (!sc)
		return;
	sc->len = 0;
	sc->hi = 0;
	/* (R14 == 0, outside Go code, fails the read) */
	if (bpf_probe_read_user(pair, 16, (void *)r->r14))
		return;
	__u64 above = r->sp - pair[0], size = pair[1] - pair[0];
	if (above >= size) /* RSP is not on this goroutine's stack */
		return;
	sc->hi = pair[1];
	__u64 len = size - above; /* g.stack.hi - RSP */
	if (len > GOHOOK_STACK_COPY)
		len = GOHOOK_STACK_COPY;
	len &= 2 * GOHOOK_STACK_COPY - 1; /* for the verifier: len <= GOHOOK_STACK_COPY already */
	if (len > GOHOOK_STACK_COPY)
		len = GOHOOK_STACK_COPY;
	if (len >= 16 && !bpf_probe_read_user(sc->bytes, len, (void *)r->sp))
		sc->len = len;
}

/* gohook_copy_stack's bounds alone: sc->hi gets g.stack.hi (0 when the g or its stack bounds could not be
 * read, or RSP is not on that stack), sc->len 0 (nothing copied). */
static __always_inline void gohook_stack_hi(struct gohook_regs *r, struct gohook_stack *sc, __u64 *pair)
{
	if (!sc)
		return;
	sc->len = 0;
	sc->hi = 0;
	if (bpf_probe_read_user(pair, 16, (void *)r->r14))
		return;
	if (r->sp - pair[0] < pair[1] - pair[0])
		sc->hi = pair[1];
}

/* The return address of the probed call, ret0: the one at [RSP]; at a call
 * site the address after the call instruction. 0 when [RSP] could not be
 * read (GOHOOK_F_STOP_FAULT). sc->ret0 and sc->mark_sp get it and the stack
 * address that holds it (for the sentinel's marks, after the walk). pair: 16
 * bytes of scratch. */
static __always_inline __u64 gohook_ret0(struct gohook_walk *w, struct gohook_stack *sc, struct gohook_regs *r,
					 struct gohook_call *c, __u64 *pair)
{
	__u64 ret0 = 0, mark_sp = r->sp;
	if (c->call_len) {
		ret0 = r->ip + c->call_len;
		mark_sp = r->sp - 8; /* where the call will put ret0 */
	} else if (gohook_read_pair(w, sc, r->sp, pair)) {
		w->flags |= GOHOOK_F_STOP_FAULT;
	} else {
		ret0 = pair[0];
	}
	if (sc) {
		sc->ret0 = ret0;
		sc->mark_sp = mark_sp;
	}
	return ret0;
}

#endif /* GOHOOK_LIB_WALK_H */
