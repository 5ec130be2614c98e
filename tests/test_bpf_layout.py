"""The Python view of struct gohook_event (gohook.events.decode.EventLayout) matches the C layout.

Two independent compilers: gcc for the host (offsetof/sizeof printed by a
tiny program including bpf/gohook.h), and clang for the BPF target through
bcc (the ctypes class bcc derives from the compiled map value type).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gohook.bpf.render import BPF_DIR
from gohook.events.decode import HEADER_FIELDS, EventLayout

FIELDS = [name for name, _ in HEADER_FIELDS] + ["arg", "frames"]


@pytest.fixture
def bpf_root() -> None:
    """Root is needed to create BPF maps: in CI (CI=true) its absence fails, elsewhere it skips loudly."""
    if os.geteuid() != 0:
        reason = "BPF tests need root (CAP_BPF): run the suite as root"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip("SKIPPED LOUDLY: " + reason)


def _gcc_layout(tmp_path: Path, max_frames: int, arg_max: int) -> dict[str, int]:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc is missing (scripts/setup.sh installs it)")
    prints = "\n".join(
        f'    printf("\\"{f}\\": %zu,", offsetof(struct gohook_event, {f}));' for f in FIELDS)
    src = tmp_path / "layout.c"
    src.write_text(f"""#include <stddef.h>
#include <stdio.h>
#include "gohook.h"
int main(void) {{
    printf("{{");
{prints}
    printf("\\"sizeof\\": %zu}}\\n", sizeof(struct gohook_event));
    return 0;
}}
""")
    exe = tmp_path / "layout"
    subprocess.run([gcc, f"-I{BPF_DIR}", f"-DGOHOOK_MAX_FRAMES={max_frames}", f"-DGOHOOK_ARG_MAX={arg_max}",
                    "-o", str(exe), str(src)], check=True, capture_output=True, text=True)
    return dict(json.loads(subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout))


@pytest.mark.parametrize(("max_frames", "arg_max"), [(64, 256), (128, 64), (8, 4096)])
def test_gcc_layout_matches_python(tmp_path: Path, max_frames: int, arg_max: int) -> None:
    c = _gcc_layout(tmp_path, max_frames, arg_max)
    layout = EventLayout(max_frames=max_frames, arg_max=arg_max)
    assert {f: c[f] for f in FIELDS} == layout.offsets()
    assert c["sizeof"] == layout.size


@pytest.mark.bpf
def test_bpf_layout_matches_python(bpf_root: None) -> None:
    """clang's BPF-target layout, as bcc derives it from a map whose value is struct gohook_event."""
    from gohook.bpf.loader import _bcc

    bcc = _bcc()
    text = f"#include \"{BPF_DIR / 'gohook.h'}\"\nBPF_ARRAY(scratch, struct gohook_event, 1);\n"
    bpf = bcc.BPF(text=text.encode())
    try:
        leaf = bpf[b"scratch"].Leaf
        offsets = {f: getattr(leaf, f).offset for f in FIELDS}
        layout = EventLayout()
        assert offsets == layout.offsets()
        import ctypes

        assert ctypes.sizeof(leaf) == layout.size
    finally:
        bpf.cleanup()
