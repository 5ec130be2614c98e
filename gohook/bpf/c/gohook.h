/* gohook.h: what the BPF program (gohook.bpf.c) and user space share.
 *
 * The event record written to the ring buffer, its decision and flag values,
 * the counters, the argument and hook kinds, the sys_rules entry and the
 * constants both sides rely on. Some constants have a default here that a
 * -D define emitted by gohook/bpf/render.py overrides (GOHOOK_MAX_FRAMES,
 * GOHOOK_ARG_MAX). gohook/bpf/abi.py is the Python mirror of this file, one
 * name for each value here that Python uses; tests/bpf/test_abi.py compiles
 * this header with gcc and checks every struct offset and size, every enum
 * value and every constant that abi.py declares against it.
 *
 * Plain C with <linux/types.h> types only: it must compile for the BPF
 * target (through bcc) and for the host (gcc, in the ABI test).
 */
#ifndef GOHOOK_H
#define GOHOOK_H

#include <linux/types.h>

/* Return addresses recorded per event; also the stack-walk bound. Power of two. */
#ifndef GOHOOK_MAX_FRAMES
#define GOHOOK_MAX_FRAMES 64
#endif

/* Bytes of the captured argument (string bytes or a little-endian int). Power of two. */
#ifndef GOHOOK_ARG_MAX
#define GOHOOK_ARG_MAX 256
#endif

/* Module ids kept per address range: its logical frames, innermost first. */
#define GOHOOK_RANGE_MODULES 4

/* range_flags: the range is code of a trusted module (its module ids are 0, like std) */
#define GOHOOK_RANGE_TRUSTED 1u

/* The text is split in pages of 1 << GOHOOK_PAGE_SHIFT bytes: page_first[p] bounds the range search. */
#define GOHOOK_PAGE_SHIFT 12

/* gohook_event.decision */
#define GOHOOK_ALLOW 0 /* the capability is allowed (or the call is unattributed and allowed) */
#define GOHOOK_DENY 1  /* violation, SIGKILL sent (enforce mode, action kill) */
#define GOHOOK_AUDIT 2 /* violation, only recorded (audit or learn mode, or action audit) */
#define GOHOOK_ERROR 3 /* violation, the call returns a denial (action error): the thread got SIGSYS and a mark */

/* module_action: what a violation of the module does in enforce mode (its policy action) */
#define GOHOOK_ACT_KILL 0  /* SIGKILL of the process */
#define GOHOOK_ACT_ERROR 1 /* the hooked function returns a denial (EPERM, unset, ...) through gohook's tracer */
#define GOHOOK_ACT_AUDIT 2 /* recorded only */

/* The signal that hands a denied call to gohook's tracer (gohook/attach/tracer.py): synchronous, so the
 * kernel dequeues it before any other pending signal of the thread */
#define GOHOOK_SIGSYS 31

/* gohook_event.flags */
#define GOHOOK_F_UNATTRIBUTED (1u << 0)  /* no non-std frame on the walked stack */
#define GOHOOK_F_DIRECT (1u << 1)        /* hook counts only its direct caller */
#define GOHOOK_F_STOP_FP_ZERO (1u << 2)  /* walk ended at a zero frame pointer */
#define GOHOOK_F_STOP_GOEXIT (1u << 3)   /* walk ended at runtime.goexit */
#define GOHOOK_F_STOP_OUTSIDE (1u << 4)  /* walk ended at an address outside the Go text */
#define GOHOOK_F_STOP_FAULT (1u << 5)    /* walk ended: a frame could not be read */
#define GOHOOK_F_TRUNCATED (1u << 6)     /* walk ended at GOHOOK_MAX_FRAMES */
#define GOHOOK_F_ARG_TRUNCATED (1u << 7) /* the argument was longer than GOHOOK_ARG_MAX - 1 */
#define GOHOOK_F_ARG_FAULT (1u << 8)     /* the argument could not be read */
#define GOHOOK_F_SIGNAL_FAILED (1u << 9) /* bpf_send_signal returned an error */
#define GOHOOK_F_INHERITED (1u << 10)    /* no non-std frame: module inherited from the goroutine's creator */
#define GOHOOK_F_GOPC (1u << 11)         /* no non-std frame: module of the goroutine's go statement (g.gopc) */
#define GOHOOK_F_CGO (1u << 12)          /* sentinel: the thread is in a cgo call made by module */
#define GOHOOK_F_SENTINEL (1u << 13)     /* a system call seen by the sentinel, not a hook point */
#define GOHOOK_F_SITE (1u << 14)         /* a `syscall` instruction of the module's own code (hook kind SITE) */
#define GOHOOK_F_TRUSTED (1u << 15)      /* a trusted module's frame was on the stack (no provenance fallback) */
#define GOHOOK_F_ARG_SCOPED (1u << 16)   /* decided by the argument: the module holds the capability only for
					  * some arguments (gohook_event.pattern: the one that matched, 0: none) */
#define GOHOOK_F_KILL_FALLBACK (1u << 17) /* action error could not be applied (the process is not traced
					   * by gohook, the function cannot report a denial, SIGSYS blocked):
					   * killed instead */

/* gohook_event.arg_kind: how the argument bytes are to be read (gohook.bpf.abi.ArgKind) */
#define GOHOOK_ARG_NONE 0
#define GOHOOK_ARG_STRING 1       /* Go string (ptr, len) */
#define GOHOOK_ARG_CSTRING 2      /* NUL-terminated bytes at a pointer */
#define GOHOOK_ARG_STRING_SLICE0 3 /* first element of a []string (ptr, len) */
#define GOHOOK_ARG_INT 4          /* a register, stored as 8 little-endian bytes */
#define GOHOOK_ARG_SOCKADDR 5     /* struct sockaddr bytes at (ptr, len), decoded in user space */
#define GOHOOK_ARG_IPPORT 6       /* *net.TCPAddr/UDPAddr/IPAddr: [ip len u8][ip 16][port u64 at +24] */
#define GOHOOK_ARG_STRFIELD0 7    /* a Go string that is the first field of the struct at a pointer */
#define GOHOOK_ARG_INTFIELD0 8    /* a word that is the first field of the struct at a pointer */

/* Per-CPU counters (the `counters` map), summed by the loader. */
#define GOHOOK_C_LOST 0    /* events dropped: ring buffer full */
#define GOHOOK_C_HITS 1    /* hook hits that were counted (not ignored) */
#define GOHOOK_C_DENIED 2  /* SIGKILLs sent */
#define GOHOOK_C_SIGFAIL 3 /* bpf_send_signal errors */
#define GOHOOK_C_IGNORED 4 /* direct-caller-only hooks called from std: not counted */
#define GOHOOK_C_GARBLED 5 /* per-CPU slot reused by a preempting run: call or event dropped */
#define GOHOOK_C_NOHANDLER 6 /* the tail call into the handler failed: the call was not checked */
#define GOHOOK_C_GOROUTINES 7 /* goroutines created with an inherited module (provenance records) */
#define GOHOOK_C_SYSCALLS 8   /* capability system calls the sentinel decided (no hook point covered them) */
#define GOHOOK_C_COVERED 9    /* capability system calls inside a hooked call (left to the hook) */
#define GOHOOK_C_EXEMPT 10    /* capability system calls of the runtime itself, or of std cgo calls */
#define GOHOOK_C_ERRORS 11    /* denials handed to the tracer to return as an error (SIGSYS sent) */
#define GOHOOK_NCOUNTERS 12

/* gohook_call.kind: what an entry program stands for (gohook.bpf.abi.HookKind) */
#define GOHOOK_K_CALL 0    /* a hooked Go function: frame 0 is the return address at [RSP] */
#define GOHOOK_K_CGOCALL 1 /* runtime.cgocall: also records the cgo call's module for the sentinel */
/* 2: unused (was runtime.newproc's entry, before provenance moved to one probe) */
#define GOHOOK_K_SITE 3    /* a `syscall` instruction in module code: `syscall` and the number's capability */
#define GOHOOK_K_SYSCALL 4 /* the sentinel (raw_syscalls:sys_enter): frame 0 is the user instruction pointer */
#define GOHOOK_K_RAWCALL 5 /* a call of a raw system-call function (syscall.Syscall*) at its call site: `syscall`
			    * and the capability of the system call number it passes */

/* The handler programs (GOHOOK_SHARED_HANDLER): one per (kind, direct_caller_only) of the plan's hook
 * points, each compiled for its constants so that the verifier explores only that kind's paths; an entry
 * program tail-calls slot GOHOOK_HANDLER_SLOT(kind, direct) of the `handler` program array
 * (gohook.bpf.abi.handler_slot). */
#define GOHOOK_HANDLER_SLOTS 14
#define GOHOOK_HANDLER_SLOT(kind, direct) ((kind) * 2 + ((direct) != 0))
/* ... and the argument check (lib/argmatch.h), which a handler tail-calls when the charged module holds the
 * capability only for some arguments */
#define GOHOOK_ARGCHECK_SLOT 12
#define GOHOOK_GLOBMATCH_SLOT 13 /* ... and its glob match, which tail-calls itself for a second path */

/* gohook_event.hook_id of sentinel events: this bit | the system call number */
#define GOHOOK_SYSCALL_HOOK 0x80000000u
/* ... | this bit too: the number is of the i386 table (`int 0x80`, `sysenter` from 64-bit code) */
#define GOHOOK_SYSCALL_I386 0x40000000u
/* ... | this bit instead: judged at the open's exit by the file it opened (lib/fileopen.h) */
#define GOHOOK_SYSCALL_OPENED 0x20000000u

#define GOHOOK_NOARG 0xff /* gohook_sysrule: no such argument */

/* Entries of sys_rules: x86-64 system call numbers 0..GOHOOK_NSYSCALLS - 1. */
#define GOHOOK_NSYSCALLS 512

/* Go's integer argument registers (ABIInternal) by the index a plan names them with
 * (gohook.bpf.abi.GO_ARG_REGS): register i of a struct pt_regs; any other index (-1: none) gives 0. */
#define GOHOOK_REG(ctx, i)                                                                      \
	((i) == 0 ? (ctx)->ax : (i) == 1 ? (ctx)->bx : (i) == 2 ? (ctx)->cx : (i) == 3 ? (ctx)->di : \
	 (i) == 4 ? (ctx)->si : (i) == 5 ? (ctx)->r8 : (i) == 6 ? (ctx)->r9 : (i) == 7 ? (ctx)->r10 : \
	 (i) == 8 ? (ctx)->r11 : 0)

/* Which judges use a sys_rules entry (gohook_sysrule.judges; gohook.bpf.abi.Judge). */
#define GOHOOK_J_RAW 1      /* raw system-call hooks (HOOK_RAW) and module `syscall` instructions (SITE) */
#define GOHOOK_J_SENTINEL 2 /* the raw_syscalls:sys_enter sentinel */
#define GOHOOK_J_GUARD 4    /* the per-system-call guard tracepoints (lib/guard.h), always on */

/* The argument tests of a sys_rules entry (gohook_sysrule.test, test2; gohook.bpf.abi.RuleTest). */
#define GOHOOK_T_NONE 0
#define GOHOOK_T_MASK 1  /* args[a] & operand */
#define GOHOOK_T_EQ 2    /* args[a] == operand */
#define GOHOOK_T_GUARD 3 /* (u32)args[a] names one of gohook's own processes or threads (guarded), seen from
                          * gohook's pid namespace */
#define GOHOOK_T_TEXT 4  /* [args[a], args[a] + args[a + 1]) overlaps the binary's text in this process */
#define GOHOOK_T_SELF 5  /* (u32)args[a] is the calling process (its tgid) */
#define GOHOOK_T_PTR 6   /* the u64 at user address args[a] + operand is not 0 (sendmsg's msg->msg_name) */
#define GOHOOK_T_TYPE 7  /* bit (args[a] & 0xf) of operand: socket(2)'s type, without SOCK_NONBLOCK/SOCK_CLOEXEC */

#define GOHOOK_NOCAP 0xff /* gohook_sysrule capability "none": not a capability call */

/* One entry of the sys_rules map, indexed by x86-64 system call number: which capability the call needs.
 * The tests run in order; the first that holds gives its capability, else cap. Mirrored by
 * gohook.bpf.abi.SYSRULE. */
struct gohook_sysrule {
	__u8 judges;   /* GOHOOK_J_* bits: the judges that use the rule (0: no rule) */
	__u8 cap;      /* capability bit index when no test holds; GOHOOK_NOCAP: none */
	__u8 arg;      /* argument index of the reported argument; GOHOOK_NOARG: none */
	__u8 arg_kind; /* GOHOOK_ARG_CSTRING, GOHOOK_ARG_SOCKADDR or GOHOOK_ARG_NONE */
	__u8 len_arg;  /* GOHOOK_ARG_SOCKADDR: argument index of the length */
	__u8 test;     /* first test: GOHOOK_T_* */
	__u8 test_arg; /* its argument index */
	__u8 cap_set;  /* its capability (or GOHOOK_NOCAP) */
	__u64 operand; /* its mask or value */
	__u8 test2;    /* second test, likewise */
	__u8 test2_arg;
	__u8 cap2_set;
	__u8 pad[5];
	__u64 operand2;
};

/* Argument-scoped grants (issue 14, lib/argmatch.h). A hook point whose argument can be matched has an
 * entry in hook_scopes: its argument's class, and where a second path is (rename, link, symlink). Patterns
 * live in two LPM tries keyed by (module, capability, class) and the argument's bytes: arg_globs for paths,
 * environment names and Unix socket names (struct gohook_globkey; the longest literal prefix wins, then
 * shorter ones, up to GOHOOK_MATCH_TRIES), arg_addrs for IP networks (struct gohook_addrkey). */
#define GOHOOK_AC_NONE 0     /* not matched: a scoped grant does not cover the call */
#define GOHOOK_AC_PATH 1     /* an absolute path (files.*, exec): clean paths only, relative to AT_FDCWD */
#define GOHOOK_AC_ENV 2      /* an environment variable name */
#define GOHOOK_AC_ADDRESS 3  /* a struct sockaddr or net.IPAddr-style address (network.*) */
#define GOHOOK_AC_UNIX 4     /* arg_globs class of Unix socket paths (from an ADDRESS argument) */
#define GOHOOK_AC_ABSTRACT 5 /* arg_globs class of abstract Unix socket names */
#define GOHOOK_GLOB_EXACT 1   /* the argument is the prefix */
#define GOHOOK_GLOB_TREE 2    /* the prefix and anything after it */
#define GOHOOK_GLOB_SEGMENT 3 /* the prefix, then no '/', ending with the suffix */
#define GOHOOK_GLOB_SUFFIX 4  /* the prefix, then anything ending with the suffix */
#define GOHOOK_GLOB_DATA 240  /* bytes of an argument the tries can match; longer ones match nothing */
#define GOHOOK_GLOB_ALTS 4    /* globs sharing one literal prefix */
#define GOHOOK_SUFFIX_MAX 16
#define GOHOOK_ADDR_PORTS 8   /* ports per network */
#define GOHOOK_MATCH_TRIES 8  /* nested prefixes tried, longest first */
#define GOHOOK_AT_FDCWD (-100)
#define GOHOOK_NOREG 0xff     /* gohook_hookscope: no such register */
struct gohook_hookscope {
	__u8 arg_class;    /* GOHOOK_AC_* of the reported argument */
	__u8 dirfd_reg;    /* GO_ARG_REGS index of the directory fd the path is relative to; GOHOOK_NOREG: none */
	__u8 second_ptr;   /* a second path's Go string (ptr, len) registers; GOHOOK_NOREG: none */
	__u8 second_len;
	__u8 second_dirfd; /* its directory fd's register; GOHOOK_NOREG: none */
	__u8 second_cap0;  /* capabilities (bit indexes) whose grant (any, or a matching pattern) the second */
	__u8 second_cap1;  /* path needs; GOHOOK_NOCAP: none */
	__u8 pad;
};
struct gohook_globkey {
	__u32 prefixlen; /* bits: 32 for the header, then 8 per byte of data */
	__u16 module;
	__u8 cap;
	__u8 arg_class;  /* GOHOOK_AC_PATH, _ENV, _UNIX, _ABSTRACT */
	__u8 data[GOHOOK_GLOB_DATA];
};
struct gohook_globalt {
	__u32 kind;      /* GOHOOK_GLOB_*; 0: unused */
	__u32 pattern;   /* 1 + the plan's pattern index */
	__u32 suffix_len;
	__u8 suffix[GOHOOK_SUFFIX_MAX];
};
struct gohook_globval {
	__u32 plen;      /* bytes of data in the prefix */
	__s32 lastslash; /* index of the last '/' in the prefix; -1: none (the argument's, when its tail has none) */
	struct gohook_globalt alt[GOHOOK_GLOB_ALTS];
};
struct gohook_addrkey {
	__u32 prefixlen; /* bits: 32 for the header, then the network's (IPv4 as ::ffff:a.b.c.d) */
	__u16 module;
	__u8 cap;
	__u8 pad;
	__u8 addr[16];
};
struct gohook_addrval {
	__u32 prefixlen; /* the key's */
	__u32 any_port;  /* 1 + pattern index of a `*` port; 0: none */
	__u16 ports[GOHOOK_ADDR_PORTS];
	__u32 patterns[GOHOOK_ADDR_PORTS]; /* 1 + pattern index per port; 0: unused */
};
/* A denied call the tracer is to return from (deny_marks, by thread id; lib/deny.h): where the function
 * returns to, the stack pointer after the return, RBP as at the probe, and which hook it was. Mirrored by
 * gohook.bpf.abi.DENYMARK. */
struct gohook_denymark {
	__u64 resume_ip; /* the return address of the hooked call: [RSP] at an entry probe, ip + call_len at a call site */
	__u64 resume_sp; /* RSP once returned: RSP + 8 at an entry probe, RSP at a call site */
	__u64 bp;        /* RBP at the probe (the caller's frame pointer) */
	__u64 bias;      /* load bias: the return plan's addresses are static */
	__u64 probe_ip;  /* run-time address of the probe: the tracer checks the thread stopped right after it */
	__u64 time_ns;   /* bpf_ktime_get_ns() when marked */
	__u32 hook_id;   /* the hook whose return plan applies */
	__u32 tgid;
};

/* One hooked call. frames[] comes last so a record may be cut after nframes
 * entries (the program sends the whole struct: see the end of gohook_run). */
struct gohook_event {
	__u64 time_ns;  /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) when the event is sent */
	__u64 goid;     /* goroutine id, 0 when unknown */
	__u64 bias;     /* load bias: runtime address - static address (0 unless PIE) */
	__u64 cgroup_id; /* bpf_get_current_cgroup_id(): the cgroup v2 id (its directory's inode number) */
	__u32 pid;      /* thread group id */
	__u32 tid;      /* thread id */
	__u32 hook_id;  /* gohook.plan.HookPoint.hook_id */
	__u32 capability; /* capability bit index (after any FlagRule) */
	__u32 flags;    /* GOHOOK_F_* */
	__u16 module;   /* responsible module id (0: std / unattributed) */
	__u8 decision;  /* GOHOOK_ALLOW / _DENY / _AUDIT / _ERROR */
	__u8 arg_kind;  /* GOHOOK_ARG_* */
	__u16 arg_len;  /* valid bytes in arg[] */
	__u16 nframes;  /* valid entries in frames[] */
	__u32 pattern;  /* GOHOOK_F_ARG_SCOPED: 1 + index of the plan's argument pattern that allowed the call; 0: none */
	char arg[GOHOOK_ARG_MAX];
	__u64 frames[GOHOOK_MAX_FRAMES]; /* runtime return addresses, innermost first */
};

#endif /* GOHOOK_H */
