/* lib/config.h: the plan constants of the gohook program, each with its default.
 *
 * Every constant that depends on the enforcement plan or on the loader's
 * options is a -D define that gohook/bpf/render.py emits; the defaults here
 * describe an empty plan, so the program also compiles on its own.
 * tests/bpf/test_abi.py checks that every define the renderer emits has a
 * default here (or in gohook.h).
 */
#ifndef GOHOOK_LIB_CONFIG_H
#define GOHOOK_LIB_CONFIG_H

#include "gohook.h"

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
#ifndef GOHOOK_ENFORCE
#define GOHOOK_ENFORCE 0 /* 1: enforce mode: a violation does what its module's action says (module_action) */
#endif
#ifndef GOHOOK_ERROR_ACTION
#define GOHOOK_ERROR_ACTION 0 /* 1: some module's action is error (lib/deny.h hands its denials to the tracer) */
#endif
#ifndef GOHOOK_NHOOKS
#define GOHOOK_NHOOKS 1 /* hook ids 0..GOHOOK_NHOOKS - 1 (hook_deny) */
#endif
#ifndef GOHOOK_KO_TASK_BLOCKED
#define GOHOOK_KO_TASK_BLOCKED 0 /* offset of task_struct.blocked (from BTF); 0: unknown, SIGSYS counts as blocked */
#endif
#ifndef GOHOOK_KO_TASK_PTRACE
#define GOHOOK_KO_TASK_PTRACE 0 /* offsets of task_struct.ptrace, .parent, .tgid (from BTF); 0: unknown */
#define GOHOOK_KO_TASK_PARENT 0
#define GOHOOK_KO_TASK_TGID 0
#endif
#ifndef GOHOOK_TRACER_TGID
#define GOHOOK_TRACER_TGID 0 /* gohook's process id: the thread group of the tracer (action error) */
#endif
#ifndef GOHOOK_STACK_MODE
#define GOHOOK_STACK_MODE 0 /* 0: nearest non-std module decides; 1: every non-std module must allow */
#endif
#ifndef GOHOOK_DENY_UNATTRIBUTED
#define GOHOOK_DENY_UNATTRIBUTED 0 /* 1: a call with no non-std frame (and no provenance) is a violation */
#endif
#ifndef GOHOOK_LEARN_COUNTS
#define GOHOOK_LEARN_COUNTS 0 /* 1: learn mode: every counted call is also counted in learned_calls (lossless) */
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
#ifndef GOHOOK_FILEOPEN
#define GOHOOK_FILEOPEN 0 /* 1: judge opens of procfs/sysfs files (lib/fileopen.h, with the GOHOOK_KO_* offsets) */
#endif
/* lib/fileopen.h: capability bit indexes (render.py, from the plan's capability names) */
#ifndef GOHOOK_FO_ENV_READ
#define GOHOOK_FO_ENV_READ 5
#endif
#ifndef GOHOOK_FO_TAMPER
#define GOHOOK_FO_TAMPER 16
#endif
#ifndef GOHOOK_FO_SYSTEM_MODIFY
#define GOHOOK_FO_SYSTEM_MODIFY 8
#endif
#ifndef GOHOOK_GUARD
#define GOHOOK_GUARD 0 /* 1: the guard tracepoints (lib/guard.h) */
#endif
#ifndef GOHOOK_PIDNS_DEV
#define GOHOOK_PIDNS_DEV 0ULL /* st_dev of gohook's pid namespace (the GOHOOK_T_GUARD test) */
#endif
#ifndef GOHOOK_PIDNS_INO
#define GOHOOK_PIDNS_INO 0ULL /* st_ino of gohook's pid namespace */
#endif
#ifndef GOHOOK_COMPAT_CAP
#define GOHOOK_COMPAT_CAP -1 /* capability bit index a system call through the i386 table needs (tamper); -1: none */
#endif
#ifndef GOHOOK_ARG_RULES
#define GOHOOK_ARG_RULES 0 /* 1: some module holds a capability only for some arguments (lib/argmatch.h) */
#endif
#ifndef GOHOOK_NHOOKSCOPES
#define GOHOOK_NHOOKSCOPES 1 /* entries of hook_scopes: 1 + the largest hook id */
#endif
#ifndef GOHOOK_NGLOBS
#define GOHOOK_NGLOBS 1 /* entries of arg_globs */
#endif
#ifndef GOHOOK_NADDRS
#define GOHOOK_NADDRS 1 /* entries of arg_addrs */
#endif
#ifndef GOHOOK_SYSCALL_CAPBIT
#define GOHOOK_SYSCALL_CAPBIT 0ULL /* bit of the `syscall` capability: what a `syscall` instruction site needs
				    * besides its number's capability (0: none) */
#endif
#ifndef GOHOOK_TABLE_ENTRIES
#define GOHOOK_TABLE_ENTRIES 16384 /* goroutines, marks: LRU hash sizes */
#endif
#ifndef GOHOOK_EXEMPT
#define GOHOOK_EXEMPT /* EXEMPT(start, end) ...: the runtime's own system-call functions (static vaddrs) */
#endif
#ifndef GOHOOK_HOOKS
#define GOHOOK_HOOKS /* HOOK(...), HOOK_CGO(...), HOOK_VALUE(...), HOOK_RAW(...), HOOK_RAW_STACK(...), SITE(...): lib/entry.h */
#endif
#ifndef GOHOOK_HANDLERS
#define GOHOOK_HANDLERS /* HANDLER(kind, direct) ...: the handler programs the hook points use (gohook.bpf.c) */
#endif

#define GOHOOK_EVENT_HEADER_SIZE ((__u64) & ((struct gohook_event *)0)->frames)
#define GOHOOK_CGO_STD 0xffffffffu /* cgo_calls value: a cgo call of the standard library (or a trusted module) */

#endif /* GOHOOK_LIB_CONFIG_H */
