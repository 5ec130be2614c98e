/* syscall_trace.bpf.c: the "trace every syscall" alternative to gohook, for
 * the performance evaluation (bench/evaluate.py, docs/performance.md).
 *
 * The design peers use (GoLeash and others): one program on the
 * raw_syscalls:sys_enter tracepoint (attached as a raw tracepoint, the
 * cheapest way to run on it) that
 *   1. returns at once unless the calling process is one of the targets (a
 *      hash lookup that every syscall of every process on the machine pays);
 *   2. reads the user registers saved at syscall entry and walks the user
 *      stack: the return address at [RSP] (Go's syscall stubs have no frame),
 *      then the frame-pointer chain ret = [fp+8], fp = [fp], one
 *      bpf_probe_read_user per frame, until the first return address whose
 *      range (the range table gohook's planner builds, gohook/bpf/render.py)
 *      names a non-std module, runtime.goexit, fp == 0, an address outside the
 *      Go text, or ST_MAX_FRAMES frames;
 *   3. charges the syscall to that module and, when the syscall number maps to
 *      a capability (syscall_caps), checks the module's allowed mask; audit
 *      only: a violation is counted and reported through the ring buffer, the
 *      syscall is never stopped.
 * ST_WALK_ALL=0 walks only for syscalls that map to a capability (the cheaper
 * variant: a syscall that needs no decision costs the filter only).
 *
 * Constants come from bench/perfeval/systrace.py as -D defines (defaults: an empty
 * plan). Compiled by bcc.
 */
#include <uapi/linux/ptrace.h>
#include <linux/types.h>

#ifndef ST_TEXT_START
#define ST_TEXT_START 0ULL /* static vaddr of the Go text (runtime.text) */
#endif
#ifndef ST_TEXT_SIZE
#define ST_TEXT_SIZE 0ULL
#endif
#ifndef ST_GOEXIT_START
#define ST_GOEXIT_START 0ULL /* static vaddr of runtime.goexit */
#endif
#ifndef ST_GOEXIT_SIZE
#define ST_GOEXIT_SIZE 0ULL
#endif
#ifndef ST_NRANGES
#define ST_NRANGES 1
#endif
#ifndef ST_NPAGES
#define ST_NPAGES 1
#endif
#ifndef ST_SEARCH_STEPS
#define ST_SEARCH_STEPS 1
#endif
#ifndef ST_NMODULES
#define ST_NMODULES 0
#endif
#ifndef ST_MAX_FRAMES
#define ST_MAX_FRAMES 64 /* walk bound */
#endif
#ifndef ST_MAX_PIDS
#define ST_MAX_PIDS 64
#endif
#ifndef ST_NSYSCALLS
#define ST_NSYSCALLS 512 /* entries of syscall_caps */
#endif
#ifndef ST_WALK_ALL
#define ST_WALK_ALL 1 /* 1: attribute every syscall; 0: only those with a capability */
#endif
#ifndef ST_RINGBUF_PAGES
#define ST_RINGBUF_PAGES 16
#endif

/* counters (index) */
#define ST_C_SYSCALLS 0   /* syscalls of target processes */
#define ST_C_WALKED 1     /* syscalls whose stack was walked */
#define ST_C_FRAMES 2     /* frames read, summed */
#define ST_C_ATTRIBUTED 3 /* walks that found a non-std module */
#define ST_C_CHECKED 4    /* syscalls with a capability, decided */
#define ST_C_VIOLATIONS 5 /* decided and not allowed (audit: only reported) */
#define ST_C_LOST 6       /* violation events dropped: ring buffer full */
#define ST_NCOUNTERS 7

/* A violation: all u64, so the layout needs no padding rules (decoded in bench/perfeval/systrace.py). */
struct st_event {
	__u64 time_ns;
	__u64 pid_tgid;
	__u64 nr;       /* syscall number */
	__u64 module;   /* responsible module id */
	__u64 capbits;  /* capabilities the syscall needs */
	__u64 ret;      /* return address of the attributed frame */
};

BPF_HASH(targets, __u32, __u8, ST_MAX_PIDS);       /* tgid -> 1 */
BPF_ARRAY(range_start, __u32, ST_NRANGES);         /* as gohook.bpf.c */
BPF_ARRAY(range_mods, __u64, ST_NRANGES);
BPF_ARRAY(page_first, __u32, ST_NPAGES + 1);
BPF_ARRAY(module_mask, __u64, ST_NMODULES + 1);
BPF_ARRAY(syscall_caps, __u64, ST_NSYSCALLS);      /* syscall number -> capability bits */
BPF_PERCPU_ARRAY(counters, __u64, ST_NCOUNTERS);
BPF_RINGBUF_OUTPUT(events, ST_RINGBUF_PAGES);

static __always_inline void st_count(__u32 which, __u64 n)
{
	__u64 *v = counters.lookup(&which);
	if (v)
		*v += n;
}

/* The range holding text offset off: gohook_lookup of gohook.bpf.c. */
static __always_inline __u32 st_lookup(__u32 off)
{
	__u32 page = off >> 12, next = page + 1;
	__u32 *plo = page_first.lookup(&page);
	__u32 *phi = page_first.lookup(&next);
	if (!plo || !phi)
		return 0;
	__u32 lo = *plo, hi = *phi;
	for (int i = 0; i < ST_SEARCH_STEPS; i++) {
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

/* Module of return address ret: 0 for std; -1 when the walk must stop here. */
static __always_inline int st_module(__u64 ret)
{
	__u64 pc = ret - 1; /* static addresses: the loader accepts only non-PIE targets */
	__u64 off = pc - ST_TEXT_START;
	if (off >= ST_TEXT_SIZE || pc - ST_GOEXIT_START < ST_GOEXIT_SIZE)
		return -1;
	__u32 idx = st_lookup((__u32)off);
	__u64 *pm = range_mods.lookup(&idx);
	__u64 mods = pm ? *pm : 0;
	__u32 m = mods & 0xffff; /* innermost logical frame, else the first non-std one */
	if (!m)
		m = (mods >> 16) & 0xffff;
	return m;
}

int st_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (!targets.lookup(&tgid))
		return 0;
	st_count(ST_C_SYSCALLS, 1);
	__u64 nr = ctx->args[1];
	__u32 key = nr;
	__u64 *pc = syscall_caps.lookup(&key);
	__u64 caps = pc ? *pc : 0;
	if (!ST_WALK_ALL && !caps)
		return 0;

	struct pt_regs regs = {};
	if (bpf_probe_read_kernel(&regs, sizeof(regs), (void *)ctx->args[0]))
		return 0;
	st_count(ST_C_WALKED, 1);
	__u64 ret = 0, fp = regs.bp, pair[2];
	int module = 0;
	__u32 n = 0;
	if (bpf_probe_read_user(&ret, sizeof(ret), (void *)regs.sp) == 0) {
		n = 1;
		module = st_module(ret);
	}
	for (int i = 0; i < ST_MAX_FRAMES - 1 && module == 0 && n; i++) {
		if (fp == 0 || bpf_probe_read_user(pair, sizeof(pair), (void *)fp))
			break;
		ret = pair[1];
		fp = pair[0];
		n++;
		module = st_module(ret);
	}
	st_count(ST_C_FRAMES, n);
	if (module > 0)
		st_count(ST_C_ATTRIBUTED, 1);
	else
		module = 0;
	if (!caps)
		return 0;
	st_count(ST_C_CHECKED, 1);
	__u32 m = module;
	__u64 *pmask = module_mask.lookup(&m);
	if (!m || (pmask && (*pmask & caps) == caps))
		return 0; /* unattributed (std only) or allowed */
	st_count(ST_C_VIOLATIONS, 1);
	struct st_event ev = {bpf_ktime_get_ns(), pid_tgid, nr, m, caps, ret};
	if (events.ringbuf_output(&ev, sizeof(ev), 0))
		st_count(ST_C_LOST, 1);
	return 0;
}
