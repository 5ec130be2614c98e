"""The byte tests of argument matching (gohook/bpf/c/lib/argbytes.h), compiled with gcc for the host and run
on generated paths and names: the clean-path test and its last '/' must agree with the model the kernel
tables are checked against (gohook.bpf.argtables.clean_path_last_slash, itself checked against the policy's
reference semantics), the NUL test with Python's `in`. The same C runs in the kernel (lib/argmatch.h)."""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gohook.bpf.abi import GLOB_DATA
from gohook.bpf.argtables import clean_path_last_slash
from gohook.bpf.render import BPF_DIR

SHIM = r"""
#include <linux/types.h>
#include "lib/argbytes.h"
int clean_path(const unsigned char *src, unsigned len) { return gohook_clean_path(src, len); }
int has_nul(const unsigned char *src, unsigned len) { return gohook_has_nul(src, len); }
unsigned long long clean_tail(const unsigned char *src, unsigned len, unsigned from)
{
	return gohook_clean_tail(src, len, from);
}
"""


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc is missing (scripts/setup.sh installs it)")
    work = tmp_path_factory.mktemp("argbytes")
    src, out = work / "shim.c", work / "argbytes.so"
    src.write_text(SHIM)
    built = subprocess.run([gcc, "-O2", "-Wall", "-shared", "-fPIC", f"-I{BPF_DIR}", "-o", str(out), str(src)],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    return ctypes.CDLL(str(out))


def _buffer(data: bytes) -> ctypes.Array[ctypes.c_ubyte]:
    """The argument in a 256-byte buffer (what the kernel's are), garbage after it: it must not matter."""
    raw = data[:256] + bytes((0x2F if i % 3 else 0x2E) for i in range(256 - len(data[:256])))
    return (ctypes.c_ubyte * 256).from_buffer_copy(raw)


def _clean(lib: ctypes.CDLL, data: bytes) -> int:
    return int(lib.clean_path(_buffer(data), len(data)))


_parts = st.sampled_from(["", ".", "..", "...", "a", "etc", ".x", "x.", "\0", "//", "ab.cd", "é"])
paths = st.lists(_parts, min_size=1, max_size=40).map(lambda p: "/".join(p).encode()) | st.binary(max_size=250)


@settings(max_examples=2000, deadline=None)
@given(paths)
def test_clean_path_agrees_with_the_model(lib: ctypes.CDLL, data: bytes) -> None:
    assert _clean(lib, data) == clean_path_last_slash(data), data


@pytest.mark.parametrize("data", [b"/", b"/etc/", b"/etc//x", b"/a/.", b"/a/..", b"/a/...", b"/.", b"/..",
                                  b"/a/./b", b"/a/../b", b"a/b", b"/a\0", b"/" + b"a" * 239,
                                  b"/" + b"a" * 240, b"/" + b"a" * 6 + b"/.", b"/" + b"a" * 5 + b"/..",
                                  b"/" + b"a" * 14 + b"//", b"/x/" + b"b" * 4 + b"/./"])
def test_clean_path_at_word_boundaries(lib: ctypes.CDLL, data: bytes) -> None:
    """Ends and patterns that straddle the 8-byte words, and the longest paths."""
    assert _clean(lib, data) == clean_path_last_slash(data), data


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=GLOB_DATA))
def test_has_nul(lib: ctypes.CDLL, data: bytes) -> None:
    assert bool(lib.has_nul(_buffer(data), len(data))) == (b"\0" in data)


_clean_parts = st.sampled_from(["a", "etc", ".x", "x.", "...", "ab.cd", "conf.d", ""])


@settings(max_examples=2000, deadline=None)
@given(st.lists(_clean_parts, min_size=1, max_size=30), st.data())
def test_clean_tail_after_a_clean_prefix(lib: ctypes.CDLL, parts: list[str], data: st.DataObject) -> None:
    """What the glob step does for a path: its first bytes equal the literal prefix of the longest matching
    entry, a prefix of a clean pattern, so only the words from 3 bytes before that prefix's end are tested.
    Whatever follows the prefix, the verdict and the last '/' (or, with none in the tail, the prefix's own
    last '/') are the full model's."""
    clean = ("/" + "/".join(parts)).encode()
    assume_clean = clean_path_last_slash(clean) >= 0
    if not assume_clean:
        return
    plen = data.draw(st.integers(min_value=1, max_value=len(clean)))
    tail = data.draw(st.sampled_from([b"", b"/", b"/.", b"/..", b"/./x", b"//", b"x/../y", b"/\0", b".", b"..",
                                      b"a/b", b"/c.yaml"]))
    path = clean[:plen] + tail
    if len(path) > GLOB_DATA:
        return
    frm = (plen - 3) // 8 if plen > 3 else 0
    r = int(lib.clean_tail(_buffer(path), len(path), frm))
    want = clean_path_last_slash(path)
    assert bool(r & 1) == (want < 0), (path, plen)
    if want >= 0:
        last = (r >> 8) - 1 if r >> 8 else clean[:plen].rfind(b"/")
        assert last == want, (path, plen, r)
