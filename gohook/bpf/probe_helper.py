"""The doctor's probe helper: a 640-byte static x86-64 ELF executable, assembled by hand (pure: builds bytes).

gohook.bpf.selftest writes it to a temporary directory and attaches its
uprobe to it: no Go toolchain is needed on user machines, and it looks like
what gohook really probes (a static, non-PIE executable whose probed function
starts with Go's stack check `cmp rsp, [r14+0x10]`, an instruction the kernel
single-steps out of line, as at real Go function entries). It reads one byte
from stdin, then calls `doctor_target`, which writes "x" to stdout and
returns; `_start` then exits 0. `ProbeHelper` carries the facts a probe's
view is checked against (where the target is, the return address at [rsp],
R14 - RSP at entry).

Byte layout (file offset = virtual address - 0x400000; one PT_LOAD maps 0x0-0xbe R+X):

| offset | bytes | what |
|---|---|---|
| 0x000 | 64 | ELF header: ELFCLASS64, LSB, ET_EXEC, EM_X86_64, entry 0x400078, 1 phdr, 5 shdrs at 0x140 |
| 0x040 | 56 | program header: PT_LOAD R+X, file 0x0-0xbe at 0x400000, align 0x1000 |
| 0x078 | 19 | `_start`: mov r14, rsp; read(0, rsp-0x10, 1) (waits until the doctor has attached) |
| 0x08b | 5 | call doctor_target |
| 0x090 | 9 | return site: exit(0) |
| 0x099 | 36 | `doctor_target`: cmp rsp, [r14+0x10]; jbe +0; push rbp; mov rbp, rsp; write(1, msg, 1); pop rbp; ret |
| 0x0bd | 1 | msg: "x" |
| 0x0be | 2 | padding to 8 |
| 0x0c0 | 72 | .symtab: the null symbol, `_start`, `doctor_target` (GLOBAL FUNC in .text), 24 bytes each |
| 0x108 | 22 | .strtab: "\\0_start\\0doctor_target\\0" |
| 0x11e | 33 | .shstrtab: "\\0.text\\0.symtab\\0.strtab\\0.shstrtab\\0" |
| 0x13f | 1 | padding to 8 |
| 0x140 | 320 | section headers: null, .text, .symtab, .strtab, .shstrtab, 64 bytes each |

Total 0x280 = 640 bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["HELPER_BASE", "ProbeHelper", "probe_helper"]

HELPER_BASE = 0x400000  # static, non-PIE, like a default Go build
_EHDR, _PHDR, _SHDR, _SYM = 64, 56, 64, 24


@dataclass(frozen=True, slots=True)
class ProbeHelper:
    """The helper executable: its bytes and the facts the checks compare the probe's view against."""

    data: bytes
    target_offset: int  # file offset of doctor_target (where the uprobe goes)
    target_address: int  # its virtual address
    return_address: int  # [rsp] at doctor_target's entry
    output: bytes  # what doctor_target writes to stdout

    @property
    def rsp_to_r14(self) -> int:
        """R14 - RSP at doctor_target's entry: _start sets R14 = RSP, the call pushes 8 bytes."""
        return 8


def _code() -> tuple[bytes, int, int, int]:
    """Machine code of _start and doctor_target: (code, target offset, return-site offset, message offset)."""
    start = bytes.fromhex(
        "4989e6"          # mov r14, rsp           (Go keeps g in R14: give the stack check a valid base)
        "31c0"            # xor eax, eax           (SYS_read)
        "31ff"            # xor edi, edi           (fd 0)
        "488d7424f0"      # lea rsi, [rsp-0x10]
        "ba01000000"      # mov edx, 1
        "0f05"            # syscall                (wait for the doctor to attach)
    )
    call_at = len(start)
    after_call = bytes.fromhex(
        "b83c000000"      # mov eax, 60            (SYS_exit)
        "31ff"            # xor edi, edi
        "0f05"            # syscall
    )
    ret_site = call_at + 5
    target = ret_site + len(after_call)
    body_head = bytes.fromhex(
        "493b6610"        # cmp rsp, [r14+0x10]    (Go's stack check: the probed, single-stepped instruction)
        "7600"            # jbe +0
        "55"              # push rbp
        "4889e5"          # mov rbp, rsp
        "b801000000"      # mov eax, 1             (SYS_write)
        "bf01000000"      # mov edi, 1             (fd 1)
        "488d35"          # lea rsi, [rip+msg]     (rel32 follows)
    )
    body_tail = bytes.fromhex(
        "ba01000000"      # mov edx, 1
        "0f05"            # syscall
        "5d"              # pop rbp
        "c3"              # ret
    )
    lea_end = target + len(body_head) + 4
    msg = lea_end + len(body_tail)
    code = (start + b"\xe8" + struct.pack("<i", target - ret_site) + after_call
            + body_head + struct.pack("<i", msg - lea_end) + body_tail + b"x")
    return code, target, ret_site, msg


def probe_helper() -> ProbeHelper:
    """Build the helper: ELF header, one R+X PT_LOAD, code, and .symtab naming _start and doctor_target."""
    code, target, ret_site, msg = _code()
    text_off = _EHDR + _PHDR
    strtab = b"\0_start\0doctor_target\0"
    shstrtab = b"\0.text\0.symtab\0.strtab\0.shstrtab\0"
    symtab_off = (text_off + len(code) + 7) & ~7
    syms = [(0, 0, 0, 0, 0), (1, 0x12, 1, HELPER_BASE + text_off, target),  # _start: GLOBAL FUNC in .text
            (8, 0x12, 1, HELPER_BASE + text_off + target, len(code) - target)]
    symtab = b"".join(struct.pack("<IBBHQQ", name, info, 0, shndx, value, size)
                      for name, info, shndx, value, size in syms)
    strtab_off = symtab_off + len(symtab)
    shstrtab_off = strtab_off + len(strtab)
    shoff = (shstrtab_off + len(shstrtab) + 7) & ~7
    sections = [
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        (1, 1, 6, HELPER_BASE + text_off, text_off, len(code), 0, 0, 16, 0),  # .text PROGBITS AX
        (7, 2, 0, 0, symtab_off, len(symtab), 3, 1, 8, _SYM),  # .symtab -> .strtab, first global 1
        (15, 3, 0, 0, strtab_off, len(strtab), 0, 0, 1, 0),
        (23, 3, 0, 0, shstrtab_off, len(shstrtab), 0, 0, 1, 0),
    ]
    ehdr = struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0,  # 64-bit, LSB, SysV
                       2, 62, 1, HELPER_BASE + text_off, _EHDR, shoff,  # ET_EXEC, EM_X86_64, entry
                       0, _EHDR, _PHDR, 1, _SHDR, len(sections), 4)
    load_size = text_off + len(code)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, HELPER_BASE, HELPER_BASE, load_size, load_size, 0x1000)  # PT_LOAD R+X
    out = bytearray(ehdr + phdr + code)
    out += bytes(symtab_off - len(out)) + symtab + strtab + shstrtab
    out += bytes(shoff - len(out))
    out += b"".join(struct.pack("<IIQQQQIIQQ", *s) for s in sections)
    return ProbeHelper(bytes(out), text_off + target, HELPER_BASE + text_off + target,
                       HELPER_BASE + text_off + ret_site, code[msg:msg + 1])

