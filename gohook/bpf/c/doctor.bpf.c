/* doctor.bpf.c: the program of `gohook doctor`'s live checks (gohook/bpf/selftest.py).
 *
 * bcc compiles it once per doctor run; the checks attach its programs as
 * per-process uprobes on the probe helper's doctor_target
 * (gohook/bpf/probe_helper.py):
 *   doctor_hit   counts hits and records what gohook's stack walks need:
 *                the pid, RSP, R14 (Go's current g) and the return address
 *                at [RSP] read with bpf_probe_read_user; with -DDOCTOR_RINGBUF
 *                it also sends that record through a BPF ring buffer;
 *   doctor_kill  bpf_send_signal(SIGKILL), gohook's enforcement: the helper
 *                must die before the probed function's body runs;
 *   doctor_ctxwrite  writes a result register of its context (only loaded,
 *                never attached): whether the verifier accepts it decides how
 *                a graceful deny (issue 15, `action: error`) returns an error
 *                from a probed function: in BPF, or by ptrace from gohook.
 * Without -DDOCTOR_RINGBUF the program also loads on kernels without ring
 * buffers (before 5.8), so that check can fail on its own.
 *
 * struct doctor_event is mirrored by selftest.DoctorEvent (ctypes); a test
 * compiles this struct with gcc and compares sizes and offsets.
 */

#include <uapi/linux/ptrace.h>

struct doctor_event {
	u32 pid;
	s32 read_err;
	u64 ret;
	u64 sp;
	u64 r14;
};

BPF_ARRAY(hits, u64, 1);
BPF_ARRAY(last, struct doctor_event, 1);
BPF_ARRAY(signal_ret, s64, 1);
#ifdef DOCTOR_RINGBUF
BPF_RINGBUF_OUTPUT(events, 8);
#endif

int doctor_hit(struct pt_regs *ctx)
{
	u32 zero = 0;
	u64 *n = hits.lookup(&zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	struct doctor_event ev = {};
	ev.pid = bpf_get_current_pid_tgid() >> 32;
	ev.sp = ctx->sp;
	ev.r14 = ctx->r14;
	ev.read_err = bpf_probe_read_user(&ev.ret, sizeof(ev.ret), (void *)ctx->sp);
	last.update(&zero, &ev);
#ifdef DOCTOR_RINGBUF
	events.ringbuf_output(&ev, sizeof(ev), 0);
#endif
	return 0;
}

int doctor_kill(struct pt_regs *ctx)
{
	u32 zero = 0;
	s64 r = bpf_send_signal(9);
	signal_ret.update(&zero, &r);
	return 0;
}

int doctor_ctxwrite(struct pt_regs *ctx)
{
	ctx->ax = (u64)-1; /* what a denied call would return */
	return 0;
}
