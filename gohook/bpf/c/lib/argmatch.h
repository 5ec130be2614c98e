/* lib/argmatch.h: argument-scoped grants: does the call's argument match one of the module's patterns?
 *
 * A policy may grant a capability for some arguments only (`env.read: ["OTEL_*"]`,
 * `network.connect: ["127.0.0.1:4317"]`, `files.read: ["/etc/acme/**"]`): the module's bit is then
 * in module_scoped, not in module_mask. When the handler (lib/decide.h) finds the charged module
 * lacks the capability but holds it scoped, it fills the event (the argument included) and
 * tail-calls this program (slot GOHOOK_ARGCHECK_SLOT of `handler`), which decides from the captured
 * argument, before the call runs, and kills or reports exactly as the handler would.
 *
 * What matches (gohook.policy.patterns is the reference):
 *   - the hook point must have an entry in hook_scopes (its argument's class); a call whose argument
 *     cannot be matched (an fd, the whole environment, none) matches nothing;
 *   - a truncated or unreadable argument matches nothing;
 *   - paths must be clean: absolute, no "//", no "." or ".." segment, no NUL, at most
 *     GOHOOK_GLOB_DATA bytes, and relative to AT_FDCWD when the call takes a directory fd; anything
 *     else matches nothing (the kernel resolves the path, not gohook);
 *   - a second path (rename, link, symlink target) must be granted too, for each capability in
 *     second_cap[] (any argument, or a matching pattern);
 *   - globs: the longest literal prefix in arg_globs first, then shorter ones (up to
 *     GOHOOK_MATCH_TRIES), each with up to GOHOOK_GLOB_ALTS alternatives (exact, tree, segment +
 *     suffix, suffix);
 *   - addresses: IPv4 as ::ffff:a.b.c.d, the unspecified address (0.0.0.0, ::, none) as ::; the most
 *     specific network in arg_addrs first, its ports, then containing networks; Unix socket paths and
 *     abstract names go to arg_globs with their own classes.
 * The argument is the copy the hook point captured; a goroutine that rewrites the bytes between this
 * check and the kernel's own read wins that race (docs/policy.md, "How the kernel decides").
 */
#ifndef GOHOOK_LIB_ARGMATCH_H
#define GOHOOK_LIB_ARGMATCH_H

#include "gohook.h"
#include "lib/config.h"
#include "lib/maps.h"
#include "lib/argbytes.h"

#if GOHOOK_ARG_RULES

static __always_inline __u64 gohook_scoped(__u32 module)
{
	__u64 *m = module_scoped.lookup(&module);
	return m ? *m : 0;
}

/* Go's integer argument register i (GO_ARG_REGS) of a uprobe's registers, i known only at run time: every
 * register is loaded at its constant offset first (the verifier refuses a load through a computed context
 * pointer, which GOHOOK_REG with a variable index compiles to). */
static __always_inline __u64 gohook_reg_at(struct pt_regs *ctx, __u32 i)
{
	__u64 r[9] = {ctx->ax, ctx->bx, ctx->cx, ctx->di, ctx->si, ctx->r8, ctx->r9, ctx->r10, ctx->r11};
	return i < 9 ? r[i] : 0;
}

/* Whether alternative a of a trie entry with a literal prefix of plen bytes matches data[0..len). */
static __always_inline int gohook_glob_alt(const struct gohook_globalt *a, const __u8 *data, __u32 len, __u32 plen,
					   int last_slash)
{
	__u32 kind = a->kind;
	if (kind == GOHOOK_GLOB_EXACT)
		return len == plen;
	if (kind == GOHOOK_GLOB_TREE)
		return 1;
	if (kind == GOHOOK_GLOB_SEGMENT) {
		if (last_slash >= (int)plen)
			return 0; /* a '/' after the prefix */
	} else if (kind != GOHOOK_GLOB_SUFFIX) {
		return 0;
	}
	__u32 sl = a->suffix_len;
	if (sl > GOHOOK_SUFFIX_MAX || len < plen + sl)
		return 0;
	__u64 diff = 0;
#pragma unroll
	for (__u32 j = 0; j < GOHOOK_SUFFIX_MAX; j++) {
		__u32 at = len - sl + j;
		asm volatile("" : "+r"(at));
		diff |= (__u64)(data[at & (GOHOOK_ARG_MAX - 1)] ^ a->suffix[j]) * GOHOOK_LT(j, sl);
	}
	return !diff;
}

/* The pattern (1 + index) that allows k->data[0..len) for k's module, capability and class; 0: none.
 * last_slash: the index of the last '/' of a path (gohook_clean_tail), -1 for names; first: the entry of the longest prefix when the caller
 * looked it up already (NULL: not yet). */
static __always_inline __u32 gohook_glob_match(struct gohook_globkey *k, __u32 len, int last_slash,
						struct gohook_globval *first)
{
	k->prefixlen = 32 + 8 * len;
	for (int t = 0; t < GOHOOK_MATCH_TRIES; t++) {
		struct gohook_globval *v = t == 0 && first ? first : arg_globs.lookup(k);
		if (!v)
			return 0;
		__u32 plen = v->plen;
#pragma unroll
		for (int a = 0; a < GOHOOK_GLOB_ALTS; a++) {
			if (gohook_glob_alt(&v->alt[a], k->data, len, plen, last_slash))
				return v->alt[a].pattern;
		}
		if (plen == 0 || plen > len)
			return 0;
		k->prefixlen = 32 + 8 * (plen - 1);
	}
	return 0;
}

/* Prepare the trie key for a path or a name (cls) src[0..len) of module's capability cap: the key and
 * w->len; the glob step (gohook_glob_step) checks it. Returns 0 when it can match nothing. */
static __always_inline int gohook_string_prepare(struct gohook_argwork *w, const __u8 *src, __u32 len, __u32 module,
						 __u32 cap, __u32 cls)
{
	struct gohook_globkey *k = &w->gk;
	if (len > GOHOOK_GLOB_DATA)
		return 0;
	__builtin_memcpy(k->data, src, GOHOOK_GLOB_DATA);
	k->module = module;
	k->cap = cap;
	k->arg_class = cls;
	w->len = len;
	return 1;
}

/* The pattern that allows address k->addr, port for k's module and capability; 0: none. */
static __always_inline __u32 gohook_addr_match(struct gohook_addrkey *k, __u16 port)
{
	k->prefixlen = 32 + 128;
#pragma unroll
	for (int t = 0; t < GOHOOK_MATCH_TRIES; t++) {
		struct gohook_addrval *v = arg_addrs.lookup(k);
		if (!v)
			return 0;
#pragma unroll
		for (int i = 0; i < GOHOOK_ADDR_PORTS; i++) {
			if (v->patterns[i] && v->ports[i] == port)
				return v->patterns[i];
		}
		if (v->any_port)
			return v->any_port;
		if (v->prefixlen <= 32)
			return 0;
		k->prefixlen = v->prefixlen - 1;
	}
	return 0;
}

#define GOHOOK_AF_UNIX 1
#define GOHOOK_AF_INET 2
#define GOHOOK_AF_INET6 10

/* A Unix socket name at arg[off..len): a path, or (first byte NUL, or '@' in a Go UnixAddr.Name) an
 * abstract name; copied to w->second, then its trie key prepared. Returns 0 when it can match nothing. */
static __always_inline int gohook_unix_prepare(struct gohook_argwork *w, const __u8 *arg, __u32 off, __u32 len,
					       __u32 module, __u32 cap, int nul_terminated)
{
	if (len <= off)
		return 0;
	__u32 cls = GOHOOK_AC_UNIX;
	__u8 first = arg[off & (GOHOOK_ARG_MAX - 1)];
	if (first == 0 || first == '@') {
		cls = GOHOOK_AC_ABSTRACT;
		off++;
	}
	__u32 n = len - off;
	if (n > GOHOOK_GLOB_DATA)
		return 0;
	/* a path's sun_path ends at its first NUL: count the bytes before it */
	__u64 stop = 0, upto = 0, cut = nul_terminated && cls == GOHOOK_AC_UNIX;
	for (__u32 j = 0; j < GOHOOK_GLOB_DATA; j++) { /* (no jump: see lib/argbytes.h) */
		__u32 at = off + j;
		asm volatile("" : "+r"(at));
		__u8 ch = arg[at & (GOHOOK_ARG_MAX - 1)];
		stop |= GOHOOK_IS0(ch) & cut;
		upto += (1 - stop) & GOHOOK_LT(j, n);
		w->second[j & (GOHOOK_ARG_MAX - 1)] = ch;
	}
	return gohook_string_prepare(w, w->second, upto, module, cap, cls);
}

#define GOHOOK_NEED_GLOB 0xffffffffu /* gohook_address_prepare: a Unix socket name, its trie key prepared */

/* The address argument of ev (a struct sockaddr, a net.TCPAddr-style IP and port, or a Go UnixAddr name)
 * against the module's address patterns: the pattern that allows it, 0: none, or GOHOOK_NEED_GLOB. */
static __always_inline __u32 gohook_address_prepare(struct gohook_argwork *w, struct gohook_event *ev, __u32 module,
						    __u32 cap)
{
	const __u8 *arg = (const __u8 *)ev->arg;
	__u32 len = ev->arg_len;
	struct gohook_addrkey *k = &w->ak;
	__u16 port = 0;
	__builtin_memset(k->addr, 0, sizeof(k->addr));
	if (ev->arg_kind == GOHOOK_ARG_STRFIELD0)
		return gohook_unix_prepare(w, arg, 0, len, module, cap, 0) ? GOHOOK_NEED_GLOB : 0;
	if (ev->arg_kind == GOHOOK_ARG_SOCKADDR) {
		if (len < 2)
			return 0;
		__u16 family = arg[0] | arg[1] << 8;
		if (family == GOHOOK_AF_UNIX)
			return gohook_unix_prepare(w, arg, 2, len, module, cap, 1) ? GOHOOK_NEED_GLOB : 0;
		if (family == GOHOOK_AF_INET && len >= 8) {
			port = arg[2] << 8 | arg[3];
			k->addr[10] = 0xff;
			k->addr[11] = 0xff;
			__builtin_memcpy(&k->addr[12], &arg[4], 4);
		} else if (family == GOHOOK_AF_INET6 && len >= 24) {
			port = arg[2] << 8 | arg[3];
			__builtin_memcpy(k->addr, &arg[8], 16);
		} else {
			return 0;
		}
	} else if (ev->arg_kind == GOHOOK_ARG_IPPORT) {
		if (len < 25)
			return 0;
		__u8 iplen = arg[0];
		__u64 p = *(__u64 *)&arg[17];
		if (p > 0xffff)
			return 0;
		port = p;
		if (iplen == 4) {
			k->addr[10] = 0xff;
			k->addr[11] = 0xff;
			__builtin_memcpy(&k->addr[12], &arg[1], 4);
		} else if (iplen == 16) {
			__builtin_memcpy(k->addr, &arg[1], 16);
		} else if (iplen) {
			return 0;
		}
	} else {
		return 0;
	}
	/* the unspecified address: 0.0.0.0 (IPv4-mapped) is :: */
	__u64 hi = 0, lo = 0;
	__builtin_memcpy(&hi, &k->addr[0], 8);
	__builtin_memcpy(&lo, &k->addr[8], 8);
	if (!hi && lo == 0xffff0000ULL) /* bytes 10, 11 = 0xff, the rest 0 (little-endian) */
		__builtin_memset(k->addr, 0, sizeof(k->addr));
	k->module = module;
	k->cap = cap;
	k->pad = 0;
	return gohook_addr_match(k, port);
}

/* The end of an argument check: when no pattern allowed the call, the module's action in enforce mode
 * (lib/deny.h; kill when the event or the call slot is not this call's); report (the goroutine id read only
 * then: a read of user memory). */
static __always_inline int gohook_arg_finish(struct pt_regs *ctx, struct gohook_event *ev, __u32 pattern)
{
	__u8 decision = pattern ? GOHOOK_ALLOW : GOHOOK_AUDIT;
	__u32 flags = 0;
	if (!pattern && GOHOOK_ENFORCE) {
		struct gohook_call *c = gohook_slot();
		int mine = ev && c && c->pid_tgid == bpf_get_current_pid_tgid() && ev->tid == (__u32)c->pid_tgid;
		__u64 ret0 = 0;
		if (mine && c->call_len)
			ret0 = ctx->ip + c->call_len;
		else if (mine && bpf_probe_read_user(&ret0, sizeof(ret0), (void *)ctx->sp))
			ret0 = 0;
		decision = gohook_deny(mine ? c : 0, ctx->ip, ctx->sp, ctx->bp, ret0, mine ? ev->bias : 0,
				       mine ? ev->module : 0, &flags);
	}
	if (!ev)
		return 0;
	ev->flags |= GOHOOK_F_ARG_SCOPED | flags;
	ev->pattern = pattern;
	ev->decision = decision;
	if (decision != GOHOOK_ALLOW || GOHOOK_REPORT_ALLOWED) {
		if (!ev->goid) {
			struct gohook_regs r = {.r14 = ctx->r14};
			ev->goid = gohook_goid(&r);
		}
		gohook_output(ev, decision);
	}
	return 0;
}

#if GOHOOK_SHARED_HANDLER
/* The event (scratch), the working memory and the call (calls) of this CPU, when they are this thread's: a
 * slot another run reused is no argument to decide on (fail closed). */
static __always_inline int gohook_arg_state(struct gohook_event **ev, struct gohook_argwork **w,
					    struct gohook_call **c)
{
	__u32 zero = 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	*ev = scratch.lookup(&zero);
	*w = argwork.lookup(&zero);
	*c = gohook_slot();
	return *ev && *w && *c && (*c)->pid_tgid == pid_tgid && (*ev)->tid == (__u32)pid_tgid;
}

/* The glob match of the prepared trie key (w->gk, w->len); then, one capability at a time, the second
 * path's grants (prepared here, matched by program gohook_globmatch, which tail-calls itself); then the
 * decision. Inlined in gohook_argcheck (the first argument) and in gohook_globmatch. */
static __always_inline int gohook_glob_step(struct pt_regs *ctx, struct gohook_event *ev, struct gohook_argwork *w)
{
	__u32 len = w->len, cls = w->gk.arg_class;
	int last = -1;
	struct gohook_globval *first = 0;
	if (cls == GOHOOK_AC_PATH || cls == GOHOOK_AC_UNIX) {
		/* the longest literal prefix first: the argument's bytes up to it are that prefix, clean (the pattern
		 * is), so the byte tests need only the words from 3 bytes before its end (issue 14: the cost of a
		 * path's check was its length) */
		if (len == 0 || len > GOHOOK_GLOB_DATA || w->gk.data[0] != '/')
			return gohook_arg_finish(ctx, ev, 0);
		w->gk.prefixlen = 32 + 8 * len;
		first = arg_globs.lookup(&w->gk);
		if (!first)
			return gohook_arg_finish(ctx, ev, 0);
		__u32 plen = first->plen;
		if (plen > len)
			return gohook_arg_finish(ctx, ev, 0);
		__u64 r = gohook_clean_tail(w->gk.data, len, plen > 3 ? (plen - 3) / 8 : 0);
		if (r & 1)
			return gohook_arg_finish(ctx, ev, 0);
		last = r >> 8 ? (int)(r >> 8) - 1 : first->lastslash; /* none in the tail: the prefix's last */
	} else if (gohook_has_nul(w->gk.data, len)) {
		return gohook_arg_finish(ctx, ev, 0);
	}
	/* through memory: the byte tests' length buckets leave `last` and `len` with different known bounds,
	 * which would make the verifier walk the glob match once per bucket; read back, they are the same
	 * unknown values on every path */
	w->last = last;
	len = *(volatile __u32 *)&w->len;
	last = *(volatile __s32 *)&w->last;
	__u32 p = gohook_glob_match(&w->gk, len, last, first);
	if (!p)
		return gohook_arg_finish(ctx, ev, 0);
	if (!w->pattern)
		w->pattern = p; /* the first argument's pattern names the decision */
	__u32 module = w->module;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		__u32 cap = w->need[i];
		if (cap == GOHOOK_NOCAP)
			continue;
		w->need[i] = GOHOOK_NOCAP;
		cap &= 63;
		if (gohook_mask(module) & (1ULL << cap))
			continue; /* granted for any argument */
		if (!(gohook_scoped(module) & (1ULL << cap)) ||
		    !gohook_string_prepare(w, w->second, w->slen, module, cap, GOHOOK_AC_PATH))
			return gohook_arg_finish(ctx, ev, 0);
		gohook_tail_call(ctx, GOHOOK_GLOBMATCH_SLOT);
		return gohook_arg_finish(ctx, ev, 0);
	}
	return gohook_arg_finish(ctx, ev, w->pattern);
}

/* Program gohook_argcheck (slot GOHOOK_ARGCHECK_SLOT): the hook point's scope, the first argument's trie
 * key and its glob match (or the address decision), the second path read for gohook_globmatch. */
static __always_inline int gohook_argcheck_run(struct pt_regs *ctx)
{
	struct gohook_event *ev;
	struct gohook_argwork *w;
	struct gohook_call *c;
	if (!gohook_arg_state(&ev, &w, &c))
		return gohook_arg_finish(ctx, ev, 0);
	__u32 id = c->hook_id;
	struct gohook_hookscope *hs = hook_scopes.lookup(&id);
	if (!hs || hs->arg_class == GOHOOK_AC_NONE)
		return gohook_arg_finish(ctx, ev, 0);
	__u32 module = ev->module, cap = ev->capability & 63, len = ev->arg_len, cls = hs->arg_class;
	if (!(gohook_scoped(module) & (1ULL << cap)) || (ev->flags & (GOHOOK_F_ARG_TRUNCATED | GOHOOK_F_ARG_FAULT)))
		return gohook_arg_finish(ctx, ev, 0);
	w->module = module;
	w->pattern = 0;
	w->need[0] = GOHOOK_NOCAP;
	w->need[1] = GOHOOK_NOCAP;
	if (hs->second_ptr != GOHOOK_NOREG) {
		/* a second path (rename, link, symlink target): read it now, from the registers the scope names */
		if (hs->second_dirfd != GOHOOK_NOREG && (int)gohook_reg_at(ctx, hs->second_dirfd) != GOHOOK_AT_FDCWD)
			return gohook_arg_finish(ctx, ev, 0);
		__u64 sptr = gohook_reg_at(ctx, hs->second_ptr), slen = gohook_reg_at(ctx, hs->second_len);
		if (!slen || slen > GOHOOK_GLOB_DATA ||
		    bpf_probe_read_user(w->second, slen & (GOHOOK_ARG_MAX - 1), (void *)sptr))
			return gohook_arg_finish(ctx, ev, 0);
		w->slen = slen;
		w->need[0] = hs->second_cap0;
		w->need[1] = hs->second_cap1;
	}
	int ready = 0;
	if (cls == GOHOOK_AC_PATH) {
		if (hs->dirfd_reg != GOHOOK_NOREG && (int)gohook_reg_at(ctx, hs->dirfd_reg) != GOHOOK_AT_FDCWD)
			return gohook_arg_finish(ctx, ev, 0);
		ready = gohook_string_prepare(w, (const __u8 *)ev->arg, len, module, cap, GOHOOK_AC_PATH);
	} else if (cls == GOHOOK_AC_ENV) {
		ready = gohook_string_prepare(w, (const __u8 *)ev->arg, len, module, cap, GOHOOK_AC_ENV);
	} else if (cls == GOHOOK_AC_ADDRESS) {
		__u32 p = gohook_address_prepare(w, ev, module, cap);
		if (p != GOHOOK_NEED_GLOB)
			return gohook_arg_finish(ctx, ev, p); /* (address hook points have no second path) */
		ready = 1;
	}
	if (!ready)
		return gohook_arg_finish(ctx, ev, 0);
	return gohook_glob_step(ctx, ev, w);
}

/* Program gohook_globmatch (slot GOHOOK_GLOBMATCH_SLOT): the glob step of a second path. */
static __always_inline int gohook_globmatch_run(struct pt_regs *ctx)
{
	struct gohook_event *ev;
	struct gohook_argwork *w;
	struct gohook_call *c;
	if (!gohook_arg_state(&ev, &w, &c))
		return gohook_arg_finish(ctx, ev, 0);
	return gohook_glob_step(ctx, ev, w);
}
#endif /* GOHOOK_SHARED_HANDLER */
#endif /* GOHOOK_ARG_RULES */
#endif /* GOHOOK_LIB_ARGMATCH_H */
