/* lib/fileopen.h: capabilities that a file open carries by what the opened file is (issue 12 §2).
 *
 * A module granted `files.read` must not read the environment through
 * /proc/self/environ, nor write its own code through /proc/self/mem. Matching
 * path strings at the Go openat hook cannot decide that: relative paths after
 * chdir("/proc/self"), openat with a directory descriptor of /proc/self,
 * /proc/thread-self, /proc/self/task/TID/environ, /proc/PID/environ,
 * symlinks, `//` and `..` all name the same file. So the decision is made
 * from the file the kernel actually opened, at the exit of every open system
 * call (syscalls:sys_exit_{open,openat,openat2,creat}: per-syscall
 * tracepoints, which run only for their own system call; kprobes and
 * fentry are not available on this kernel, see ../shared/REFERENCE.md), for
 * processes of the binary only (`targets`, filled by the goroutine-created
 * probe and by the loader for --pid):
 *
 *   the returned descriptor -> current->files->fdt->fd[ret] -> struct file;
 *   file->f_inode->i_sb->s_magic: procfs (0x9fa0), or a file system of kernel state (sysfs 0x62656572,
 *   cgroup v1/v2, debugfs, tracefs, securityfs), else nothing to decide;
 *   file->f_path.dentry->d_name.name and file->f_mode:
 *     procfs "environ" (any mode)                 -> env.read   (/proc/PID/environ, .../task/TID/environ)
 *     procfs "mem" opened for writing             -> tamper     (/proc/PID/mem: code and probes writable)
 *     any other such file opened for writing     -> system.modify (/proc/sys/*, /proc/PID/oom_score_adj,
 *                                                   attr/*, uid_map, /sys/..., cgroup.procs, memory.max,
 *                                                   tracefs and debugfs knobs: process or system state)
 *   anything opened read-only other than environ   -> no capability beyond the open's own files.read.
 *
 * Every kernel struct offset comes from the running kernel's BTF (gohook/bpf/btf.py, GOHOOK_KO_*
 * defines): the installed headers are of another kernel and their offsets are wrong here.
 *
 * Attribution is the sentinel's: the user registers saved at system-call entry
 * (bpf_task_pt_regs of the current task: at syscall exit they still hold the
 * user state, ip right after the `syscall` instruction) start the same
 * frame-pointer walk, and gohook_run (lib/decide.h) decides, kills and reports
 * exactly as for a hook (kind SYSCALL; the event's function is
 * `syscall:openat`, its argument the path as the caller passed it). A SIGKILL
 * sent here is delivered when the open returns to user space: the descriptor
 * exists, but no instruction of the process runs again, so no read(2) of the
 * file ever happens. That is what makes this blocking.
 *
 * Not covered here (other issue 12 sections): descriptors obtained without
 * an open system call (io_uring's IORING_OP_OPENAT: the `io_uring`
 * capability; pidfd_getfd: `process.debug`; SCM_RIGHTS from another process
 * of the binary, which was judged at its own open). A thread of the same
 * process that replaces the descriptor number between the open's fd_install
 * and this tracepoint (dup2 over it) makes this program see the other file;
 * the copy it would need to keep (dup) must be taken inside that same window.
 */
#ifndef GOHOOK_LIB_FILEOPEN_H
#define GOHOOK_LIB_FILEOPEN_H

#include "gohook.h"
#include "lib/config.h"
#include "lib/maps.h"
#include "lib/decide.h"


#if GOHOOK_FILEOPEN

#define GOHOOK_PROC_SUPER_MAGIC 0x9fa0ULL      /* include/uapi/linux/magic.h PROC_SUPER_MAGIC */
#define GOHOOK_SYSFS_MAGIC 0x62656572ULL       /* SYSFS_MAGIC (securityfs mounts report it too, on 6.18) */
#define GOHOOK_CGROUP_MAGIC 0x27e0ebULL        /* CGROUP_SUPER_MAGIC (v1) */
#define GOHOOK_CGROUP2_MAGIC 0x63677270ULL     /* CGROUP2_SUPER_MAGIC */
#define GOHOOK_DEBUGFS_MAGIC 0x64626720ULL     /* DEBUGFS_MAGIC */
#define GOHOOK_TRACEFS_MAGIC 0x74726163ULL     /* TRACEFS_MAGIC */
#define GOHOOK_SECURITYFS_MAGIC 0x73636673ULL  /* SECURITYFS_MAGIC */
#define GOHOOK_FMODE_WRITE 0x2                 /* FMODE_WRITE */
#define GOHOOK_FO_NAME 8                       /* bytes of the file name compared ("environ\0") */

/* The capability found, through map memory: the verifier does not track values there, so the walk
 * after it is verified once, not once per capability the classification can return (measured on the
 * worst variant of tests/bpf/test_verifier_budget.py: 330,256 verified instructions with the constant,
 * 106,051 through the map). */
BPF_PERCPU_ARRAY(fileopen_cap, __u32, 1);

/* The fields of a syscalls:sys_exit_* tracepoint record (its format file): common fields, the number, the
 * return value. */
struct gohook_sys_exit_args {
	__u64 common;
	__s32 nr;
	__s32 pad;
	__s64 ret;
};

static __always_inline __u64 gohook_kread(__u64 addr)
{
	__u64 v = 0;
	bpf_probe_read_kernel(&v, sizeof(v), (void *)addr);
	return v;
}

/* The capability bit index an open of file carries by itself, or -1. */
static __always_inline int gohook_file_capability(__u64 file)
{
	__u64 inode = gohook_kread(file + GOHOOK_KO_FILE_INODE);
	__u64 sb = inode ? gohook_kread(inode + GOHOOK_KO_INODE_SB) : 0;
	__u64 magic = sb ? gohook_kread(sb + GOHOOK_KO_SB_MAGIC) : 0;
	/* the kernel's state files: sysfs, cgroup (v1, v2), debugfs, tracefs, securityfs */
	int state = magic == GOHOOK_SYSFS_MAGIC || magic == GOHOOK_CGROUP_MAGIC || magic == GOHOOK_CGROUP2_MAGIC ||
		    magic == GOHOOK_DEBUGFS_MAGIC || magic == GOHOOK_TRACEFS_MAGIC || magic == GOHOOK_SECURITYFS_MAGIC;
	if (magic != GOHOOK_PROC_SUPER_MAGIC && !state)
		return -1;
	__u32 mode = 0;
	bpf_probe_read_kernel(&mode, sizeof(mode), (void *)(file + GOHOOK_KO_FILE_MODE));
	int write = (mode & GOHOOK_FMODE_WRITE) != 0;
	if (magic == GOHOOK_PROC_SUPER_MAGIC) {
		__u64 dentry = gohook_kread(file + GOHOOK_KO_FILE_DENTRY);
		__u64 name = dentry ? gohook_kread(dentry + GOHOOK_KO_DENTRY_NAME) : 0;
		char n[GOHOOK_FO_NAME] = {};
		if (name)
			bpf_probe_read_kernel_str(n, sizeof(n), (void *)name);
		if (n[0] == 'e' && n[1] == 'n' && n[2] == 'v' && n[3] == 'i' && n[4] == 'r' && n[5] == 'o' &&
		    n[6] == 'n' && n[7] == 0)
			return GOHOOK_FO_ENV_READ;
		if (write && n[0] == 'm' && n[1] == 'e' && n[2] == 'm' && n[3] == 0)
			return GOHOOK_FO_TAMPER;
	}
	return write ? GOHOOK_FO_SYSTEM_MODIFY : -1;
}

/* The program's body: the file behind the returned descriptor, its capability, then gohook_run. */
static __always_inline int gohook_fileopen_run(struct gohook_sys_exit_args *ctx)
{
	__s64 fd = ctx->ret;
	if (fd < 0)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u64 *bias = targets.lookup(&tgid);
	if (!bias)
		return 0;
	__u64 task = bpf_get_current_task();
	__u64 files = gohook_kread(task + GOHOOK_KO_TASK_FILES);
	__u64 fdt = files ? gohook_kread(files + GOHOOK_KO_FILES_FDT) : 0;
	if (!fdt)
		return 0;
	__u32 max_fds = 0;
	bpf_probe_read_kernel(&max_fds, sizeof(max_fds), (void *)(fdt + GOHOOK_KO_FDT_MAX_FDS));
	if ((__u64)fd >= max_fds)
		return 0;
	__u64 fds = gohook_kread(fdt + GOHOOK_KO_FDT_FD);
	__u64 file = fds ? gohook_kread(fds + 8 * (__u64)fd) : 0;
	if (!file)
		return 0;
	int cap = gohook_file_capability(file);
	if (cap < 0)
		return 0;
	__u32 zero = 0;
	__u32 *capp = fileopen_cap.lookup(&zero);
	if (!capp)
		return 0;
	*capp = cap;
	__u32 capv = *(volatile __u32 *)capp & 63; /* read back at once (volatile: clang would reuse cap) */
	/* the user registers saved at system-call entry */
	struct pt_regs *kregs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	__u64 ip = 0, sp = 0, bp = 0, r14 = 0, path = 0;
	bpf_probe_read_kernel(&ip, 8, &kregs->ip);
	bpf_probe_read_kernel(&sp, 8, &kregs->sp);
	bpf_probe_read_kernel(&bp, 8, &kregs->bp);
	bpf_probe_read_kernel(&r14, 8, &kregs->r14);
	/* the path argument: open(2) and creat(2) take it first, openat(2) and openat2(2) second */
	if (ctx->nr == 2 || ctx->nr == 85)
		bpf_probe_read_kernel(&path, 8, &kregs->di);
	else
		bpf_probe_read_kernel(&path, 8, &kregs->si);
	struct gohook_call c = {};
	c.pid_tgid = pid_tgid;
	c.capability = capv;
	c.cap2 = capv;
	c.hook_id = GOHOOK_SYSCALL_HOOK | GOHOOK_SYSCALL_OPENED | (__u32)ctx->nr;
	c.kind = GOHOOK_K_SYSCALL;
	c.a0 = path;
	c.arg_kind = GOHOOK_ARG_CSTRING;
	struct gohook_regs r = {.ip = ip, .sp = sp, .bp = bp, .r14 = r14};
	return gohook_run(ctx, &r, &c, *bias, GOHOOK_K_SYSCALL, 0);
}
#endif

#endif /* GOHOOK_LIB_FILEOPEN_H */
