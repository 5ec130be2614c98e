"""Build hook for the optional C extensions; everything else is in pyproject.toml.

gohook.gosym._pcvalue decodes PC-value tables about ten times faster than the
pure-Python decoder in gohook/gosym/pclntab.py, which stays the reference and
the fallback.

gohook.gosym._scan is the machine-code scanner of gohook/static/callgraph.py
(scan_code stays the reference and the fallback) over capstone's C API. It is
compiled against the headers the capstone wheel ships (capstone/include) and
links nothing: at import it dlopen()s the libcapstone the capstone package
loaded (why: see _scan.c). It is left out when those headers are not found.

Both are `optional=True`: the install succeeds without a C compiler, and
gohook runs (slower) on the Python code.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup


def capstone_package_dir() -> Path | None:
    """The directory of the installed capstone package, without importing it (that would load its library).

    `python setup.py build_ext` and `pip install --no-build-isolation` see it on sys.path; pip's isolated
    build environment hides the target environment's site-packages, so ask the same interpreter again in
    isolated mode (-I: no PYTHONPATH), which sees them."""
    spec = importlib.util.find_spec("capstone")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    probe = ("import importlib.util as u; s = u.find_spec('capstone'); "
             "print(next(iter(s.submodule_search_locations)) if s and s.submodule_search_locations else '')")
    try:
        out = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, timeout=60,
                             check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out) if out else None


def extensions() -> list[Extension]:
    exts = [Extension("gohook.gosym._pcvalue", ["gohook/gosym/_pcvalue.c"], optional=True)]
    pkg = capstone_package_dir()
    include = pkg / "include" if pkg is not None else None
    if include is not None and (include / "capstone" / "capstone.h").is_file():
        exts.append(Extension("gohook.gosym._scan", ["gohook/gosym/_scan.c"], include_dirs=[str(include)],
                              depends=[str(h) for h in sorted((include / "capstone").glob("*.h"))],
                              libraries=["dl"], optional=True))
    else:
        print("gohook: capstone headers not found (capstone/include/capstone/capstone.h): "
              "gohook.gosym._scan is not built, the scanner stays in Python", file=sys.stderr)
    return exts


setup(ext_modules=extensions())
