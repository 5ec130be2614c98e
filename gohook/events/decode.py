"""Decode ring-buffer records of the BPF program into frozen dataclasses.

Pipeline stage 5 of: binary -> plan -> BPF -> attach -> **events** -> views.
Pure: bytes in, `Event` out; no kernel, no bcc. The record is `struct
gohook_event` of gohook/bpf/c/gohook.h; its Python view (`EventLayout`, the
decision and flag values) is gohook.bpf.abi, checked against the compiled C
layout by tests/bpf/test_abi.py. Only the first `nframes` return addresses
are valid; a record may stop right after them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from gohook.bpf.abi import (
    DEFAULT_LAYOUT,
    HEADER_FIELDS,
    SYSCALL_HOOK,
    SYSCALL_I386,
    SYSCALL_OPENED,
    ArgKind,
    Decision,
    EventFlag,
    EventLayout,
)
from gohook.errors import GohookError


class EventError(GohookError):
    """A ring-buffer record does not have the shape of struct gohook_event."""


@dataclass(frozen=True, slots=True)
class Event:
    """One hooked call as the kernel saw it. Addresses in `frames` are run-time addresses."""

    time_ns: int  # CLOCK_MONOTONIC
    pid: int
    tid: int
    goid: int  # 0 when unknown
    hook_id: int
    capability: int  # bit index in EnforcementPlan.capabilities
    decision: Decision
    module: int  # responsible module id (0: std / unattributed)
    flags: EventFlag
    bias: int  # load bias: run-time address - static address
    arg_kind: ArgKind
    arg: bytes  # raw argument bytes (arg_len of them)
    frames: tuple[int, ...]  # return addresses, innermost first: [RSP] then the frame-pointer chain
    # EventFlag.ARG_SCOPED: 1 + index of the plan's argument pattern that allowed the call (0: none did)
    pattern: int = 0
    # bpf_get_current_cgroup_id() at the call: the cgroup v2 id (the inode number of its directory; 0: none),
    # kept because a killed process's /proc/PID/cgroup is gone before its event is read
    cgroup_id: int = 0

    @property
    def static_frames(self) -> tuple[int, ...]:
        """Return addresses as static vaddrs of the binary (what GoBinary.frames expects)."""
        return tuple(pc - self.bias for pc in self.frames)

    @property
    def argument(self) -> str | None:
        """The argument as text: the string, or the integer in decimal; None when not captured."""
        if self.arg_kind in (ArgKind.STRING, ArgKind.CSTRING, ArgKind.STRING_SLICE0, ArgKind.STRFIELD0):
            return self.arg.decode("utf-8", "backslashreplace")
        if self.arg_kind == ArgKind.INT and len(self.arg) == 8:
            return str(int.from_bytes(self.arg, "little", signed=True))
        if self.arg_kind == ArgKind.SOCKADDR:
            return format_sockaddr(self.arg)
        if self.arg_kind == ArgKind.IPPORT:
            return format_ipport(self.arg)
        if self.arg_kind == ArgKind.INTFIELD0 and len(self.arg) == 8:
            return str(int.from_bytes(self.arg, "little", signed=True))
        return None

    @property
    def attributed(self) -> bool:
        return not self.flags & EventFlag.UNATTRIBUTED

    @property
    def syscall_nr(self) -> int | None:
        """The x86-64 system call number of a sentinel or guard event, else None."""
        if not self.hook_id & SYSCALL_HOOK or self.hook_id & SYSCALL_I386:
            return None
        return self.hook_id & 0xFFFF

    @property
    def opened(self) -> bool:
        """Judged at an open's exit by the file it opened (the file-open judge), not at a call's entry."""
        return bool(self.hook_id & SYSCALL_HOOK and self.hook_id & SYSCALL_OPENED)

    @property
    def i386_nr(self) -> int | None:
        """The i386 system call number of a call through `int 0x80` or `sysenter` (the sentinel), else None."""
        if self.hook_id & SYSCALL_HOOK and self.hook_id & SYSCALL_I386:
            return self.hook_id & 0xFFFF
        return None


AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10


def format_ipport(raw: bytes) -> str | None:
    """A net.TCPAddr-style argument ([ip len][16 ip bytes][port u64]) as `ip:port` (`:port` for any address)."""
    if len(raw) < 25:
        return None
    import ipaddress

    n = raw[0]
    port = int.from_bytes(raw[17:25], "little", signed=True)
    ip = bytes(raw[1 : 1 + n])
    if n == 4 or (n == 16 and ip.startswith(b"\x00" * 10 + b"\xff\xff")):
        return f"{ipaddress.IPv4Address(ip[-4:])}:{port}"
    if n == 16:
        return f"[{ipaddress.IPv6Address(ip)}]:{port}"
    return f":{port}"


def format_sockaddr(raw: bytes) -> str | None:
    """A kernel struct sockaddr as text: `127.0.0.1:80`, `[::1]:443`, `unix:/run/x.sock`, `unix:@abstract`."""
    if len(raw) < 2:
        return None
    family = int.from_bytes(raw[:2], "little")
    if family == AF_INET and len(raw) >= 8:
        port = int.from_bytes(raw[2:4], "big")
        return f"{'.'.join(str(b) for b in raw[4:8])}:{port}"
    if family == AF_INET6 and len(raw) >= 24:
        import ipaddress

        port = int.from_bytes(raw[2:4], "big")
        return f"[{ipaddress.IPv6Address(bytes(raw[8:24]))}]:{port}"
    if family == AF_UNIX:
        path = raw[2:]
        if path[:1] == b"\x00":
            return "unix:@" + path[1:].split(b"\x00", 1)[0].decode("utf-8", "backslashreplace")
        return "unix:" + path.split(b"\x00", 1)[0].decode("utf-8", "backslashreplace")
    return f"family {family}: {bytes(raw).hex()}"


def decode_event(data: bytes | bytearray | memoryview, layout: EventLayout = DEFAULT_LAYOUT) -> Event:
    """Decode one ring-buffer record. Raises EventError when the record is malformed."""
    data = bytes(data)
    if len(data) < layout.frames_offset:
        raise EventError(f"event record of {len(data)} bytes is shorter than its header "
                         f"({layout.frames_offset} bytes)")
    fields = dict(zip((name for name, _ in HEADER_FIELDS), layout.header.unpack_from(data, 0), strict=True))
    nframes, arg_len = fields["nframes"], fields["arg_len"]
    if nframes > layout.max_frames:
        raise EventError(f"event claims {nframes} frames; at most {layout.max_frames} fit")
    need = layout.frames_offset + 8 * nframes
    if len(data) < need:
        raise EventError(f"event record of {len(data)} bytes is cut: {nframes} frames need {need} bytes")
    if arg_len > layout.arg_max:
        raise EventError(f"event claims {arg_len} argument bytes; the buffer holds {layout.arg_max}")
    try:
        decision = Decision(fields["decision"])
        arg_kind = ArgKind(fields["arg_kind"])
    except ValueError as exc:
        raise EventError(f"event has an unknown code: {exc}") from None
    arg = data[layout.arg_offset:layout.arg_offset + arg_len]
    frames = struct.unpack_from(f"<{nframes}Q", data, layout.frames_offset)
    return Event(
        time_ns=fields["time_ns"],
        pid=fields["pid"],
        tid=fields["tid"],
        goid=fields["goid"],
        hook_id=fields["hook_id"],
        capability=fields["capability"],
        decision=decision,
        module=fields["module"],
        flags=EventFlag(fields["flags"]),
        bias=fields["bias"],
        arg_kind=arg_kind,
        arg=arg,
        frames=tuple(frames),
        pattern=fields["pattern"],
        cgroup_id=fields["cgroup_id"],
    )


def decode_events(records: Iterable[bytes], layout: EventLayout = DEFAULT_LAYOUT) -> list[Event]:
    """Every record of a poll (gohook.bpf.loader.Attached.poll/drain), decoded."""
    return [decode_event(r, layout) for r in records]


def encode_event(event: Event, layout: EventLayout = DEFAULT_LAYOUT) -> bytes:
    """The record the kernel would send for event (the inverse of decode_event; for tests and replays)."""
    if len(event.frames) > layout.max_frames or len(event.arg) > layout.arg_max:
        raise EventError("event does not fit the layout")
    values = {
        "time_ns": event.time_ns, "goid": event.goid, "bias": event.bias, "pid": event.pid,
        "tid": event.tid, "hook_id": event.hook_id, "capability": event.capability,
        "flags": int(event.flags), "module": event.module, "decision": int(event.decision),
        "arg_kind": int(event.arg_kind), "arg_len": len(event.arg), "nframes": len(event.frames),
        "pattern": event.pattern, "cgroup_id": event.cgroup_id,
    }
    header = layout.header.pack(*(values[name] for name, _ in HEADER_FIELDS))
    return header + event.arg.ljust(layout.arg_max, b"\0") + struct.pack(f"<{len(event.frames)}Q", *event.frames)
