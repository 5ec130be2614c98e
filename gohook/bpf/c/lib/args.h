/* lib/args.h: the capture of a hooked call's argument into the event.
 *
 * The entry program reads the registers a hook's ArgRead names
 * (gohook.plan.model.ArgRead, GOHOOK_REG of gohook.h) into gohook_call.a0/a1;
 * gohook_read_arg turns them into event bytes by the argument kind
 * (GOHOOK_ARG_*): a Go string, a C string, a []string's first element, an
 * integer, a struct sockaddr, a net.TCPAddr-style address, or the first field
 * of a struct. gohook.events.decode reads them back.
 */
#ifndef GOHOOK_LIB_ARGS_H
#define GOHOOK_LIB_ARGS_H

#include "gohook.h"
#include "lib/maps.h"

/* The argument named by the hook's ArgRead, into ev->arg. */
static __always_inline void gohook_read_arg(struct gohook_call *c, struct gohook_event *ev)
{
	__u64 ptr = c->a0, len = c->a1;
	ev->arg_len = 0;
	if (c->arg_kind == GOHOOK_ARG_IPPORT) {
		/* net.TCPAddr / UDPAddr / IPAddr: IP []byte at +0, Port int at +24 (same in Go 1.19-1.27) */
		__u64 f[4];
		if (!ptr || bpf_probe_read_user(f, sizeof(f), (void *)ptr)) {
			if (ptr)
				ev->flags |= GOHOOK_F_ARG_FAULT;
			return;
		}
		__u64 iplen = f[1] > 16 ? 16 : f[1];
		ev->arg[0] = (__u8)iplen;
		iplen &= 31;
		if (iplen && bpf_probe_read_user(&ev->arg[1], iplen, (void *)f[0]))
			ev->flags |= GOHOOK_F_ARG_FAULT;
		*(__u64 *)&ev->arg[17] = f[3];
		ev->arg_len = 25;
		return;
	}
	if (c->arg_kind == GOHOOK_ARG_INTFIELD0) {
		if (ptr && !bpf_probe_read_user(ev->arg, 8, (void *)ptr))
			ev->arg_len = 8;
		else if (ptr)
			ev->flags |= GOHOOK_F_ARG_FAULT;
		return;
	}
	if (c->arg_kind == GOHOOK_ARG_STRFIELD0) {
		len = ptr ? 1 : 0; /* read the string header at ptr, as for the first element of a slice */
	}
	if (c->arg_kind == GOHOOK_ARG_INT) {
		*(__u64 *)ev->arg = c->a0;
		ev->arg_len = 8;
		return;
	}
	if (c->arg_kind == GOHOOK_ARG_CSTRING) {
		long n = bpf_probe_read_user_str(ev->arg, GOHOOK_ARG_MAX, (void *)ptr);
		if (n < 0)
			ev->flags |= GOHOOK_F_ARG_FAULT;
		else if (n > 0)
			ev->arg_len = n - 1;
		return;
	}
	if (c->arg_kind == GOHOOK_ARG_STRING_SLICE0 || c->arg_kind == GOHOOK_ARG_STRFIELD0) {
		__u64 hdr[2];
		if (len == 0)
			return;
		if (bpf_probe_read_user(hdr, sizeof(hdr), (void *)ptr)) {
			ev->flags |= GOHOOK_F_ARG_FAULT;
			return;
		}
		ptr = hdr[0];
		len = hdr[1];
	} else if (c->arg_kind != GOHOOK_ARG_STRING && c->arg_kind != GOHOOK_ARG_SOCKADDR) {
		return;
	}
	if (len > GOHOOK_ARG_MAX - 1) {
		len = GOHOOK_ARG_MAX - 1;
		ev->flags |= GOHOOK_F_ARG_TRUNCATED;
	}
	len &= GOHOOK_ARG_MAX - 1;
	if (len == 0)
		return;
	if (bpf_probe_read_user(ev->arg, len, (void *)ptr)) {
		ev->flags |= GOHOOK_F_ARG_FAULT;
		return;
	}
	ev->arg_len = len;
}

#endif /* GOHOOK_LIB_ARGS_H */
