/* lib/decide.h: the shared handler's body: walk, decide, kill, report.
 *
 * gohook_run is what every hook point's entry program runs (inlined, or
 * through the tail call into the handler program of its kind), and the
 * sentinel too. It is compiled once per kind of caller (the hook kind and
 * direct_caller_only are constant arguments): each program holds only the
 * paths its kind can take, and the verifier explores no others.
 *   1. walk the stack (lib/walk.h), attributing each return address through
 *      the range table (lib/attribution.h);
 *   2. decide which module is charged with the call, by the hook's kind and
 *      the attribution mode; when the stack holds no non-std frame, the
 *      module of the thread's cgo call (sentinel) or the goroutine's
 *      provenance (lib/provenance.h) decides, else the call is unattributed;
 *   3. act on a violation in enforce mode by the module's action (lib/deny.h:
 *      SIGKILL, or the tracer's error return), before anything that can fail;
 *   4. leave the sentinel a mark of the hooked call;
 *   5. report the event through a ring buffer (gohook_fill_event,
 *      gohook_output: a full ring buffer only increments a counter;
 *      enforcement never depends on delivery).
 * The state of a decision lives on the program's stack (struct gohook_walk and
 * gohook_run's locals), never in shared memory, so a preempting run on the
 * same CPU cannot change it.
 *
 * A raw system call (kind RAWCALL: a call of syscall.Syscall6 and the like;
 * kind SITE: a `syscall` instruction of the module's own code) needs two
 * capabilities: `syscall` and the one of the system call number it issues
 * (gohook_call.cap2). It is allowed only when the module holds both, and it
 * is reported once per capability (the denied ones; with allowed calls
 * reported, both), so that the event names the capability that was denied
 * and learn mode learns both.
 */
#ifndef GOHOOK_LIB_DECIDE_H
#define GOHOOK_LIB_DECIDE_H

#include "gohook.h"
#include "lib/config.h"
#include "lib/maps.h"
#include "lib/walk.h"
#include "lib/args.h"
#include "lib/provenance.h"
#include "lib/deny.h"

/* A direct_caller_only hook called by std code (frame 0's innermost logical
 * frame is std): the standard library is the mechanism, the call is not
 * counted. Returns 1 when so. */
static __always_inline int gohook_ignored(struct gohook_walk *w, struct gohook_call *c, const __u32 kind,
					  const __u32 direct)
{
	if (!direct || (w->mods0 & 0xffff))
		return 0;
#if GOHOOK_SENTINEL
	if (kind == GOHOOK_K_CGOCALL) {
		/* a cgo call of the standard library: its C code is not judged */
		__u32 tid = (__u32)c->pid_tgid, std = GOHOOK_CGO_STD;
		cgo_calls.update(&tid, &std);
	}
#endif
	gohook_count(GOHOOK_C_IGNORED); /* called by std: the std lib is the mechanism */
	return 1;
}

/* The event's fields, but for pid, tid and goid (set by gohook_run), and the argument. The cgroup at the
 * time of the call: a killed process's cgroup is gone from /proc before user space reads the event. */
static __always_inline void gohook_fill_event(struct gohook_event *ev, struct gohook_call *c, struct gohook_walk *w,
					      __u32 module, __u32 flags, __u8 decision)
{
	ev->bias = w->bias;
	ev->cgroup_id = bpf_get_current_cgroup_id();
	ev->hook_id = c->hook_id;
	ev->capability = c->capability;
	ev->module = module;
	ev->decision = decision;
	ev->arg_kind = c->arg_kind;
	ev->pattern = 0;
	ev->flags = flags;
	gohook_read_arg(c, ev);
	ev->nframes = w->n; /* <= GOHOOK_MAX_FRAMES by construction */
}

/* The event into a ring buffer: `violations` for deny and audit, `events` for allowed calls. The whole
 * struct, a constant size: a size computed from nframes would make the verifier check everything after
 * the walk once per frame count (measured: 2-5x the verified instructions). */
static __always_inline void gohook_output(struct gohook_event *ev, __u8 decision)
{
	if (decision != GOHOOK_ALLOW) {
		if (violations.ringbuf_output(ev, sizeof(*ev), 0))
			gohook_count(GOHOOK_C_LOST);
	} else if (events.ringbuf_output(ev, sizeof(*ev), 0)) {
		gohook_count(GOHOOK_C_LOST);
	}
}

/* Whether the capabilities in need are all in module's mask. */
static __always_inline int gohook_allows(__u32 module, __u64 need)
{
	return (gohook_mask(module) & need) == need;
}

/* the argument check of argument-scoped grants (it reports through gohook_output) */
#include "lib/argmatch.h"

/* The shared handler: walk, decide, deny, report. bias: the load bias
 * (run-time address - static address); kind (GOHOOK_K_*) and direct
 * (direct_caller_only): the caller's, compile-time constants.
 *
 * What is a function of its own and what stays in this body was measured:
 * clang optimizes an __always_inline function (its loops above all) before
 * it inlines it, so a part moved into a function of its own can compile to
 * other instructions, and the verifier's work depends on every one of them.
 * The walk loop as a function verified in 18 % more instructions; the
 * decision's parts (charge, cgo and provenance fallbacks, kill), the
 * sentinel's marks and the event's ids as functions in up to 4 % more, or
 * less, depending on the mode. tests/bpf/test_verifier_budget.py loads every
 * variant and records its verified instructions (docs/performance.md). */
static __always_inline int gohook_run(void *ctx, struct gohook_regs *r, struct gohook_call *c, __u64 bias,
				      const __u32 kind, const __u32 direct)
{
	/* a raw system call: `syscall` and the capability of its number (when it has a rule) */
	const int raw = kind == GOHOOK_K_RAWCALL || kind == GOHOOK_K_SITE;
	__u32 zero = 0;
	struct gohook_event *ev = scratch.lookup(&zero);
	if (!ev)
		return 0;
	/* The ownership tag of the scratch slot until the report, in time_ns: the thread's pid_tgid (a run that
	 * preempts this one on this CPU is another thread's: a thread runs one program at a time). The time is
	 * taken at the report only: bpf_ktime_get_ns costs about 27 ns here, a fifth of an allowed call's run. */
	const __u64 tag = c->pid_tgid;
	ev->time_ns = tag;

	/* Walk. */
	struct gohook_stack *sc = stack_copy.lookup(&zero);
	struct gohook_walk w = {};
	w.bias = bias;
	/* (a raw call without a second capability has cap2 == capability: no branch here, which would
	 * split the verifier's states for the whole walk) */
	w.capbit = 1ULL << (c->capability & 63) | (raw ? 1ULL << (c->cap2 & 63) : 0);
	w.base = r->sp;
	__u64 pair[2] = {}; /* 16 bytes of scratch for the stack copy and ret0 */
	/* The stack copy, up front where the walk always goes past frame 0 (stack attribution); in caller
	 * attribution only once frame 0 has not decided (below): a call from module code, the common case,
	 * then costs one 16-byte read of [RSP] instead of the whole used stack (the copy was about 40 % of
	 * an allowed call's program run time, bench_probe). The sentinel's marks need only g.stack.hi. */
	if (GOHOOK_STACK_MODE)
		gohook_copy_stack(r, sc, pair);
	else if (GOHOOK_SENTINEL)
		gohook_stack_hi(r, sc, pair);
	else if (sc)
		sc->len = 0; /* (a per-CPU slot: a previous run's copy must not be read as this stack) */
	__u64 ret0 = gohook_ret0(&w, sc, r, c, pair);
	__u32 n = 0; /* frames recorded */
	if (!(w.flags & GOHOOK_F_STOP_FAULT)) {
		/* frame 0: ret0; for a `syscall` instruction (a site probe, or the
		 * sentinel) the instruction itself: its function may have no frame */
		__u64 first = kind == GOHOOK_K_SITE ? r->ip + 1 : ret0;
		/* sentinel: code outside the Go text (generated at run time, or C) may be
		 * a leaf without a frame: then [RSP] is its caller */
		if (kind == GOHOOK_K_SYSCALL && gohook_ip_in_text(r->ip, bias))
			first = r->ip;
		if (!gohook_frame(&w, ev, first, 0, 1)) {
			w.fp = r->bp;
			n = 1;
		}
	}
	if (gohook_ignored(&w, c, kind, direct))
		return 0;
	if (!GOHOOK_STACK_MODE && n && (!w.first || GOHOOK_REPORT_ALLOWED || !gohook_allows(w.first, w.capbit)))
		gohook_copy_stack(r, sc, pair);
	/* The rest of the chain, in two loops of one counter each, so that the verifier meets one state per
	 * frame index: while attributing (caller mode: up to the first module frame; stack mode: all of it),
	 * then, in caller mode, while only recording the frames above the deciding one (not needed when the
	 * call is allowed and not reported). A loop whose body branched on "decided yet?" would carry both
	 * kinds of state through every later frame, and the verifier checks a loop frame by frame. */
	if (n && (GOHOOK_STACK_MODE || !w.first)) {
		for (; n < GOHOOK_MAX_FRAMES; n++) {
			if (gohook_step(&w, ev, sc, n, 1))
				goto walked;
			if (!GOHOOK_STACK_MODE && w.first) {
				n++;
				break;
			}
		}
	}
	/* caller mode: the frames above the deciding one, for the report */
	int record = n && !GOHOOK_STACK_MODE && (GOHOOK_REPORT_ALLOWED || !gohook_allows(w.first, w.capbit));
	if (record) {
		for (; n < GOHOOK_MAX_FRAMES; n++) {
			if (gohook_step(&w, ev, sc, n, 0))
				goto walked;
		}
	}
	if (n == GOHOOK_MAX_FRAMES && (GOHOOK_STACK_MODE || record || !w.first))
		w.flags |= GOHOOK_F_TRUNCATED;
walked:
	w.n = n;

	__u32 tgid = c->pid_tgid >> 32, tid = (__u32)c->pid_tgid;
	/* The goroutine id, read only where it is needed (provenance, the sentinel's marks, the event): a
	 * read of user memory costs about 0.2 us, as much as the rest of an allowed call's decision. */
	__u64 goid = 0;
#if GOHOOK_SENTINEL
	goid = gohook_goid(r);
#endif
	__u32 flags = w.flags | (w.trusted ? GOHOOK_F_TRUSTED : 0), module;

	/* Decide: the module charged with the call, by the hook's kind and the attribution mode. */
	int allowed;
	w.direct = w.mods0 & 0xffff;
	if (GOHOOK_STACK_MODE && !direct && kind != GOHOOK_K_SITE && w.vmods) {
		/* the innermost module of that frame that lacks the capability */
#pragma unroll
		for (int j = 0; j < GOHOOK_RANGE_MODULES; j++) {
			__u32 m = (w.vmods >> (16 * j)) & 0xffff;
			if (m && !w.violator && !gohook_allows(m, w.capbit))
				w.violator = m;
		}
	}
	if (kind == GOHOOK_K_SITE) {
		flags |= GOHOOK_F_SITE;
		module = c->owner; /* the module's own instruction */
		allowed = gohook_allows(module, w.capbit);
	} else if (direct) {
		flags |= GOHOOK_F_DIRECT;
		module = w.direct;
		allowed = gohook_allows(module, w.capbit);
	} else if (GOHOOK_STACK_MODE && w.violator) {
		module = w.violator;
		allowed = 0;
	} else {
		module = w.first;
		allowed = GOHOOK_STACK_MODE || gohook_allows(module, w.capbit);
	}
	/* No module on the stack: the module of the thread's cgo call in progress (sentinel), else the
	 * goroutine's provenance (unless a trusted module's frame was on the stack), else none. */
#if GOHOOK_SENTINEL
	if (!module && kind == GOHOOK_K_SYSCALL) {
		__u32 *cm = cgo_calls.lookup(&tid);
		if (cm && *cm) {
			module = *cm;
			flags |= GOHOOK_F_CGO;
			allowed = gohook_allows(module, w.capbit);
		}
	}
#endif
#if GOHOOK_PROVENANCE
	if (!module && !direct && kind != GOHOOK_K_SITE && !w.trusted) {
		int from = 0;
		goid = gohook_goid(r);
		module = gohook_provenance(tgid, r->r14, goid, bias, &flags, &from);
		if (module)
			allowed = gohook_allows(module, w.capbit);
	}
#endif
	if (!module) {
		/* (the sentinel does not apply `unattributed: deny` to code outside the Go
		 * text: C code of the standard library's cgo calls is there too) */
		flags |= GOHOOK_F_UNATTRIBUTED;
		allowed = !GOHOOK_DENY_UNATTRIBUTED || (kind == GOHOOK_K_SYSCALL && !gohook_ip_in_text(r->ip, bias));
	}
	if (kind == GOHOOK_K_SYSCALL)
		flags |= GOHOOK_F_SENTINEL;

	/* A module that holds the capability for some arguments only: the argument check decides, kills and
	 * reports, in a program of its own (lib/argmatch.h), after the marks below. Hook points of Go
	 * functions in caller attribution (or direct_caller_only) only: a raw system call, a `syscall`
	 * instruction, the sentinel and stack attribution's several modules need the grant for any argument. */
	int scoped = 0;
#if GOHOOK_ARG_RULES && GOHOOK_SHARED_HANDLER
	if ((kind == GOHOOK_K_CALL || kind == GOHOOK_K_CGOCALL) && (direct || !GOHOOK_STACK_MODE) && !allowed && module)
		scoped = (gohook_scoped(module) & w.capbit) == w.capbit;
#endif

	/* Count, and kill a violator in enforce/kill mode, before anything that can fail. */
	gohook_count(kind == GOHOOK_K_SYSCALL ? GOHOOK_C_SYSCALLS : GOHOOK_C_HITS);
#if GOHOOK_LEARN_COUNTS
	{
		/* (a raw system call counts both of its capabilities) */
		__u64 key = (__u64)c->hook_id << 32 | (__u64)(module & 0xffff) << 8 | (c->capability & 0xff);
		learned_calls.increment(key);
		if (raw && c->cap2 != c->capability) {
			key = (__u64)c->hook_id << 32 | (__u64)(module & 0xffff) << 8 | (c->cap2 & 0xff);
			learned_calls.increment(key);
		}
	}
#endif
	__u8 decision = GOHOOK_ALLOW;
	if (!allowed && !scoped)
		decision = GOHOOK_ENFORCE ? gohook_deny(c, r->ip, r->sp, r->bp, ret0, bias, module, &flags) : GOHOOK_AUDIT;
	/* Leave the sentinel a mark of a hooked call: where its return address ret0 sits (relative to
	 * g.stack.hi: stack copies keep it) and the capabilities it checked; runtime.cgocall also records
	 * whose C code the thread runs. */
#if GOHOOK_SENTINEL
	if (kind != GOHOOK_K_SYSCALL) {
		/* this goroutine's system calls inside the hooked call are the hook's */
		struct gohook_gkey gk = {.tgid = tgid, .goid = goid};
		__u64 stack_hi = sc ? sc->hi : 0;
		struct gohook_marks *ms = stack_hi && goid ? marks.lookup(&gk) : 0;
		if (!ms && stack_hi && goid) {
			struct gohook_marks empty = {};
			marks.update(&gk, &empty);
			ms = marks.lookup(&gk);
		}
		if (ms && sc) {
			struct gohook_mark *slot = &ms->m[ms->n & (GOHOOK_MARKS - 1)];
			slot->sp = stack_hi - sc->mark_sp;
			slot->ret = sc->ret0;
			slot->capbit = w.capbit;
			ms->n++;
		}
		if (kind == GOHOOK_K_CGOCALL) {
			__u32 cm = module ? module : GOHOOK_CGO_STD;
			cgo_calls.update(&tid, &cm);
		}
	}
#endif
#if GOHOOK_ARG_RULES && GOHOOK_SHARED_HANDLER
	if (scoped) {
		ev->pid = tgid;
		ev->tid = tid;
		ev->goid = goid; /* (0: the argument check reads it when it reports) */
		gohook_fill_event(ev, c, &w, module, flags, GOHOOK_AUDIT);
		if (ev->time_ns == tag) {
			ev->time_ns = bpf_ktime_get_ns();
			gohook_tail_call((struct pt_regs *)ctx, GOHOOK_ARGCHECK_SLOT);
		}
		/* the slot was reused, or the tail call failed: the call is a violation (fail closed) */
		gohook_count(GOHOOK_C_NOHANDLER);
		__u32 fflags = 0;
		decision = GOHOOK_ENFORCE ? gohook_deny(c, r->ip, r->sp, r->bp, ret0, bias, module, &fflags) : GOHOOK_AUDIT;
		ev->flags |= fflags;
		ev->decision = decision;
		ev->flags |= GOHOOK_F_ARG_SCOPED;
		if (!ev->goid)
			ev->goid = gohook_goid(r);
		gohook_output(ev, decision);
		return 0;
	}
#endif
	if (allowed && !GOHOOK_REPORT_ALLOWED)
		return 0;

	/* Report. */
	if (!goid)
		goid = gohook_goid(r);
	ev->pid = tgid;
	ev->tid = tid;
	ev->goid = goid;
	/* a raw system call: one event per capability, each with its own decision (its module is never
	 * std: a direct hook called from std code is ignored, a site has its owner) */
	__u8 first = decision, second = decision;
	if (raw && c->cap2 != c->capability && module) {
		if (gohook_allows(module, 1ULL << (c->capability & 63)))
			first = GOHOOK_ALLOW;
		if (gohook_allows(module, 1ULL << (c->cap2 & 63)))
			second = GOHOOK_ALLOW;
	}
	gohook_fill_event(ev, c, &w, module, flags, first);
	if (ev->time_ns != tag) {
		gohook_count(GOHOOK_C_GARBLED);
		return 0;
	}
	ev->time_ns = bpf_ktime_get_ns();
	if (!raw || first != GOHOOK_ALLOW || GOHOOK_REPORT_ALLOWED)
		gohook_output(ev, first);
	if (raw && c->cap2 != c->capability && (second != GOHOOK_ALLOW || GOHOOK_REPORT_ALLOWED)) {
		ev->capability = c->cap2;
		ev->decision = second;
		gohook_output(ev, second);
	}
	return 0;
}

#endif /* GOHOOK_LIB_DECIDE_H */
