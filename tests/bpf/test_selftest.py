"""gohook.bpf.selftest's ctypes DoctorEvent matches struct doctor_event of gohook/bpf/c/doctor.bpf.c.

Two compilers, as for struct gohook_event (tests/bpf/test_abi.py): gcc
lays out the struct copied out of doctor.bpf.c for the host (no root), and
clang for the BPF target through bcc, from the doctor's real program (root;
in CI it never skips). The doctor reads its ring-buffer events and the
`last` map through DoctorEvent: a field changed on one side only would make
the uprobes check read garbage.
"""

from __future__ import annotations

import ctypes as ct
import json
import re
import shutil
import subprocess
from pathlib import Path

import gofixtures
import pytest

from gohook.bpf.selftest import BPF_PROGRAM_FILE, DoctorEvent, bpf_source
from gohook.bpf.sources import c_dir

FIELDS = [name for name, _ in DoctorEvent._fields_]


def _c_struct() -> str:
    """`struct doctor_event { ... };` as written in doctor.bpf.c."""
    m = re.search(r"^struct doctor_event \{.*?^\};", bpf_source(), re.M | re.S)
    assert m, f"no struct doctor_event in {c_dir() / BPF_PROGRAM_FILE}"
    return m.group(0)


def _python_layout() -> dict[str, int]:
    layout = {f: getattr(DoctorEvent, f).offset for f in FIELDS}
    return {**layout, **{f"sizeof_{f}": getattr(DoctorEvent, f).size for f in FIELDS}, "sizeof": ct.sizeof(DoctorEvent)}


def test_c_members_are_the_ctypes_fields_in_order() -> None:
    members = re.findall(r"^\s*[us](?:8|16|32|64)\s+(\w+);", _c_struct(), re.M)
    assert members == FIELDS


def test_gcc_layout_matches_doctor_event(tmp_path: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc is missing (scripts/setup.sh installs it)")
    prints = "\n".join(f'    printf("\\"{f}\\": %zu, \\"sizeof_{f}\\": %zu, ", offsetof(struct doctor_event, {f}), '
                       f"sizeof(((struct doctor_event *)0)->{f}));" for f in FIELDS)
    src = tmp_path / "doctor_layout.c"
    src.write_text(f"""#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
typedef uint32_t u32;
typedef int32_t s32;
typedef uint64_t u64;
typedef int64_t s64;
{_c_struct()}
int main(void) {{
    printf("{{");
{prints}
    printf("\\"sizeof\\": %zu}}\\n", sizeof(struct doctor_event));
    return 0;
}}
""")
    exe = tmp_path / "doctor_layout"
    subprocess.run([gcc, "-Wall", "-Werror", "-o", str(exe), str(src)], check=True, capture_output=True, text=True)
    c = json.loads(subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout)
    assert c == _python_layout()


@pytest.mark.bpf
def test_bcc_layout_of_the_doctor_program_matches_doctor_event() -> None:
    """clang's BPF-target layout, as bcc derives it from the doctor program's `last` map (struct doctor_event)."""
    gofixtures.require_root("loading the doctor's BPF program")
    from gohook.bpf.host import import_bcc

    bcc = import_bcc()
    bpf = bcc.BPF(text=bpf_source().encode(), cflags=["-DDOCTOR_RINGBUF"])
    try:
        leaf = bpf[b"last"].Leaf
        assert [name for name, _ in leaf._fields_] == FIELDS
        assert {f: getattr(leaf, f).offset for f in FIELDS} == {f: getattr(DoctorEvent, f).offset for f in FIELDS}
        assert ct.sizeof(leaf) == ct.sizeof(DoctorEvent)
    finally:
        bpf.cleanup()
