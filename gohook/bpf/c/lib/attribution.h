/* lib/attribution.h: where a return address becomes a module ids list.
 *
 * The range table (gohook.bpf.render.build_tables, filled by the loader)
 * splits the Go text into address ranges, each with up to
 * GOHOOK_RANGE_MODULES module ids packed as u16 in range_mods: the modules of
 * the logical frames of the code there (inlined calls included), innermost
 * first; slot 0 is the innermost logical frame as is (0 when std), the next
 * slots the other non-std modules. page_first[p] is the first range of text
 * page p, so that finding the range of an address is a binary search of a
 * few steps (GOHOOK_SEARCH_STEPS) inside one page. range_deny and range_flags
 * are indexed by the same range index.
 */
#ifndef GOHOOK_LIB_ATTRIBUTION_H
#define GOHOOK_LIB_ATTRIBUTION_H

#include "gohook.h"
#include "lib/config.h"
#include "lib/maps.h"

/* Index of the range holding text offset off: the page index bounds a short
 * binary search for the last range starting at or before off. */
static __always_inline __u32 gohook_lookup(__u32 off)
{
	__u32 page = off >> GOHOOK_PAGE_SHIFT, next = page + 1;
	__u32 *plo = page_first.lookup(&page);
	__u32 *phi = page_first.lookup(&next);
	if (!plo || !phi)
		return 0; /* range 0 */
	__u32 lo = *plo, hi = *phi;
#pragma unroll
	for (int i = 0; i < GOHOOK_SEARCH_STEPS; i++) {
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

/* The innermost non-std module at a return address (0: std, trusted or outside the text). */
static __always_inline __u32 gohook_module_at(__u64 ret, __u64 bias)
{
	__u64 off = ret - bias - 1 - GOHOOK_TEXT_START;
	if (off >= GOHOOK_TEXT_SIZE)
		return 0;
	__u32 idx = gohook_lookup((__u32)off);
	__u64 *pm = range_mods.lookup(&idx);
	__u64 mods = pm ? *pm : 0;
	__u32 f = mods & 0xffff;
	return f ? f : (mods >> 16) & 0xffff;
}

#endif /* GOHOOK_LIB_ATTRIBUTION_H */
