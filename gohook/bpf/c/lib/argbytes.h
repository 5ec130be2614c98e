/* lib/argbytes.h: the byte tests of argument matching, eight bytes at a time (no maps).
 *
 * Is a path clean (absolute, no "//", no "." or ".." segment, no NUL), where is its last '/', does a name
 * hold a NUL? Byte by byte, each test is a loop over the argument whose cost the verifier pays for every
 * byte position and the process for every call (issue 14 measured ~0.7 us for 240 bytes). Here a word of
 * 8 bytes is tested at once with the exact zero-byte trick (0x80 in each byte of x that is 0, no borrow
 * false positives), over the words the argument needs (a path: only those after its longest matching
 * literal prefix, gohook_clean_tail; a name: in buckets of constant size), and without a jump that
 * depends on the data inside a loop (the verifier would queue one state per byte).
 *
 * Plain C over __u64: tests/bpf/test_argbytes.py compiles this header with gcc for the host and checks it
 * against gohook.bpf.argtables.clean_path_last_slash (the model) on generated paths. Buffers are read up
 * to GOHOOK_ARGBYTES_READ bytes, whatever the length: callers pass buffers at least that long.
 */
#ifndef GOHOOK_LIB_ARGBYTES_H
#define GOHOOK_LIB_ARGBYTES_H

#include "gohook.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* 1 when x == 0, else 0, without a jump, for x < 2^63. */
#define GOHOOK_IS0(x) GOHOOK_LT((x), 1)
/* x < y, for x, y < 2^63: the sign of x - y, hidden from clang, which would compile a comparison (a jump) */
#define GOHOOK_LT(x, y)                                                                          \
	({                                                                                       \
		__u64 d_ = (__u64)(x) - (__u64)(y);                                              \
		asm volatile("" : "+r"(d_));                                                     \
		d_ >> 63;                                                                        \
	})

#define GOHOOK_LOWS7 0x7f7f7f7f7f7f7f7fULL
#define GOHOOK_HIGHS 0x8080808080808080ULL
#define GOHOOK_BYTES(c) (0x0101010101010101ULL * (c))
/* the words a buffer is read in: (GOHOOK_GLOB_DATA + 8) / 8, one past the longest argument (its end) */
#define GOHOOK_ARGBYTES_WORDS ((GOHOOK_GLOB_DATA + 8) / 8)
#define GOHOOK_ARGBYTES_READ (8 * GOHOOK_ARGBYTES_WORDS)

/* 0x80 in each byte of x that is 0. */
static __always_inline __u64 gohook_zero_bytes(__u64 x)
{
	return ~(((x & GOHOOK_LOWS7) + GOHOOK_LOWS7) | x | GOHOOK_LOWS7);
}

/* 0x80 in each byte of word w (bytes 8w .. 8w + 7) whose index is below len. */
static __always_inline __u64 gohook_valid_bytes(__u32 w, __u32 len)
{
	__u64 start = 8 * (__u64)w;
	__u64 some = GOHOOK_LT(start, len), whole = 1 - GOHOOK_LT(len, start + 8);
	__u64 part = GOHOOK_HIGHS & ((1ULL << (8 * ((len - start) & 7))) - 1);
	return (GOHOOK_HIGHS & -whole) | (part & -(some & (1 - whole)));
}

/* The word at byte offset 8w of src (little-endian). */
static __always_inline __u64 gohook_word(const __u8 *src, __u32 w)
{
	__u64 x = 0;
	__u32 at = 8 * w;
	asm volatile("" : "+r"(at)); /* an offset, not a walking pointer: the verifier keeps its bound */
	__builtin_memcpy(&x, &src[at & (GOHOOK_ARG_MAX - 8)], 8);
	return x;
}

/* The clean-path test of the words from `from` on, for an argument whose bytes before 8 * from + 3 are known
 * clean (a literal prefix of a clean pattern, which the argument's first bytes equal): the previous word only
 * shifts its bytes in. Bit 0 of the result: "not clean"; bits 8..: 1 + the index of the last '/' in the words
 * tested, 0 when they hold none. One exit per word (the word holding the argument's end is the last tested). */
static __always_inline __u64 gohook_clean_tail(const __u8 *src, __u32 len, __u32 from)
{
	__u64 bad = 0, ps = 0, psx = 0, pd = 0, lm = 0, lw = 0;
	if (from) {
		__u64 x = gohook_word(src, from - 1), v = gohook_valid_bytes(from - 1, len);
		ps = gohook_zero_bytes(x ^ GOHOOK_BYTES('/')) & v;
		pd = gohook_zero_bytes(x ^ GOHOOK_BYTES('.')) & v;
		psx = ps | (GOHOOK_HIGHS & ~v);
	}
	for (__u32 i = 0; i < GOHOOK_ARGBYTES_WORDS; i++) {
		__u32 w = from + i;
		if (w > len / 8)
			break;
		__u64 x = gohook_word(src, w), v = gohook_valid_bytes(w, len);
		__u64 s = gohook_zero_bytes(x ^ GOHOOK_BYTES('/')) & v;
		__u64 d = gohook_zero_bytes(x ^ GOHOOK_BYTES('.')) & v;
		__u64 sx = s | (GOHOOK_HIGHS & ~v);
		bad |= gohook_zero_bytes(x) & v;
		__u64 s1 = s << 8 | ps >> 56, d1 = d << 8 | pd >> 56, d2 = d << 16 | pd >> 48;
		__u64 sx2 = sx << 16 | psx >> 48, sx3 = sx << 24 | psx >> 40;
		bad |= s & s1;
		bad |= sx & d1 & sx2;
		bad |= sx & d1 & d2 & sx3;
		__u64 nz = 1 - GOHOOK_IS0(s >> 7);
		lm += (s - lm) * nz;
		lw += (w - lw) * nz;
		ps = s;
		psx = sx;
		pd = d;
	}
	if (!lm)
		return bad != 0;
	__u64 idx = 0;
	if (lm >> 32) {
		idx += 4;
		lm >>= 32;
	}
	if (lm >> 16) {
		idx += 2;
		lm >>= 16;
	}
	if (lm >> 8)
		idx += 1;
	return (bad != 0) | (8 * lw + idx + 1) << 8;
}

/* The index of the last '/' of src[0..len) when it is a clean absolute path; -1 when it is not (the whole
 * argument tested: gohook_clean_tail from word 0). */
static __always_inline int gohook_clean_path(const __u8 *src, __u32 len)
{
	if (len == 0 || len > GOHOOK_GLOB_DATA || src[0] != '/')
		return -1;
	__u64 r = gohook_clean_tail(src, len, 0);
	return r & 1 ? -1 : (int)(r >> 8) - 1; /* (the first byte is a '/': one is always found) */
}

/* Whether a NUL is in data[0..len), over the first `words` words. */
static __always_inline __u64 gohook_nul_words(const __u8 *data, __u32 len, const __u32 words)
{
	__u64 nul = 0;
	for (__u32 w = 0; w < words; w++)
		nul |= gohook_zero_bytes(gohook_word(data, w)) & gohook_valid_bytes(w, len);
	return nul;
}

/* Whether data[0..len) holds a NUL (a name never does); len <= GOHOOK_GLOB_DATA. */
static __always_inline int gohook_has_nul(const __u8 *data, __u32 len)
{
	__u64 nul;
	if (len <= 4 * 8)
		nul = gohook_nul_words(data, len, 4);
	else if (len <= 8 * 8)
		nul = gohook_nul_words(data, len, 8);
	else
		nul = gohook_nul_words(data, len, GOHOOK_GLOB_DATA / 8);
	return nul != 0;
}

#endif /* GOHOOK_LIB_ARGBYTES_H */
