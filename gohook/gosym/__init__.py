"""gohook.gosym: read Go binaries exactly (pclntab, build info, modules).

Public surface:
    GoBinary.open(path) -> GoBinary
    GoBinary.functions, function_at(pc), line_at(pc), frames(pc)
    GoBinary.build_info, go_version, main_module, module_of(name), package_of(name)
"""

from gohook.gosym.binary import GoBinary
from gohook.gosym.buildinfo import BuildInfo, Module
from gohook.gosym.elfimage import ElfImage
from gohook.gosym.names import STD, ModuleResolver, infer_module_path, package_of
from gohook.gosym.pclntab import Frame, Function, LineTable, Version

__all__ = [
    "STD",
    "BuildInfo",
    "ElfImage",
    "Frame",
    "Function",
    "GoBinary",
    "LineTable",
    "Module",
    "ModuleResolver",
    "Version",
    "infer_module_path",
    "package_of",
]
