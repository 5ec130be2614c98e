"""GoBinary: one Go executable, read once, with the questions gohook asks of it.

Pipeline: ElfImage (file bytes, sections, segments, a few symbols)
-> build info (Go version, modules) -> pclntab location and text start
-> LineTable (functions, lines, inline trees) -> ModuleResolver (names ->
modules). Everything derived is computed on first use and cached; PC tables
are decoded only for the functions a lookup touches.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from gohook.errors import AddressError, BuildInfoError, NotGoBinaryError, PclntabError, UnsupportedArchError
from gohook.gosym import buildinfo as bi
from gohook.gosym import itabs as it
from gohook.gosym import moduledata as md
from gohook.gosym.elfimage import ElfImage
from gohook.gosym.names import CLOSURE_NAME, STD, ModuleRef, ModuleResolver, package_of
from gohook.gosym.pclntab import FLAG_ASM, MAGIC_TO_VERSION, Frame, Function, LineTable, Version

_GO_MINOR = re.compile(r"^go1\.(\d+)")


@dataclass(frozen=True, slots=True)
class PclntabLocation:
    vaddr: int
    data: bytes
    how: str  # ".gopclntab section" or "magic scan"


class GoBinary:
    """A parsed Go ELF binary. Build with `GoBinary.open(path)` or `GoBinary(ElfImage(data))`."""

    def __init__(self, image: ElfImage) -> None:
        self.image = image
        self.path = image.path or "<memory>"
        if image.elfclass != 64 or image.machine not in ("EM_X86_64", "EM_AARCH64"):
            raise NotGoBinaryError(f"{self.path}: only 64-bit x86-64/arm64 ELF is supported ({image.machine})")
        self.pclntab = self._locate_pclntab()
        self.table = self._make_table()

    @classmethod
    def open(cls, path: str | Path) -> GoBinary:
        return cls(ElfImage.open(path))

    # -- build info ----------------------------------------------------------

    @cached_property
    def build_info(self) -> bi.BuildInfo | None:
        """Build info, or None when the binary has none (pre-1.13, or GOPATH without modules)."""
        return image_build_info(self.image)

    @cached_property
    def go_version(self) -> str | None:
        info = self.build_info
        return info.go_version if info else None

    @cached_property
    def go_minor(self) -> int | None:
        m = _GO_MINOR.match(self.go_version or "")
        return int(m.group(1)) if m else None

    # -- pclntab ----------------------------------------------------------------

    def _locate_pclntab(self) -> PclntabLocation:
        sec = self.image.section(".gopclntab")
        if sec is not None and not sec.nobits and sec.size >= 16:
            return PclntabLocation(sec.vaddr, self.image.section_bytes(sec), ".gopclntab section")
        found = self._scan_for_pclntab()
        if found is None:
            raise NotGoBinaryError(f"{self.path}: no Go function table (no .gopclntab, no valid pclntab magic)")
        return found

    def _scan_for_pclntab(self) -> PclntabLocation | None:
        """Find the pclntab by magic, accepting only a candidate that moduledata points to."""
        data = self.image.data
        for magic in MAGIC_TO_VERSION:
            needle = struct.pack("<I", magic) + b"\x00\x00"
            pos = data.find(needle)
            while pos >= 0:
                if pos % 8 == 0 and pos + 8 <= len(data) and data[pos + 6] in (1, 2, 4) and data[pos + 7] == 8:
                    try:
                        vaddr = self.image.offset_to_vaddr(pos)
                    except AddressError:
                        vaddr = None
                    if vaddr is not None and self._moduledata_candidates(vaddr, None):
                        seg_end = max(s.offset + s.filesz for s in self.image.segments if s.offset <= pos)
                        return PclntabLocation(vaddr, data[pos:seg_end], "magic scan")
                pos = data.find(needle, pos + 1)
        return None

    def _moduledata_candidates(self, pclntab_addr: int, funcname_off: int | None) -> list[int]:
        hits: list[int] = []
        for s in self.image.sections:
            if s.writable and not s.nobits and s.size:
                hits += md.scan_for_moduledata(self.image.section_bytes(s), s.vaddr, pclntab_addr, funcname_off)
        return hits

    @cached_property
    def moduledata(self) -> md.ModuleData | None:
        """runtime.firstmoduledata, by symbol or by scanning data for a pointer to the pclntab."""
        version = MAGIC_TO_VERSION.get(struct.unpack_from("<I", self.pclntab.data, 0)[0])
        funcname_off = None
        if version is not None and version >= Version.GO116:
            word = 3 if version >= Version.GO118 else 2
            funcname_off = struct.unpack_from("<Q", self.pclntab.data, 8 + 8 * word)[0]
        addr = self.image.symbol("runtime.firstmoduledata")
        candidates = [addr] if addr else self._moduledata_candidates(self.pclntab.vaddr, funcname_off)
        for cand in candidates:
            try:
                raw = self.image.read(cand, md.MODULEDATA_SIZE)
            except AddressError:
                continue
            if not md.plausible(raw, self.pclntab.vaddr, funcname_off):
                continue
            chosen = None
            for off in md.gofunc_offsets(self.go_minor):
                value = struct.unpack_from("<Q", raw, off)[0]
                sec = self.image.section_at(value) if value else None
                if sec is not None and not sec.executable:
                    chosen = off
                    break
            return md.parse_moduledata(raw, cand, chosen)
        return None

    def _make_table(self) -> LineTable:
        data = self.pclntab.data
        try:
            version = MAGIC_TO_VERSION.get(struct.unpack_from("<I", data, 0)[0])
        except struct.error as exc:
            raise PclntabError(f"{self.path}: pclntab is empty") from exc
        text_start = gofunc = None
        if version is not None and version >= Version.GO118:
            syms = self.image.symbols("runtime.text", "go:func.*", "go.func.*")
            text_start = syms.get("runtime.text")
            gofunc = syms.get("go:func.*", syms.get("go.func.*"))
            if text_start is None or gofunc is None:
                mdata = self.moduledata
                if mdata is None:
                    raise NotGoBinaryError(f"{self.path}: cannot find runtime.text: no symbol and no moduledata")
                text_start = text_start if text_start is not None else mdata.text
                gofunc = gofunc if gofunc is not None else mdata.gofunc
        try:
            return LineTable(data, text_start=text_start, gofunc=gofunc, memory=self.image.read,
                             go_minor=self._table_go_minor(version))
        except PclntabError as exc:
            raise PclntabError(f"{self.path}: {exc}", exc.offset) from exc

    def _table_go_minor(self, version: Version | None) -> int | None:
        """The Go minor version for the table decoder (Go 1.12 numbers PCDATA/FUNCDATA differently)."""
        try:
            info = self.build_info
        except BuildInfoError:
            return None
        if info is not None:
            return self.go_minor
        if version != Version.GO12:
            return None
        # Go 1.13 began writing build info into every binary: a Go 1.2-1.15
        # table without it is Go 1.12 or older. Take runtime.buildVersion
        # when there is a symbol table, else Go 1.12 (Go 1.9-1.11 share its
        # numbering; their older _func layout reads as "no inline tree").
        addr = self.image.symbol("runtime.buildVersion")
        if addr:
            try:
                m = _GO_MINOR.match(bi.read_go_string(self.image.read_loaded, addr, "<Q", 8))
            except BuildInfoError:
                m = None
            if m:
                return int(m.group(1))
        return 12

    # -- itabs and static words (graceful deny builds `error` values from them) ---------------

    @cached_property
    def module_types(self) -> it.ModuleTypes:
        """moduledata's types region and where it lists the itabs (gohook.gosym.itabs)."""
        mdata = self.moduledata
        if mdata is None:
            raise it.ItabError(f"{self.path}: no moduledata: cannot list itabs")
        try:
            raw = self.image.read(mdata.address, it.MODULEDATA_PREFIX)
        except AddressError as exc:
            raise it.ItabError(f"{self.path}: moduledata at {mdata.address:#x}: {exc}", mdata.address) from exc
        minor = self.go_minor if self._build_info_ok() else None
        return it.parse_module_types(raw, mdata.address, it.layout_for(minor, raw, mdata.gofunc))

    @cached_property
    def itabs(self) -> tuple[it.Itab, ...]:
        """Every itab the linker emitted, decoded (static addresses); ItabError when malformed."""
        try:
            return tuple(it.read_itabs(self.image.read, self.module_types))
        except it.ItabError as exc:
            raise it.ItabError(f"{self.path}: {exc}", exc.offset) from exc

    def itab_address(self, concrete: str, interface: str) -> int | None:
        """Static address of the itab for (concrete, interface), e.g. ("syscall.Errno", "error").

        Names are the runtime's type strings. None when the binary holds no
        such itab; ItabError when the itab list is malformed or ambiguous.
        """
        found = it.find_itab(self.itabs, concrete, interface)
        return found.address if found else None

    @cached_property
    def static_uint64s(self) -> int:
        """Static address of runtime.staticuint64s, found by content; StaticWordError when absent or ambiguous.

        Several copies of the 2048 bytes are resolved by the symbol when the
        binary has one, else refused.
        """
        regions = [(s.vaddr, self.image.section_bytes(s)) for s in self.image.sections
                   if s.vaddr and s.size and not s.nobits and not s.executable]
        hits = it.find_static_uint64s(regions)
        if len(hits) == 1:
            return hits[0]
        symbol = self.image.symbol("runtime.staticuint64s")
        if len(hits) > 1 and symbol in hits:
            return symbol
        if not hits:
            raise it.StaticWordError(f"{self.path}: no runtime.staticuint64s table ({{0, 1, ..., 255}}) found")
        where = ", ".join(f"{h:#x}" for h in hits)
        raise it.StaticWordError(f"{self.path}: {len(hits)} copies of runtime.staticuint64s' bytes at {where}")

    def static_uint64_address(self, value: int) -> int | None:
        """Static address of a read-only-by-convention word holding `value` (0..255) inside
        runtime.staticuint64s; None for values outside the table."""
        if not 0 <= value < 256:
            return None
        return self.static_uint64s + 8 * value

    def _build_info_ok(self) -> bool:
        try:
            return self.build_info is not None
        except BuildInfoError:
            return False

    # -- functions and frames ---------------------------------------------------

    @property
    def version(self) -> Version:
        return self.table.version

    @property
    def functions(self) -> list[Function]:
        try:
            return self.table.functions
        except PclntabError as exc:
            raise PclntabError(f"{self.path}: {exc}", exc.offset) from exc

    @cached_property
    def functions_by_name(self) -> dict[str, Function]:
        return {f.name: f for f in self.functions}

    def function_at(self, pc: int) -> Function | None:
        return self.table.function_at(pc)

    def line_at(self, pc: int) -> tuple[str, int]:
        f = self.table.function_at(pc)
        if f is None:
            raise AddressError(f"{pc:#x} is in no Go function")
        return self.table.line_at(f, pc)

    def file_at(self, pc: int) -> str:
        """The source file of the instruction at pc (LineTable.file_at: line_at's file, cheaper)."""
        f = self.table.function_at(pc)
        if f is None:
            raise AddressError(f"{pc:#x} is in no Go function")
        return self.table.file_at(f, pc)

    @cached_property
    def _wrapper_ids(self) -> tuple[int | None, frozenset[int]]:
        """funcID numbers drift across releases: derive them from this binary.

        FuncIDWrapper is the last value of the enum in every release, and
        autogenerated wrappers exist in every binary, so it is the largest
        funcID present. Panic functions are found by name.
        """
        fns = self.functions
        wrapper = max((f.func_id for f in fns), default=0) or None
        by_name = self.functions_by_name
        panic = frozenset(by_name[n].func_id for n in ("runtime.gopanic", "runtime.sigpanic", "runtime.panicwrap")
                          if n in by_name)
        return wrapper, panic

    def frames(self, pc: int, *, return_address: bool = True) -> list[Frame]:
        """Logical frames at pc, innermost first, like runtime.CallersFrames."""
        wrapper, panic = self._wrapper_ids
        try:
            return self.table.frames(pc, return_address=return_address, wrapper_id=wrapper, panic_ids=panic)
        except (AddressError, struct.error) as exc:
            raise PclntabError(f"{self.path}: cannot expand {pc:#x}: {exc}") from exc

    # -- packages and modules ---------------------------------------------------

    @cached_property
    def resolver(self) -> ModuleResolver:
        info = self.build_info if self._build_info_ok() else None
        if info is None:
            return ModuleResolver("", [], self._guess_main_package())
        mods = [d.path for d in info.deps]
        main = info.main.path if info.main else ""
        if main:
            mods.append(main)
        return ModuleResolver(main, mods, info.path)

    def _guess_main_package(self) -> str:
        """GOPATH builds without build info: infer the main package from vendored names."""
        for f in self.functions:
            pkg = package_of(f.name)
            if pkg and "/vendor/" in pkg and not pkg.startswith("vendor/"):
                return pkg.split("/vendor/", 1)[0]
        return ""

    @property
    def main_module(self) -> str:
        info = self.build_info if self._build_info_ok() else None
        if info and info.main and info.main.path:
            return info.main.path
        return self.resolver.main_package

    def package_of(self, function_name: str) -> str | None:
        """The package of a function name (gohook.gosym.names.package_of), memoized per binary: the static
        analysis asks it of the same names again and again (136,000 calls on Debian's prometheus)."""
        memo = self._package_memo
        try:
            return memo[function_name]
        except KeyError:
            pkg = memo[function_name] = package_of(function_name)
            return pkg

    @cached_property
    def _package_memo(self) -> dict[str, str | None]:
        return {}

    @cached_property
    def _file_packages(self) -> dict[str, str | None]:
        """Source file -> the package of the named functions (not closures) whose code starts in it; None when
        functions of several packages do (generated files)."""
        out: dict[str, str | None] = {}
        for f in self.functions:
            pkg = self.package_of(f.name)
            if not pkg or CLOSURE_NAME.search(f.name):
                continue
            try:
                file = self.entry_file(f)
            except (AddressError, PclntabError, struct.error):
                continue
            out[file] = pkg if out.get(file, pkg) == pkg else None
        return out

    def entry_file(self, f: Function) -> str:
        """The source file of f's first instruction (LineTable.file_at), read once per function: the file
        packages, the closures' modules and the assembly checks all ask it (issue 17 §6)."""
        files = self._entry_files
        file = files.get(f.entry)
        if file is None:
            file = files[f.entry] = self.table.file_at(f, f.entry)
        return file

    @cached_property
    def _entry_files(self) -> dict[int, str]:
        return {}

    def is_assembly(self, f: Function) -> bool:
        """Whether f is written in assembly: the linker's FuncFlag_ASM, or (releases without the flag) a .s
        file at its entry."""
        return bool(f.flag & FLAG_ASM) or self.entry_file(f).endswith(".s")

    def closure_package(self, name: str, pc: int) -> str | None:
        """The package whose source holds the code of closure `name` at pc, when its name says another one.

        Go names a closure after the function its code ended up in: when os.Link (whose body makes a closure)
        is inlined into config.Link, itself inlined into main.main, the closure is `main.main.Link.Link.func2`,
        physical or inlined, although its code is os's. So a dependency whose call is inlined into its caller
        would have the closures of the code it calls charged to the caller. The source file is the truth:
        the package of the named functions of that file. None when name is no closure, or its package agrees.
        """
        if not CLOSURE_NAME.search(name):
            return None
        f = self.table.function_at(pc)
        if f is None:
            return None
        try:
            file = self.entry_file(f) if pc == f.entry else self.table.file_at(f, pc)
        except (AddressError, PclntabError, struct.error):
            return None
        return self.closure_package_in(name, file)

    def closure_package_in(self, name: str, file: str) -> str | None:
        """closure_package, for a logical frame whose source file is known (Frame.file)."""
        if not CLOSURE_NAME.search(name):
            return None
        pkg = self._file_packages.get(file)
        return pkg if pkg and pkg != self.package_of(name) else None

    def code_module(self, name: str, file: str | None = None, pc: int | None = None) -> str:
        """The module of function `name`'s code (in `file`, or at `pc`): module_of, except for a closure whose
        name says another package than its source does (closure_package)."""
        pkg = (self.closure_package_in(name, file) if file is not None
               else self.closure_package(name, pc) if pc is not None else None)
        return self.module_of(name) if pkg is None else self.resolver.module_of_package(pkg).path

    @cached_property
    def function_modules(self) -> list[str]:
        """The module of each function's code (code_module at its entry), by index into functions: computed
        once per binary for the static analysis, the prescan's choice and argument reading (each built this
        list on its own: 0.2 s apiece on Debian's prometheus, issue 17 §6)."""
        code_module = self.code_module
        return [code_module(f.name, pc=f.entry) for f in self.functions]

    def module_ref(self, function_name: str) -> ModuleRef:
        return self.resolver.module_of_package(self.package_of(function_name))

    def module_of(self, function_name: str) -> str:
        """Module path of a function, or "std" for standard library, runtime and linker code.

        Memoized per binary (by name: the answer depends on nothing else): the static analysis asks it about
        250,000 times for a 100-module binary (issue 17 §6)."""
        memo = self._module_memo
        path = memo.get(function_name)
        if path is None:
            path = memo[function_name] = self.module_ref(function_name).path
        return path

    @cached_property
    def _module_memo(self) -> dict[str, str]:
        """module_of's answers so far (function name -> module path)."""
        return {}

    @cached_property
    def ranges_id_memos(self) -> list[tuple[Callable[[str], int], Callable[[str], str] | None, dict[str | int, int]]]:
        """gohook.attribution.ranges' memos of module ids by function name, one per recent (module_id, module_of)
        pair, newest first (issue 17 §6: function_ranges asks of every module function and its inlined calls)."""
        return []

    def is_std(self, function_name: str) -> bool:
        return self.module_of(function_name) == STD

    # -- layout facts ----------------------------------------------------------------

    #: ELF e_machine -> Go's GOARCH name
    ARCHES = {"EM_X86_64": "amd64", "EM_AARCH64": "arm64", "EM_386": "386", "EM_ARM": "arm", "EM_RISCV": "riscv64",
              "EM_PPC64": "ppc64", "EM_S390": "s390x", "EM_MIPS": "mips", "EM_LOONGARCH": "loong64"}

    @property
    def arch(self) -> str:
        """The binary's architecture as GOARCH names it (the ELF machine name when Go has none for it)."""
        return self.ARCHES.get(str(self.image.machine), str(self.image.machine))

    def require_amd64(self, what: str) -> None:
        """Raise UnsupportedArchError unless the binary is amd64: `what` needs amd64 machine code or registers."""
        if self.arch != "amd64":
            raise UnsupportedArchError(f"{self.path} is an {self.arch} binary: {what} reads amd64 machine code and "
                                       "registers; gohook supports amd64 binaries only")

    @property
    def is_pie(self) -> bool:
        return self.image.is_pie

    @property
    def is_stripped(self) -> bool:
        return not self.image.has_symtab

    @cached_property
    def has_cgo(self) -> bool:
        info = self.build_info if self._build_info_ok() else None
        if info is not None and info.setting("CGO_ENABLED") == "1":
            return True
        names = self.functions_by_name
        return "runtime.cgocall" in names and any(n.startswith("runtime/cgo.") for n in names)

    @property
    def text_start(self) -> int:
        return self.functions[0].entry if self.functions else 0

    @property
    def text_end(self) -> int:
        return self.table.text_end

    def vaddr_to_offset(self, vaddr: int) -> int:
        return self.image.vaddr_to_offset(vaddr)


def image_build_info(image: ElfImage) -> bi.BuildInfo | None:
    """An ELF image's Go build info, or None when it has none: the .go.buildinfo section, else the first
    writable data holding the magic (where the linker puts it). Needs no pclntab (gohook agent reads it for
    every program it sees)."""
    sec = image.section(".go.buildinfo")
    if sec is not None and not sec.nobits:
        blob = image.section_bytes(sec)
        if not blob.startswith(bi.MAGIC):
            raise BuildInfoError(f"{image.path or '<memory>'}: .go.buildinfo does not start with the build info magic",
                                 sec.offset)
        return bi.parse_blob(blob, image.read_loaded)
    # No section: search the first writable data (where the linker puts it).
    for s in image.sections:
        if s.writable and not s.nobits and not s.executable and s.size:
            data = image.section_bytes(s)
            pos = bi.find_blob(data)
            if pos >= 0:
                return bi.parse_blob(data[pos:], image.read_loaded)
    return None
