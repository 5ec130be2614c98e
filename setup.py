"""Build hook for the one optional C extension; everything else is in pyproject.toml.

gohook.gosym._pcvalue decodes PC-value tables about ten times faster than the
pure-Python decoder in gohook/gosym/pclntab.py, which stays the reference and
the fallback: `optional=True` lets the install succeed without a C compiler.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("gohook.gosym._pcvalue", ["gohook/gosym/_pcvalue.c"], optional=True)])
