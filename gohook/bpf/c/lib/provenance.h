/* lib/provenance.h: goroutines: their ids, and goroutine provenance.
 *
 * A goroutine started by a module, directly (`go os.Remove(p)`) or through
 * the standard library on its behalf (net/http's dialing goroutine), may run
 * with no module frame on its stack. runtime.newproc switches to the
 * thread's system stack, where runtime.newproc.func1 gets the new g from
 * runtime.newproc1 and passes it to runtime.runqput. The "created" program
 * (gohook_created, one per CREATED probe), on that `call runtime.runqput`
 * (RBX: the new g; a CALL is emulated by uprobes) or, when the planner did
 * not find it, on newproc1's RET instruction(s) (RAX; single-stepped,
 * dearer; never a uretprobe on Go code), walks the frame pointers from
 * newproc.func1's frame: runtime.systemstack keeps the goroutine's frame
 * pointer, so the chain runs on into the creator's stack. Its innermost
 * non-std module is what the new goroutine inherits, else what the creator
 * inherited itself (the creator is g0.m.curg). A hooked call whose stack
 * holds no non-std frame (nor a trusted module's) then falls back to its
 * goroutine's record in `goroutines` (gohook_provenance), else (no record at
 * all) to its creator's record through g.parentGoid (Go 1.21+), else to the
 * module of its go statement (g.gopc: covers goroutines created before
 * gohook attached). So a goroutine whose creator has a record of its own
 * needs none (no map update: most goroutines the standard library starts,
 * one per request in net/http); a record of 0 stops the parent lookup (a
 * trusted creator). Offsets of runtime.g fields are per Go release
 * (gohook.sites.goruntime), rendered as GOHOOK_*_OFFSET.
 */
#ifndef GOHOOK_LIB_PROVENANCE_H
#define GOHOOK_LIB_PROVENANCE_H

#include "gohook.h"
#include "lib/config.h"
#include "lib/maps.h"
#include "lib/attribution.h"
#include "lib/walk.h"

/* One word of user memory (0 when it cannot be read). */
static __always_inline __u64 gohook_read_u64(__u64 addr)
{
	__u64 v = 0;
	if (bpf_probe_read_user(&v, sizeof(v), (void *)addr))
		return 0;
	return v;
}

/* The id of the goroutine whose g is in R14 (0: unknown). */
static __always_inline __u64 gohook_goid(struct gohook_regs *r)
{
	return GOHOOK_GOID_OFFSET && r->r14 ? gohook_read_u64(r->r14 + GOHOOK_GOID_OFFSET) : 0;
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
#if GOHOOK_SENTINEL || GOHOOK_FILEOPEN || GOHOOK_GUARD /* lib/fileopen.h and lib/guard.h judge them too */
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
#endif

#endif /* GOHOOK_LIB_PROVENANCE_H */
