/* exechold.h: what exechold.bpf.c and gohook/bpf/exechold.py share (issue 16, `gohook agent`).
 *
 * Constants and plain structs only (no map access, no kernel header): bcc
 * compiles it into exechold.bpf.c through -I gohook/bpf/c, gcc compiles the
 * structs for the host in tests/bpf/test_exechold.py, and exechold.py mirrors
 * every value here (the same test compares them).
 */
#ifndef GOHOOK_EXECHOLD_H
#define GOHOOK_EXECHOLD_H

/* verdicts (value of the `verdicts` map): the agent's answer for one file */
#define GOHOOK_EH_VERDICT_IGNORE 1  /* not a binary the agent enforces: it runs unheld */
#define GOHOOK_EH_VERDICT_COVERED 2 /* probed: its uprobes cover it from its first instruction */

/* slots of the `config` array (u64 each) */
#define GOHOOK_EH_CFG_HOLD_UNKNOWN 0 /* nonzero: hold every exec of a file without a verdict */
#define GOHOOK_EH_CFG_AGENT_TGID 1   /* the agent's process id (initial pid namespace): never held, nor its children */
#define GOHOOK_EH_CFG_SCOPED 2       /* nonzero: hold only tasks under the cgroup in `scope` slot 0 */
#define GOHOOK_EH_CFG_NAMES 3        /* how many names `names` holds (nonzero: names mode is on) */
#define GOHOOK_EH_NCONFIG 4

/* slots of the `counters` array (u64 each) */
#define GOHOOK_EH_CNT_EXECS 0         /* execs looked at (in scope, not the agent's) */
#define GOHOOK_EH_CNT_KNOWN 1         /* ... whose file has a verdict: not held */
#define GOHOOK_EH_CNT_HELD 2          /* processes stopped (SIGSTOP sent) */
#define GOHOOK_EH_CNT_LOST 3          /* held, but the ring buffer was full: no event (the process stays stopped) */
#define GOHOOK_EH_CNT_SIGNAL_FAILED 4 /* bpf_send_signal failed: the process runs unheld (its event says so) */
#define GOHOOK_EH_CNT_UNREADABLE 5    /* the exe file could not be read: held without a key (fail closed) */
#define GOHOOK_EH_CNT_SCOPE_ERROR 6   /* bpf_current_task_under_cgroup failed: not held */
#define GOHOOK_EH_NCOUNTERS 7

/* flags of an event */
#define GOHOOK_EH_FLAG_NOKEY 1 /* key is all zero: current->mm->exe_file could not be read */

#define GOHOOK_EH_NAME_LEN 64      /* `names` key: the exe file's basename, NUL-padded */
#define GOHOOK_EH_COMM_LEN 16      /* TASK_COMM_LEN */
#define GOHOOK_EH_FILENAME_LEN 256 /* the tracepoint's filename (as passed to execve), truncated */

#define GOHOOK_EH_SIGSTOP 19
#define GOHOOK_EH_CTIME_NSEC_MASK 0x7fffffff /* ~I_CTIME_QUERIED (bit 31 of inode.i_ctime_nsec, 6.13+) */

/* a file, as the kernel knows it: device (kernel encoding MKDEV: major << 20 | minor), inode number and
 * the inode's change time. The ctime makes a reused inode number (delete + create) or a file changed in
 * place (write, chmod, rename updates it) a new key: no old verdict applies to it. */
struct gohook_exec_key {
	u32 dev;
	u32 pad0;
	u64 ino;
	s64 ctime_sec;
	u32 ctime_nsec;
	u32 pad1;
};

struct gohook_exec_name {
	char name[GOHOOK_EH_NAME_LEN];
};

/* one held exec (ring buffer `held`) */
struct gohook_exec_event {
	u32 tgid;
	u32 ppid; /* real_parent's tgid */
	struct gohook_exec_key key;
	u64 ktime_ns; /* bpf_ktime_get_ns: CLOCK_MONOTONIC */
	char comm[GOHOOK_EH_COMM_LEN];
	char filename[GOHOOK_EH_FILENAME_LEN];
	s32 signal_err; /* bpf_send_signal's result: 0, the process is stopped; < 0 (-errno), it is not */
	u32 flags;      /* GOHOOK_EH_FLAG_* */
};

#endif
