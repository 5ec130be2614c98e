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
 *      its logical frames through the range table, and decides; when the
 *      stack holds no non-std frame at all, the goroutine's provenance
 *      decides (below);
 *   4. sends SIGKILL on a violation in enforce/kill mode, before anything
 *      that can fail; then
 *   5. reports the event through the ring buffer (a full ring buffer only
 *      increments a counter: enforcement never depends on delivery).
 *
 * Goroutine provenance (GOHOOK_PROVENANCE=1). A goroutine started by a
 * module, directly (`go os.Remove(p)`) or through the standard library on
 * its behalf (net/http's dialing goroutine), may run with no module frame on
 * its stack. runtime.newproc switches to the thread's system stack, where
 * runtime.newproc.func1 gets the new g from runtime.newproc1 and passes it to
 * runtime.runqput. The "created" program (CREATED), on that `call
 * runtime.runqput` (RBX: the new g; a CALL is emulated by uprobes) or, when
 * the planner did not find it, on newproc1's RET instruction(s) (RAX;
 * single-stepped, dearer; never a uretprobe on Go code), walks the frame
 * pointers from newproc.func1's frame: runtime.systemstack keeps the
 * goroutine's frame pointer, so the chain runs on into the creator's stack.
 * Its innermost non-std module is what the new goroutine inherits, else what
 * the creator inherited itself (the creator is g0.m.curg). A hooked call
 * whose stack holds no non-std frame (nor a trusted module's) then falls back
 * to its goroutine's record in `goroutines`, else (no record at all) to its
 * creator's record through g.parentGoid (Go 1.21+), else to the module of its
 * go statement (g.gopc: covers goroutines created before gohook attached).
 * So a goroutine whose creator has a record of its own needs none (no map
 * update: most goroutines the standard library starts, one per request in
 * net/http); a record of 0 stops the parent lookup (a trusted creator).
 *
 * The system-call sentinel (GOHOOK_SENTINEL=1) is a raw_syscalls:sys_enter
 * program limited to the processes of the binary (registered in `targets` by
 * the "created" probe, which every Go process hits before its package
 * initialization). For a capability system call (sys_rules) that no hook
 * point covers (no `marks` entry of this thread for an enclosing hooked
 * call with the same capability), it walks the user stack from the saved
 * registers with the same range table, falls back to the module of the cgo
 * call in progress on the thread (cgo_calls, set by the runtime.cgocall hook
 * and cleared at cgocall's RET), then to the goroutine's provenance, and
 * decides like a hook. A tracepoint cannot stop a system call: a SIGKILL
 * sent here lands when the call returns, so the call itself has happened.
 * The module's own `syscall` instructions are therefore also probed one by
 * one (kind SITE: the uprobe sits on the instruction and kills before it).
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
#ifndef GOHOOK_NOT_INHERITED
#define GOHOOK_NOT_INHERITED 0 /* a module id goroutines never inherit (std:init); 0: none */
#endif
#ifndef GOHOOK_GOPC_OFFSET
#define GOHOOK_GOPC_OFFSET 0 /* offset of gopc in runtime.g; 0: unknown */
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
#define GOHOOK_DENY_UNATTRIBUTED 0 /* 1: a call with no non-std frame (and no provenance) is a violation */
#endif
#ifndef GOHOOK_REPORT_ALLOWED
#define GOHOOK_REPORT_ALLOWED 1 /* 1: allowed calls are reported too (learn mode, event streams) */
#endif
#ifndef GOHOOK_VIOLATION_PAGES
#define GOHOOK_VIOLATION_PAGES 64 /* ring buffer for deny/audit events, in pages (power of two) */
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
#ifndef GOHOOK_PROVENANCE
#define GOHOOK_PROVENANCE 0 /* 1: goroutine provenance (the CREATED programs) */
#endif
#ifndef GOHOOK_NEWG_REG
#define GOHOOK_NEWG_REG bx /* the pt_regs field holding the new g at the "created" probe: bx or ax */
#endif
#ifndef GOHOOK_PARENT_GOID_OFFSET
#define GOHOOK_PARENT_GOID_OFFSET 0 /* offset of parentGoid in runtime.g; 0: none (Go < 1.21) */
#endif
#ifndef GOHOOK_G_M_OFFSET
#define GOHOOK_G_M_OFFSET 48 /* offset of m in runtime.g */
#endif
#ifndef GOHOOK_M_CURG_OFFSET
#define GOHOOK_M_CURG_OFFSET 0 /* offset of curg in runtime.m */
#endif
/* the bytes of runtime.g from goid to parentGoid (or the other way round), read at once */
#define GOHOOK_G_LO (GOHOOK_GOID_OFFSET < GOHOOK_PARENT_GOID_OFFSET ? GOHOOK_GOID_OFFSET : GOHOOK_PARENT_GOID_OFFSET)
#define GOHOOK_G_SPAN                                                                                   \
	((GOHOOK_GOID_OFFSET > GOHOOK_PARENT_GOID_OFFSET ? GOHOOK_GOID_OFFSET : GOHOOK_PARENT_GOID_OFFSET) + \
	 8 - GOHOOK_G_LO)
#ifndef GOHOOK_CREATED
#define GOHOOK_CREATED /* CREATED(index, probe) ...: where goroutines are created (provenance) */
#endif
#ifndef GOHOOK_SENTINEL
#define GOHOOK_SENTINEL 0 /* 1: the raw_syscalls:sys_enter sentinel */
#endif
#ifndef GOHOOK_SYSCALL_CAPBIT
#define GOHOOK_SYSCALL_CAPBIT 0ULL /* bit of the `syscall` capability: a hook that checked it covers any call */
#endif
#ifndef GOHOOK_NSYSCALLS
#define GOHOOK_NSYSCALLS 512 /* entries of sys_rules (x86-64 system call numbers) */
#endif
#ifndef GOHOOK_TABLE_ENTRIES
#define GOHOOK_TABLE_ENTRIES 16384 /* goroutines, marks: LRU hash sizes */
#endif
#ifndef GOHOOK_EXEMPT
#define GOHOOK_EXEMPT /* EXEMPT(start, end) ...: the runtime's own system-call functions (static vaddrs) */
#endif
#ifndef GOHOOK_HOOKS
#define GOHOOK_HOOKS /* HOOK(...), HOOK_CGO(...), HOOK_VALUE(...), SITE(id, probe, owner): see below */
#endif

#define GOHOOK_EVENT_HEADER_SIZE ((__u64) & ((struct gohook_event *)0)->frames)
#define GOHOOK_RANGE_TRUSTED 1u /* range_flags: code of a trusted module */
#define GOHOOK_CGO_STD 0xffffffffu /* cgo_calls value: a cgo call of the standard library (or a trusted module) */

/* --- maps ----------------------------------------------------------------- */
BPF_RINGBUF_OUTPUT(events, GOHOOK_RINGBUF_PAGES);
/* Violations (deny, audit) get their own ring buffer: a flood of allowed-call
 * events can fill `events`, but never crowd out the events that matter. */
BPF_RINGBUF_OUTPUT(violations, GOHOOK_VIOLATION_PAGES);
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
BPF_ARRAY(range_flags, __u32, GOHOOK_NRANGES);     /* GOHOOK_RANGE_* */
BPF_ARRAY(page_first, __u32, GOHOOK_NPAGES + 1);   /* text page -> index of the range holding its start */
BPF_ARRAY(module_mask, __u64, GOHOOK_NMODULES + 1); /* module id -> allowed capability bits */

#if GOHOOK_PROVENANCE || GOHOOK_SENTINEL
/* A goroutine: (process, goroutine id). */
struct gohook_gkey {
	__u32 tgid;
	__u32 pad;
	__u64 goid;
};
BPF_TABLE("lru_hash", struct gohook_gkey, __u32, goroutines, GOHOOK_TABLE_ENTRIES); /* -> inherited module */
BPF_TABLE("lru_hash", __u32, __u64, targets, 4096);  /* process of the binary -> load bias */
#endif
#if GOHOOK_SENTINEL
/* The last counted hooks of a goroutine: the sentinel leaves the system calls
 * made inside one of them (deeper stack, its return address still in place,
 * same capability) to it. Several, because hooked calls nest (net.Listen's
 * hook, then an open of /proc/sys/net/core/somaxconn, then bind). */
struct gohook_mark {
	__u64 sp;     /* g.stack.hi - RSP at the probe (where the return address is): stack copies keep it */
	__u64 ret;    /* [sp]: still there while the hooked call runs */
	__u64 capbit; /* the capability the hook checked */
};
#define GOHOOK_MARKS 4 /* power of two */
struct gohook_marks {
	__u64 n; /* marks written; the newest is m[(n - 1) % GOHOOK_MARKS] */
	struct gohook_mark m[GOHOOK_MARKS];
};
BPF_TABLE("lru_hash", struct gohook_gkey, struct gohook_marks, marks, GOHOOK_TABLE_ENTRIES);
BPF_TABLE("lru_hash", __u32, __u32, cgo_calls, 4096); /* thread -> module of its cgo call in progress */
BPF_ARRAY(sys_rules, struct gohook_sysrule, GOHOOK_NSYSCALLS);
#endif

/* What one entry program hands the shared handler. */
struct gohook_call {
	__u64 pid_tgid;   /* who made the call: checked by the handler */
	__u64 a0, a1;     /* the argument registers named by the hook's ArgRead */
	__u64 probe;      /* static vaddr of the probe */
	__u32 hook_id;
	__u32 capability; /* bit index, after the FlagRule */
	__u32 arg_kind;
	__u32 direct;     /* direct_caller_only */
	__u32 kind;       /* GOHOOK_K_* */
	__u32 owner;      /* GOHOOK_K_SITE: module id of the probed code */
	__u32 call_len;   /* >0: the probe is a call instruction of this length at a call site of the hooked
			   * function (its return address is ip + call_len; RSP and RBP are the caller's) */
	__u32 pad;
};

#if GOHOOK_SHARED_HANDLER
BPF_PROG_ARRAY(handler, 1);             /* slot 0: gohook_handler, filled by the loader */
BPF_PERCPU_ARRAY(calls, struct gohook_call, 1); /* entry -> handler, across the tail call */
#endif

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

/* The innermost non-std module at a return address (0: std, trusted or outside the text). */
static __always_inline __u32 gohook_module_at(__u64 ret, __u64 bias)
{
	__u64 off = ret - bias - 1 - GOHOOK_TEXT_START;
	if (off >= GOHOOK_TEXT_SIZE)
		return 0;
	__u32 idx = gohook_lookup((__u32)off);
	__u64 *pm = range_mods.lookup(&idx);
	__u64 mods = pm ? *pm : 0;
	__u32 f = mods & 0xffff;
	return f ? f : (mods >> 16) & 0xffff;
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

/* The argument named by the hook's ArgRead, into ev->arg. */
static __always_inline void gohook_read_arg(struct gohook_call *c, struct gohook_event *ev)
{
	__u64 ptr = c->a0, len = c->a1;
	ev->arg_len = 0;
	if (c->arg_kind == GOHOOK_ARG_IPPORT) {
		/* net.TCPAddr / UDPAddr / IPAddr: IP []byte at +0, Port int at +24 (same in Go 1.19-1.27) */
		__u64 f[4];
		if (!ptr || bpf_probe_read_user(f, sizeof(f), (void *)ptr)) {
			if (ptr)
				ev->flags |= GOHOOK_F_ARG_FAULT;
			return;
		}
		__u64 iplen = f[1] > 16 ? 16 : f[1];
		ev->arg[0] = (__u8)iplen;
		iplen &= 31;
		if (iplen && bpf_probe_read_user(&ev->arg[1], iplen, (void *)f[0]))
			ev->flags |= GOHOOK_F_ARG_FAULT;
		*(__u64 *)&ev->arg[17] = f[3];
		ev->arg_len = 25;
		return;
	}
	if (c->arg_kind == GOHOOK_ARG_INTFIELD0) {
		if (ptr && !bpf_probe_read_user(ev->arg, 8, (void *)ptr))
			ev->arg_len = 8;
		else if (ptr)
			ev->flags |= GOHOOK_F_ARG_FAULT;
		return;
	}
	if (c->arg_kind == GOHOOK_ARG_STRFIELD0) {
		len = ptr ? 1 : 0; /* read the string header at ptr, as for the first element of a slice */
	}
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
	if (c->arg_kind == GOHOOK_ARG_STRING_SLICE0 || c->arg_kind == GOHOOK_ARG_STRFIELD0) {
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

static __always_inline __u64 gohook_read_u64(__u64 addr)
{
	__u64 v = 0;
	if (bpf_probe_read_user(&v, sizeof(v), (void *)addr))
		return 0;
	return v;
}

#if GOHOOK_PROVENANCE || GOHOOK_SENTINEL
#define GOHOOK_FROM_RECORD 1 /* gohook_provenance: the goroutine's own record */
#define GOHOOK_FROM_PARENT 2 /* its creator's record, through g.parentGoid */
#define GOHOOK_FROM_GOPC 3   /* the module of its go statement */
/* The module goroutine g (goid) inherited from its creator: its own record, else (no record) its
 * creator's through g.parentGoid, else the module of its go statement; 0 when none says. *how gets
 * GOHOOK_F_INHERITED or _GOPC, *from the GOHOOK_FROM_* that decided. */
static __always_inline __u32 gohook_provenance(__u32 tgid, __u64 g, __u64 goid, __u64 bias, __u32 *how,
					       int *from)
{
	if (!goid)
		return 0;
	struct gohook_gkey key = {.tgid = tgid, .goid = goid};
	__u32 *inherited = goroutines.lookup(&key);
	if (inherited && *inherited) {
		*how |= GOHOOK_F_INHERITED;
		*from = GOHOOK_FROM_RECORD;
		return *inherited;
	}
	if (!inherited && GOHOOK_PARENT_GOID_OFFSET && g) {
		key.goid = gohook_read_u64(g + GOHOOK_PARENT_GOID_OFFSET);
		__u32 *up = key.goid ? goroutines.lookup(&key) : 0;
		if (up && *up) {
			*how |= GOHOOK_F_INHERITED;
			*from = GOHOOK_FROM_PARENT;
			return *up;
		}
	}
	if (!GOHOOK_GOPC_OFFSET || !g)
		return 0;
	__u64 gopc = gohook_read_u64(g + GOHOOK_GOPC_OFFSET);
	__u32 m = gopc ? gohook_module_at(gopc, bias) : 0; /* gopc is a return address (after CALL newproc) */
	if (GOHOOK_NOT_INHERITED && m == GOHOOK_NOT_INHERITED)
		m = 0;
	if (m) {
		*how |= GOHOOK_F_GOPC;
		*from = GOHOOK_FROM_GOPC;
	}
	return m;
}
#endif

/* The id of the goroutine whose g is in R14 (0: unknown). */
static __always_inline __u64 gohook_goid(struct gohook_regs *r)
{
	return GOHOOK_GOID_OFFSET && r->r14 ? gohook_read_u64(r->r14 + GOHOOK_GOID_OFFSET) : 0;
}

/* The shared handler: walk, decide, kill, report. */
static __always_inline int gohook_run(struct gohook_regs *r, struct gohook_call *c, __u64 bias)
{
	__u32 zero = 0;
	struct gohook_event *ev = scratch.lookup(&zero);
	if (!ev)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	ev->time_ns = now; /* also the ownership tag of the scratch slot */

	struct gohook_stack *sc = stack_copy.lookup(&zero);
	struct gohook_walk w = {};
	w.bias = bias;
	w.capbit = 1ULL << (c->capability & 63);

	/* One read of the goroutine stack from RSP up to g.stack.hi (R14 holds
	 * the g; stack.lo and stack.hi are its first two words in every Go
	 * release): a probe read costs about as much as walking 16 KiB of copy.
	 * (A fixed-size copy without reading g first verified in half the
	 * instructions but made the HTTP service's hooks 100 ns dearer: it
	 * touches memory past the top of small goroutine stacks.) */
	__u64 pair[2] = {}, stack_hi = 0;
	w.base = r->sp;
	if (sc)
		sc->len = 0;
	if (sc && r->r14 && !bpf_probe_read_user(pair, sizeof(pair), (void *)r->r14) &&
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

	/* Frame 0: the return address at [RSP]; at a call site the address after
	 * the call instruction; for a `syscall` instruction (a site probe, or the
	 * sentinel) the instruction itself: its function may have no frame. */
	__u64 ret0 = 0, mark_sp = r->sp;
	if (c->call_len) {
		ret0 = r->ip + c->call_len;
		mark_sp = r->sp - 8; /* where the call will put ret0 */
	} else if (gohook_read_pair(&w, sc, r->sp, pair)) {
		w.flags |= GOHOOK_F_STOP_FAULT;
	} else {
		ret0 = pair[0];
	}
	/* sentinel: code outside the Go text (generated at run time, or C) may be
	 * a leaf without a frame: then [RSP] is its caller */
	int in_text = r->ip - bias - 1 - GOHOOK_TEXT_START < GOHOOK_TEXT_SIZE;
	if (!(w.flags & GOHOOK_F_STOP_FAULT)) {
		__u64 first = c->kind == GOHOOK_K_SITE ? r->ip + 1 : c->kind == GOHOOK_K_SYSCALL && in_text ? r->ip : ret0;
		if (!gohook_frame(&w, ev, first))
			w.fp = r->bp;
		else
			w.stop = 1;
	}
	if (c->direct && !(w.mods0 & 0xffff)) {
#if GOHOOK_SENTINEL
		if (c->kind == GOHOOK_K_CGOCALL) {
			/* a cgo call of the standard library: its C code is not judged */
			__u32 tid = (__u32)c->pid_tgid, std = GOHOOK_CGO_STD;
			cgo_calls.update(&tid, &std);
		}
#endif
		gohook_count(GOHOOK_C_IGNORED); /* called by std: the std lib is the mechanism */
		return 0;
	}
	if (!(w.flags & GOHOOK_F_STOP_FAULT) && !w.stop) {
		int i;
		for (i = 0; i < GOHOOK_MAX_FRAMES - 1; i++) {
			if (gohook_step(&w, ev, sc))
				break;
		}
		if (i == GOHOOK_MAX_FRAMES - 1)
			w.flags |= GOHOOK_F_TRUNCATED;
	}

	__u32 tgid = c->pid_tgid >> 32, tid = (__u32)c->pid_tgid;
	/* The goroutine id, read only where it is needed (provenance, the sentinel's marks, the event): a
	 * read of user memory costs about 0.2 us, as much as the rest of an allowed call's decision. */
	__u64 goid = 0;
#if GOHOOK_SENTINEL
	goid = gohook_goid(r);
#endif
	__u32 flags = w.flags, module;

	/* Decide. */
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
	if (c->kind == GOHOOK_K_SITE) {
		flags |= GOHOOK_F_SITE;
		module = c->owner; /* the module's own instruction */
		allowed = (gohook_mask(module) & w.capbit) != 0;
	} else if (c->direct) {
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
#if GOHOOK_SENTINEL
	if (!module && c->kind == GOHOOK_K_SYSCALL) {
		__u32 *cm = cgo_calls.lookup(&tid);
		if (cm && *cm) {
			module = *cm;
			flags |= GOHOOK_F_CGO;
			allowed = (gohook_mask(module) & w.capbit) != 0;
		}
	}
#endif
#if GOHOOK_PROVENANCE
	if (!module && !c->direct && !(flags & GOHOOK_F_TRUSTED)) {
		int from = 0;
		goid = gohook_goid(r);
		module = gohook_provenance(tgid, r->r14, goid, bias, &flags, &from);
		if (module)
			allowed = (gohook_mask(module) & w.capbit) != 0;
	}
#endif
	if (!module) {
		/* (the sentinel does not apply `unattributed: deny` to code outside the Go
		 * text: C code of the standard library's cgo calls is there too) */
		flags |= GOHOOK_F_UNATTRIBUTED;
		allowed = !GOHOOK_DENY_UNATTRIBUTED || (c->kind == GOHOOK_K_SYSCALL && !in_text);
	}
	if (c->kind == GOHOOK_K_SYSCALL)
		flags |= GOHOOK_F_SENTINEL;
	gohook_count(c->kind == GOHOOK_K_SYSCALL ? GOHOOK_C_SYSCALLS : GOHOOK_C_HITS);
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
#if GOHOOK_SENTINEL
	if (c->kind != GOHOOK_K_SYSCALL) {
		/* this goroutine's system calls inside the hooked call are the hook's */
		struct gohook_gkey gk = {.tgid = tgid, .goid = goid};
		struct gohook_marks *ms = stack_hi && goid ? marks.lookup(&gk) : 0;
		if (!ms && stack_hi && goid) {
			struct gohook_marks empty = {};
			marks.update(&gk, &empty);
			ms = marks.lookup(&gk);
		}
		if (ms) {
			struct gohook_mark *slot = &ms->m[ms->n & (GOHOOK_MARKS - 1)];
			slot->sp = stack_hi - mark_sp;
			slot->ret = ret0;
			slot->capbit = w.capbit;
			ms->n++;
		}
		if (c->kind == GOHOOK_K_CGOCALL) {
			__u32 cm = module ? module : GOHOOK_CGO_STD;
			cgo_calls.update(&tid, &cm);
		}
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
	if (decision != GOHOOK_ALLOW) {
		if (violations.ringbuf_output(ev, sizeof(*ev), 0))
			gohook_count(GOHOOK_C_LOST);
	} else if (events.ringbuf_output(ev, sizeof(*ev), 0)) {
		gohook_count(GOHOOK_C_LOST);
	}
	return 0;
}

/* --- entry programs ------------------------------------------------------- */

/* Go's integer argument registers, by index (gohook.plan.GO_ARG_REGS); -1: none. */
#define GOHOOK_REG(ctx, i)                                                                      \
	((i) == 0 ? (ctx)->ax : (i) == 1 ? (ctx)->bx : (i) == 2 ? (ctx)->cx : (i) == 3 ? (ctx)->di : \
	 (i) == 4 ? (ctx)->si : (i) == 5 ? (ctx)->r8 : (i) == 6 ? (ctx)->r9 : (i) == 7 ? (ctx)->r10 : \
	 (i) == 8 ? (ctx)->r11 : 0)

/* The kernel's system-call argument registers, by index. */
#define GOHOOK_SYSARG(regs, i)                                                                  \
	((i) == 0 ? (regs)->di : (i) == 1 ? (regs)->si : (i) == 2 ? (regs)->dx : (i) == 3 ? (regs)->r10 : \
	 (i) == 4 ? (regs)->r8 : (i) == 5 ? (regs)->r9 : 0)

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

static __always_inline struct gohook_regs gohook_uprobe_regs(struct pt_regs *ctx)
{
	struct gohook_regs r = {.ip = ctx->ip, .sp = ctx->sp, .bp = ctx->bp, .r14 = ctx->r14};
	return r;
}

#if GOHOOK_SENTINEL
/* The capability of system call nr with arguments args (sys_rules); 0 when it
 * needs none. Fills the capability and argument part of c. */
static __always_inline int gohook_sysrule(__u64 *args, __u32 nr, struct gohook_call *c)
{
	struct gohook_sysrule *rule = sys_rules.lookup(&nr);
	if (!rule || !rule->valid)
		return 0;
	__u32 cap = rule->cap;
	if (rule->flags_arg != GOHOOK_NOARG && (args[rule->flags_arg & 7] & rule->mask))
		cap = rule->cap_set;
	c->capability = cap;
	c->arg_kind = rule->arg == GOHOOK_NOARG ? GOHOOK_ARG_NONE : rule->arg_kind;
	c->a0 = rule->arg == GOHOOK_NOARG ? 0 : args[rule->arg & 7];
	c->a1 = rule->len_arg == GOHOOK_NOARG ? 0 : args[rule->len_arg & 7];
	return 1;
}

/* The system-call argument registers of a uprobe on a `syscall` instruction. */
#define GOHOOK_SYSARGS(ctx) {(ctx)->di, (ctx)->si, (ctx)->dx, (ctx)->r10, (ctx)->r8, (ctx)->r9, 0, 0}
#endif

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
	struct gohook_regs r = gohook_uprobe_regs(ctx);
	return gohook_run(&r, &c, ctx->ip - c.probe);
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

GOHOOK_HOOKS

#if GOHOOK_PROVENANCE
/* The innermost non-std module on the creator's stack, from the frame pointer fp of newproc.func1 (on
 * the system stack; its saved frame pointer is on the creator's stack). *trusted is set when a trusted
 * module's frame comes first. The frames are few and read one by one: copying the creator's stack in
 * one read into a per-CPU buffer measured 4 % faster on net/http's goroutines, too little for a buffer
 * that a preempting program on the same CPU could overwrite. */
static __always_inline __u32 gohook_creator_module(__u64 fp, __u64 bias, int *trusted)
{
	for (int i = 0; i < GOHOOK_MAX_FRAMES; i++) {
		__u64 pair[2];
		if (!fp || bpf_probe_read_user(pair, sizeof(pair), (void *)fp))
			return 0;
		__u64 pc = pair[1] - bias - 1; /* inside the call instruction */
		__u64 off = pc - GOHOOK_TEXT_START;
		if (off >= GOHOOK_TEXT_SIZE || pc - GOHOOK_GOEXIT_START < GOHOOK_GOEXIT_SIZE)
			return 0;
		__u32 idx = gohook_lookup((__u32)off);
		__u32 *pf = range_flags.lookup(&idx);
		if (pf && (*pf & GOHOOK_RANGE_TRUSTED))
			*trusted = 1;
		__u64 *pm = range_mods.lookup(&idx);
		__u64 mods = pm ? *pm : 0;
		__u32 f = mods & 0xffff;
		if (!f)
			f = (mods >> 16) & 0xffff;
		if (f)
			return GOHOOK_NOT_INHERITED && f == GOHOOK_NOT_INHERITED ? 0 : f;
		fp = pair[0];
	}
	return 0;
}

/* A goroutine is being created: the new g is in register GOHOOK_NEWG_REG, on the system stack of the
 * creating thread (R14: its g0). Files what the new goroutine inherits, when its own lookups would not
 * find it (gohook_provenance), and registers the process for the sentinel. Never reported. */
static __always_inline int gohook_created(struct pt_regs *ctx, __u64 probe)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u64 bias = ctx->ip - probe;
#if GOHOOK_SENTINEL
	if (!targets.lookup(&tgid))
		targets.update(&tgid, &bias);
#endif
	__u64 newg = ctx->GOHOOK_NEWG_REG, parent = 0;
	struct gohook_gkey key = {.tgid = tgid};
	if (!newg)
		return 0;
#if GOHOOK_PARENT_GOID_OFFSET
	/* goid and parentGoid in one read: each read of user memory costs more than a map lookup */
	__u64 words[GOHOOK_G_SPAN / 8];
	if (bpf_probe_read_user(words, sizeof(words), (void *)(newg + GOHOOK_G_LO)))
		return 0;
	key.goid = words[(GOHOOK_GOID_OFFSET - GOHOOK_G_LO) / 8];
	parent = words[(GOHOOK_PARENT_GOID_OFFSET - GOHOOK_G_LO) / 8];
#else
	key.goid = gohook_read_u64(newg + GOHOOK_GOID_OFFSET);
#endif
	if (!key.goid)
		return 0;
	int trusted = 0, from = 0;
	__u32 how = 0, module = gohook_creator_module(ctx->bp, bias, &trusted);
	__u32 record = module != 0;
	if (!module && !trusted) {
		/* the creator's own record: the new goroutine finds it through its parentGoid, no record needed */
		struct gohook_gkey ckey = {.tgid = tgid, .goid = parent};
		__u32 *own = parent ? goroutines.lookup(&ckey) : 0;
		if (own && *own) {
			module = *own;
			from = GOHOOK_FROM_RECORD;
		} else {
			/* the creator (g0.m.curg) inherited through its own creator, or from its go statement */
			__u64 m = ctx->r14 ? gohook_read_u64(ctx->r14 + GOHOOK_G_M_OFFSET) : 0;
			__u64 creator = m ? gohook_read_u64(m + GOHOOK_M_CURG_OFFSET) : 0;
			__u64 cgoid = creator ? gohook_read_u64(creator + GOHOOK_GOID_OFFSET) : 0;
			module = gohook_provenance(tgid, creator, cgoid, bias, &how, &from);
		}
		record = module && !(GOHOOK_PARENT_GOID_OFFSET && from == GOHOOK_FROM_RECORD);
	} else if (trusted && !module && GOHOOK_PARENT_GOID_OFFSET) {
		/* a record of 0 keeps the new goroutine from looking up its creator's */
		record = 1;
	}
	if (module)
		gohook_count(GOHOOK_C_GOROUTINES);
	if (record)
		goroutines.update(&key, &module);
	else if (goroutines.lookup(&key))
		goroutines.delete(&key); /* a goroutine id of an earlier process with this pid */
	return 0;
}
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

/* The runtime's own system-call functions (runtime.open for the huge-page
 * size at start-up, ...): EXEMPT(start, end) pairs of static vaddrs. */
#define EXEMPT(start, end) || (pc - (start) < (end) - (start))
static __always_inline int gohook_exempt(__u64 pc)
{
	return 0 GOHOOK_EXEMPT;
}

/* raw_syscalls:sys_enter, as a raw tracepoint: args[0] is the user pt_regs, args[1] the number. */
int gohook_sentinel(struct bpf_raw_tracepoint_args *ctx)
{
	/* Every system call of every process comes here while the sentinel is
	 * attached: the rule test (one array lookup) goes first, the process
	 * test (a hash lookup) second, the register reads only after both. */
	__u32 nr = (__u32)ctx->args[1];
	struct gohook_sysrule *rule = sys_rules.lookup(&nr);
	if (!rule || !rule->valid)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;
	__u64 *bias = targets.lookup(&tgid);
	if (!bias)
		return 0;
	struct pt_regs *kregs = (struct pt_regs *)ctx->args[0];
	/* the user registers, one field at a time: a whole pt_regs would not fit the BPF stack */
	__u64 args[8] = {}, ip = 0, sp = 0, bp = 0, r14 = 0;
	bpf_probe_read_kernel(&args[0], 8, &kregs->di);
	bpf_probe_read_kernel(&args[1], 8, &kregs->si);
	bpf_probe_read_kernel(&args[2], 8, &kregs->dx);
	bpf_probe_read_kernel(&args[3], 8, &kregs->r10);
	bpf_probe_read_kernel(&args[4], 8, &kregs->r8);
	bpf_probe_read_kernel(&args[5], 8, &kregs->r9);
	struct gohook_call c = {};
	if (!gohook_sysrule(args, nr, &c))
		return 0;
	bpf_probe_read_kernel(&ip, 8, &kregs->ip);
	bpf_probe_read_kernel(&sp, 8, &kregs->sp);
	bpf_probe_read_kernel(&bp, 8, &kregs->bp);
	bpf_probe_read_kernel(&r14, 8, &kregs->r14);
	if (gohook_exempt(ip - *bias - 1)) {
		gohook_count(GOHOOK_C_EXEMPT);
		return 0;
	}
	__u32 *cm = cgo_calls.lookup(&tid);
	if (cm && *cm == GOHOOK_CGO_STD) {
		gohook_count(GOHOOK_C_EXEMPT);
		return 0;
	}
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
			if (m->sp && sp <= at && ((m->capbit & capbit) || (m->capbit & GOHOOK_SYSCALL_CAPBIT)) &&
			    gohook_read_u64(at) == m->ret) {
				gohook_count(GOHOOK_C_COVERED);
				return 0;
			}
		}
	}
	c.pid_tgid = pid_tgid;
	c.hook_id = GOHOOK_SYSCALL_HOOK | nr;
	c.kind = GOHOOK_K_SYSCALL;
	struct gohook_regs r = {.ip = ip, .sp = sp, .bp = bp, .r14 = r14};
	return gohook_run(&r, &c, *bias);
}

/* sched:sched_process_exec / sched_process_exit: the process no longer runs the binary. */
int gohook_forget(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if ((__u32)pid_tgid == tgid)
		targets.delete(&tgid);
	return 0;
}
#endif
