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
	__u64 capbit;
	__u32 n;       /* frames recorded */
	__u32 flags;   /* GOHOOK_F_STOP_*, GOHOOK_F_TRUSTED */
	__u32 first;   /* innermost non-std module */
	__u32 violator; /* stack mode: innermost module without the capability */
	__u64 vmods;   /* stack mode: modules of the innermost frame whose range lacks the capability */
	__u64 mods0;   /* modules of frame 0 */
	__u32 direct;  /* module of the innermost logical frame at frame 0 */
	__u32 stop;    /* 1: the walk is over */
	__u64 base;    /* run-time address of stack_copy byte 0 (the entry RSP) */
};

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
#if GOHOOK_PROVENANCE
	__u32 *pf = range_flags.lookup(&idx);
	w->flags |= (pf && (*pf & GOHOOK_RANGE_TRUSTED)) ? GOHOOK_F_TRUSTED : 0;
#endif
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
 * touches memory past the top of small goroutine stacks.) Returns g.stack.hi,
 * 0 when the g or its stack bounds could not be read. pair: 16 bytes of
 * scratch (the caller's: gohook_ret0 uses them next; one buffer for both
 * keeps the compiled program as it was when they were one function). */
static __always_inline __u64 gohook_copy_stack(struct gohook_regs *r, struct gohook_stack *sc, __u64 *pair)
{
	__u64 stack_hi = 0;
	if (sc)
		sc->len = 0;
	if (sc && r->r14 && !bpf_probe_read_user(pair, 16, (void *)r->r14) &&
	    pair[0] <= r->sp && r->sp < pair[1]) {
		stack_hi = pair[1];
		__u64 len = pair[1] - r->sp;
		if (len > GOHOOK_STACK_COPY)
			len = GOHOOK_STACK_COPY;
		len &= 2 * GOHOOK_STACK_COPY - 1; /* for the verifier: len <= GOHOOK_STACK_COPY already */
		if (len > GOHOOK_STACK_COPY)
			len = GOHOOK_STACK_COPY;
		if (len >= 16 && !bpf_probe_read_user(sc->bytes, len, (void *)r->sp))
			sc->len = len;
	}
	return stack_hi;
}

/* The return address of the probed call, ret0: the one at [RSP]; at a call
 * site the address after the call instruction. 0 when [RSP] could not be
 * read (GOHOOK_F_STOP_FAULT). *mark_sp gets the stack address that holds it
 * (for the sentinel's marks). pair: 16 bytes of scratch. */
static __always_inline __u64 gohook_ret0(struct gohook_walk *w, struct gohook_stack *sc, struct gohook_regs *r,
					 struct gohook_call *c, __u64 *pair, __u64 *mark_sp)
{
	__u64 ret0 = 0;
	*mark_sp = r->sp;
	if (c->call_len) {
		ret0 = r->ip + c->call_len;
		*mark_sp = r->sp - 8; /* where the call will put ret0 */
	} else if (gohook_read_pair(w, sc, r->sp, pair)) {
		w->flags |= GOHOOK_F_STOP_FAULT;
	} else {
		ret0 = pair[0];
	}
	return ret0;
}

#endif /* GOHOOK_LIB_WALK_H */
