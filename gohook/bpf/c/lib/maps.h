/* lib/maps.h: the maps of the gohook program, the structs they hold, and the
 * two accessors every part uses (gohook_count, gohook_mask).
 *
 * The range table (range_start, range_mods, range_deny, range_flags,
 * page_first) and module_mask are filled by gohook/bpf/loader.py from
 * gohook.bpf.render.build_tables; sys_rules from the plan's sentinel rules;
 * the others are written by the programs themselves.
 *
 * Like every lib/ header this one is not compiled through `#include`: bcc
 * rewrites map accesses (`counters.lookup(...)`) only in the main file, so
 * gohook/bpf/render.py inlines the lib/ headers into gohook.bpf.c.
 */
#ifndef GOHOOK_LIB_MAPS_H
#define GOHOOK_LIB_MAPS_H

#include "gohook.h"
#include "lib/config.h"

BPF_RINGBUF_OUTPUT(events, GOHOOK_RINGBUF_PAGES);
/* Violations (deny, audit) get their own ring buffer: a flood of allowed-call
 * events can fill `events`, but never crowd out the events that matter. */
BPF_RINGBUF_OUTPUT(violations, GOHOOK_VIOLATION_PAGES);
BPF_PERCPU_ARRAY(counters, __u64, GOHOOK_NCOUNTERS);
BPF_PERCPU_ARRAY(scratch, struct gohook_event, 1); /* the event being built (too big for the stack) */
/* The goroutine stack copy, and what the walk's start found for after the walk: in the map, not on the
 * program's stack, so that the verifier does not tell the walk's states apart by them (see gohook_run). */
struct gohook_stack {
	__u64 len;     /* valid bytes */
	__u64 hi;      /* g.stack.hi; 0 when the g or its stack bounds could not be read */
	__u64 ret0;    /* the return address of the probed call (for the sentinel's marks) */
	__u64 mark_sp; /* the stack address that holds it */
	__u8 bytes[GOHOOK_STACK_COPY];
};
BPF_PERCPU_ARRAY(stack_copy, struct gohook_stack, 1); /* [RSP, min(g.stack.hi, RSP + size)) of the caller */
BPF_ARRAY(range_start, __u32, GOHOOK_NRANGES);     /* sorted range starts, offsets from text start */
BPF_ARRAY(range_mods, __u64, GOHOOK_NRANGES);      /* 4 x u16 module ids per range, innermost first */
BPF_ARRAY(range_deny, __u64, GOHOOK_NRANGES);      /* capabilities some module of the range lacks */
BPF_ARRAY(range_flags, __u32, GOHOOK_NRANGES);     /* GOHOOK_RANGE_* */
BPF_ARRAY(page_first, __u32, GOHOOK_NPAGES + 1);   /* text page -> index of the range holding its start */
BPF_ARRAY(module_mask, __u64, GOHOOK_NMODULES + 1); /* module id -> allowed capability bits */
BPF_ARRAY(module_action, __u32, GOHOOK_NMODULES + 1); /* module id -> GOHOOK_ACT_* (0: std/unattributed) */
#if GOHOOK_LEARN_COUNTS
/* learn mode: calls by (hook id << 32 | module id << 8 | capability bit), counted in the kernel whatever
 * becomes of their events: a learned policy is complete even when a full ring buffer dropped details, and
 * gohook can say which hook points never fired (issue 17) */
BPF_HASH(learned_calls, __u64, __u64, GOHOOK_TABLE_ENTRIES);
#endif
#if GOHOOK_ERROR_ACTION
/* action error (lib/deny.h): hook id -> 1 when its function can return a denial (its catalog return plan
 * is not kill); the processes gohook traces (tgid -> 1, written by gohook/attach/tracer.py once every
 * thread is traced); the marks of denied calls, by thread id, which the tracer consumes at the SIGSYS stop */
BPF_ARRAY(hook_deny, __u32, GOHOOK_NHOOKS);
BPF_HASH(traced, __u32, __u32, 4096);
BPF_HASH(deny_marks, __u32, struct gohook_denymark, 4096);
#endif

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
#endif
/* system call number -> capability: for the sentinel, the `syscall` instruction sites and the raw
 * system-call hooks (HOOK_RAW), which judge a call by the number it issues, and the guard */
BPF_ARRAY(sys_rules, struct gohook_sysrule, GOHOOK_NSYSCALLS);
/* gohook's own processes and threads, by their numbers in gohook's pid namespace (and -1: every process):
 * the targets of signals, ptrace and memory writes that are tamper (GOHOOK_T_GUARD). Filled by the session. */
BPF_HASH(guarded, __u32, __u8, 1024);

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
	__u32 cap2;       /* GOHOOK_K_RAWCALL, _SITE: a second capability the call needs (its system call
			   * number's), bit index; the same as capability when there is none */
};

#if GOHOOK_SHARED_HANDLER
BPF_PROG_ARRAY(handler, GOHOOK_HANDLER_SLOTS); /* the handler programs by GOHOOK_HANDLER_SLOT, filled by the loader */
BPF_PERCPU_ARRAY(calls, struct gohook_call, 1); /* entry -> handler, across the tail call */

/* bcc rewrites map calls only outside macros: the entry macros (lib/entry.h) go through these. */
static __always_inline struct gohook_call *gohook_slot(void)
{
	__u32 zero = 0;
	return calls.lookup(&zero);
}

static __always_inline void gohook_tail_call(struct pt_regs *ctx, __u32 slot)
{
	handler.call(ctx, slot);
}
#endif

#if GOHOOK_ARG_RULES
/* Argument-scoped grants (lib/argmatch.h; struct layouts in gohook.h), filled by the loader. */
BPF_ARRAY(module_scoped, __u64, GOHOOK_NMODULES + 1); /* module id -> capabilities held for some arguments */
BPF_ARRAY(hook_scopes, struct gohook_hookscope, GOHOOK_NHOOKSCOPES); /* hook id -> its argument's class (NONE: none) */
BPF_LPM_TRIE(arg_globs, struct gohook_globkey, struct gohook_globval, GOHOOK_NGLOBS);
BPF_LPM_TRIE(arg_addrs, struct gohook_addrkey, struct gohook_addrval, GOHOOK_NADDRS);
/* The argument check's working memory: the trie keys and a second path (too big for the stack). */
struct gohook_argwork {
	struct gohook_globkey gk;
	__u8 gk_slack[16]; /* masked reads past gk.data stay inside the value */
	struct gohook_addrkey ak;
	__u8 second[GOHOOK_ARG_MAX]; /* a second path (or a Unix socket name being prepared) */
	__u32 len;     /* bytes of gk.data to match */
	__s32 last;    /* index of the last '/' of a path in gk.data (the glob match's) */
	__u32 module;  /* the module charged with the call */
	__u32 pattern; /* the first argument's pattern, once matched */
	__u32 slen;    /* bytes of the second path */
	__u8 need[2];  /* capabilities the second path still needs (GOHOOK_NOCAP: none) */
	__u8 pad[2];
};
BPF_PERCPU_ARRAY(argwork, struct gohook_argwork, 1);
#endif

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

#endif /* GOHOOK_LIB_MAPS_H */
