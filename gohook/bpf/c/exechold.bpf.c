/* exechold.bpf.c: hold a new process before its first instruction until the agent has probed its file
 * (issue 16, `gohook agent`; loaded by gohook/bpf/exechold.py, constants in exechold.h).
 *
 * Tracepoint sched:sched_process_exec runs in the exec'ing task after the point of no return: the new
 * image is mapped (current->mm->exe_file is the new file) and no instruction of it has run. For that
 * task:
 *
 *   - outside the scope (config SCOPED and not under the cgroup in `scope`), the agent itself (config
 *     AGENT_TGID) or a child of the agent (real_parent's tgid): nothing;
 *   - key = {exe_file->f_inode->i_sb->s_dev, i_ino, the inode's ctime}: a key in `verdicts` (IGNORE or
 *     COVERED) is not held (a COVERED file's uprobes, attached to the file, fire from its first
 *     instruction; an IGNOREd file runs as it is);
 *   - otherwise, when config HOLD_UNKNOWN is set or the file's basename (f_path.dentry->d_name) is in
 *     `names`: bpf_send_signal(SIGSTOP), then an event in the ring buffer `held`. The signal is
 *     delivered on the way back to user space, before the new image's first instruction; the agent
 *     probes the file, stores its verdict and sends SIGCONT.
 *
 * Fail-closed choices: an exe file that cannot be read (no key) is held when holding applies at all
 * (flag NOKEY; counter UNREADABLE), in names mode too; a full ring buffer leaves the process stopped without an event
 * (counter LOST: the agent must look for stopped processes then). A basename longer than 63 bytes is
 * compared on its first 63 (more holds, never fewer). bpf_send_signal failing (counter SIGNAL_FAILED,
 * the event's signal_err) is the one way a process runs unheld: the agent must act on that event.
 *
 * Kernel struct offsets come from the running kernel's BTF (gohook/bpf/exechold.py, GOHOOK_EH_KO_*
 * defines): bcc compiles against other kernel headers here.
 */

#include <uapi/linux/ptrace.h>
#include "exechold.h"

#if !defined(GOHOOK_EH_KO_TASK_MM) || !defined(GOHOOK_EH_KO_TASK_REAL_PARENT) || \
	!defined(GOHOOK_EH_KO_TASK_TGID) || !defined(GOHOOK_EH_KO_MM_EXE_FILE) || \
	!defined(GOHOOK_EH_KO_FILE_INODE) || !defined(GOHOOK_EH_KO_FILE_DENTRY) || \
	!defined(GOHOOK_EH_KO_DENTRY_NAME) || !defined(GOHOOK_EH_KO_INODE_INO) || \
	!defined(GOHOOK_EH_KO_INODE_SB) || !defined(GOHOOK_EH_KO_SB_DEV) || \
	!defined(GOHOOK_EH_KO_INODE_CTIME_SEC) || !defined(GOHOOK_EH_KO_INODE_CTIME_NSEC)
#error "exechold.bpf.c needs the GOHOOK_EH_KO_* kernel offsets (gohook/bpf/exechold.py passes them from BTF)"
#endif

#ifndef GOHOOK_EH_MAX_VERDICTS
#define GOHOOK_EH_MAX_VERDICTS 65536
#endif
#ifndef GOHOOK_EH_MAX_NAMES
#define GOHOOK_EH_MAX_NAMES 1024
#endif
#ifndef GOHOOK_EH_RINGBUF_PAGES
#define GOHOOK_EH_RINGBUF_PAGES 64
#endif

BPF_HASH(verdicts, struct gohook_exec_key, u8, GOHOOK_EH_MAX_VERDICTS);
BPF_HASH(names, struct gohook_exec_name, u8, GOHOOK_EH_MAX_NAMES);
BPF_ARRAY(config, u64, GOHOOK_EH_NCONFIG);
BPF_ARRAY(counters, u64, GOHOOK_EH_NCOUNTERS);
BPF_CGROUP_ARRAY(scope, 1);
BPF_RINGBUF_OUTPUT(held, GOHOOK_EH_RINGBUF_PAGES);

static __always_inline u64 eh_config(u32 slot)
{
	u64 *v = config.lookup(&slot);
	return v ? *v : 0;
}

static __always_inline void eh_count(u32 slot)
{
	u64 *n = counters.lookup(&slot);
	if (n)
		__sync_fetch_and_add(n, 1);
}

static __always_inline void *eh_ptr(void *base, u32 off)
{
	void *p = 0;
	if (base)
		bpf_probe_read_kernel(&p, sizeof(p), (char *)base + off);
	return p;
}

/* the exe file's key and its dentry (0 when current->mm->exe_file cannot be read) */
static __always_inline void *eh_exe_key(void *task, struct gohook_exec_key *key)
{
	void *file = eh_ptr(eh_ptr(task, GOHOOK_EH_KO_TASK_MM), GOHOOK_EH_KO_MM_EXE_FILE);
	void *inode = eh_ptr(file, GOHOOK_EH_KO_FILE_INODE);
	void *sb = eh_ptr(inode, GOHOOK_EH_KO_INODE_SB);
	if (!sb)
		return 0;
	if (bpf_probe_read_kernel(&key->dev, sizeof(key->dev), (char *)sb + GOHOOK_EH_KO_SB_DEV) ||
	    bpf_probe_read_kernel(&key->ino, sizeof(key->ino), (char *)inode + GOHOOK_EH_KO_INODE_INO) ||
	    bpf_probe_read_kernel(&key->ctime_sec, sizeof(key->ctime_sec),
				  (char *)inode + GOHOOK_EH_KO_INODE_CTIME_SEC) ||
	    /* u32 on 6.11+ (i_ctime_nsec); the low half of timespec64.tv_nsec (little-endian) before */
	    bpf_probe_read_kernel(&key->ctime_nsec, sizeof(key->ctime_nsec),
				  (char *)inode + GOHOOK_EH_KO_INODE_CTIME_NSEC)) {
		__builtin_memset(key, 0, sizeof(*key));
		return 0;
	}
	/* multigrain timestamps (6.13+) keep a flag in bit 31 of i_ctime_nsec (I_CTIME_QUERIED: someone
	 * stat()ed the inode since its last change); inode_get_ctime_nsec() masks it, so does this */
	key->ctime_nsec &= GOHOOK_EH_CTIME_NSEC_MASK;
	return eh_ptr(file, GOHOOK_EH_KO_FILE_DENTRY);
}

TRACEPOINT_PROBE(sched, sched_process_exec)
{
	if (eh_config(GOHOOK_EH_CFG_SCOPED)) {
		int under = scope.check_current_task(0);
		if (under < 0) {
			eh_count(GOHOOK_EH_CNT_SCOPE_ERROR);
			return 0;
		}
		if (!under)
			return 0;
	}
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	u32 agent = (u32)eh_config(GOHOOK_EH_CFG_AGENT_TGID);
	void *task = (void *)bpf_get_current_task();
	u32 ppid = 0;
	bpf_probe_read_kernel(&ppid, sizeof(ppid),
			      (char *)eh_ptr(task, GOHOOK_EH_KO_TASK_REAL_PARENT) + GOHOOK_EH_KO_TASK_TGID);
	if (agent && (tgid == agent || ppid == agent))
		return 0;
	eh_count(GOHOOK_EH_CNT_EXECS);

	struct gohook_exec_key key = {};
	void *dentry = eh_exe_key(task, &key);
	u32 flags = 0;
	if (!dentry) {
		flags |= GOHOOK_EH_FLAG_NOKEY;
	} else if (verdicts.lookup(&key)) {
		eh_count(GOHOOK_EH_CNT_KNOWN);
		return 0;
	}
	if (!eh_config(GOHOOK_EH_CFG_HOLD_UNKNOWN)) {
		if (!eh_config(GOHOOK_EH_CFG_NAMES))
			return 0;
		if (!dentry)
			goto hold; /* names mode, but no name to compare: fail closed */
		struct gohook_exec_name name = {};
		bpf_probe_read_kernel_str(name.name, sizeof(name.name), eh_ptr(dentry, GOHOOK_EH_KO_DENTRY_NAME));
		if (!names.lookup(&name))
			return 0;
	}
hold:
	if (flags & GOHOOK_EH_FLAG_NOKEY)
		eh_count(GOHOOK_EH_CNT_UNREADABLE);

	s32 err = bpf_send_signal(GOHOOK_EH_SIGSTOP);
	if (err)
		eh_count(GOHOOK_EH_CNT_SIGNAL_FAILED);
	else
		eh_count(GOHOOK_EH_CNT_HELD);

	struct gohook_exec_event *ev = held.ringbuf_reserve(sizeof(struct gohook_exec_event));
	if (!ev) {
		eh_count(GOHOOK_EH_CNT_LOST);
		return 0;
	}
	ev->tgid = tgid;
	ev->ppid = ppid;
	ev->key = key;
	ev->ktime_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	ev->filename[0] = 0;
	bpf_probe_read_kernel_str(ev->filename, sizeof(ev->filename),
				  (char *)args + (args->data_loc_filename & 0xFFFF));
	ev->signal_err = err;
	ev->flags = flags;
	held.ringbuf_submit(ev, 0);
	return 0;
}
