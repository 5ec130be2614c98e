"""gohook.events.decode: the pure decoder of ring-buffer records (no kernel needed)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gohook.bpf.abi import DEFAULT_LAYOUT, ArgKind, Decision, EventFlag, EventLayout
from gohook.events.decode import (
    Event,
    EventError,
    decode_event,
    encode_event,
)


def _event(**changes: object) -> Event:
    base = dict(time_ns=123, pid=4242, tid=4243, goid=1, hook_id=7, capability=3, decision=Decision.DENY,
                module=2, flags=EventFlag.STOP_GOEXIT, bias=0x5555_0000_0000, arg_kind=ArgKind.STRING,
                arg=b"/etc/passwd", frames=(0x5555_0040_1234, 0x5555_0040_5678), cgroup_id=0x1_0000_2a2b)
    base.update(changes)
    return Event(**base)  # type: ignore[arg-type]


def test_round_trip() -> None:
    ev = _event()
    assert decode_event(encode_event(ev)) == ev


def test_record_is_cut_after_nframes() -> None:
    data = encode_event(_event(frames=(1, 2, 3)))
    assert len(data) == DEFAULT_LAYOUT.frames_offset + 3 * 8
    # the kernel may send the whole struct: trailing frames beyond nframes are ignored
    padded = data + b"\xff" * 8 * (DEFAULT_LAYOUT.max_frames - 3)
    assert decode_event(padded).frames == (1, 2, 3)


def test_cgroup_id_is_the_u64_after_bias() -> None:
    """cgroup_id: the 8 little-endian bytes right after bias (struct gohook_event), whatever else the record holds."""
    data = bytearray(encode_event(_event(cgroup_id=0)))
    assert DEFAULT_LAYOUT.offsets()["cgroup_id"] == 24
    data[24:32] = (0x0102_0304_0506_0708).to_bytes(8, "little")
    ev = decode_event(bytes(data))
    assert ev.cgroup_id == 0x0102_0304_0506_0708
    assert (ev.bias, ev.pid) == (_event().bias, _event().pid)


def test_static_frames_subtract_the_bias() -> None:
    ev = _event(bias=0x1000, frames=(0x401234 + 0x1000,))
    assert ev.static_frames == (0x401234,)


@pytest.mark.parametrize(("kind", "raw", "text"), [
    (ArgKind.STRING, b"/tmp/x", "/tmp/x"),
    (ArgKind.CSTRING, b"/bin/true", "/bin/true"),
    (ArgKind.STRING_SLICE0, b"/bin/sh", "/bin/sh"),
    (ArgKind.STRING, b"bad\xffutf8", "bad\\xffutf8"),
    (ArgKind.INT, struct.pack("<q", -100), "-100"),
    (ArgKind.INT, struct.pack("<q", 0o644), "420"),
    (ArgKind.NONE, b"", None),
])
def test_argument_text(kind: ArgKind, raw: bytes, text: str | None) -> None:
    assert decode_event(encode_event(_event(arg_kind=kind, arg=raw))).argument == text


def test_decision_and_flags() -> None:
    ev = decode_event(encode_event(_event(decision=Decision.AUDIT, flags=EventFlag.UNATTRIBUTED | EventFlag.DIRECT)))
    assert ev.decision is Decision.AUDIT and ev.decision.label == "audit"
    assert not ev.attributed
    assert EventFlag.DIRECT in ev.flags


def test_short_header_raises() -> None:
    with pytest.raises(EventError, match="shorter than its header"):
        decode_event(b"\0" * 40)


def test_cut_frames_raise() -> None:
    data = encode_event(_event(frames=(1, 2, 3)))
    with pytest.raises(EventError, match="is cut"):
        decode_event(data[:-1])


def test_too_many_frames_raise() -> None:
    data = bytearray(encode_event(_event(frames=())))
    struct.pack_into("<H", data, DEFAULT_LAYOUT.offsets()["nframes"], DEFAULT_LAYOUT.max_frames + 1)
    with pytest.raises(EventError, match="frames"):
        decode_event(bytes(data))


def test_unknown_decision_raises() -> None:
    data = bytearray(encode_event(_event()))
    data[DEFAULT_LAYOUT.offsets()["decision"]] = 9
    with pytest.raises(EventError, match="unknown code"):
        decode_event(bytes(data))


def test_arg_len_beyond_buffer_raises() -> None:
    data = bytearray(encode_event(_event()))
    struct.pack_into("<H", data, DEFAULT_LAYOUT.offsets()["arg_len"], DEFAULT_LAYOUT.arg_max + 1)
    with pytest.raises(EventError, match="argument bytes"):
        decode_event(bytes(data))


def test_other_layouts() -> None:
    layout = EventLayout(max_frames=128, arg_max=64)
    ev = _event(frames=tuple(range(128)), arg=b"x" * 63)
    assert decode_event(encode_event(ev, layout), layout) == ev
    assert layout.size == layout.frames_offset + 128 * 8
    with pytest.raises(ValueError):
        EventLayout(max_frames=60)


@given(
    frames=st.lists(st.integers(0, 2**64 - 1), max_size=DEFAULT_LAYOUT.max_frames),
    arg=st.binary(max_size=DEFAULT_LAYOUT.arg_max - 1),
    ids=st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1),
                  st.integers(0, 0xFFFF), st.integers(0, 2**64 - 1)),
    decision=st.sampled_from(Decision),
)
def test_round_trip_any(frames: list[int], arg: bytes, ids: tuple[int, int, int, int, int],
                        decision: Decision) -> None:
    pid, tid, goid, module, cgroup_id = ids
    ev = _event(frames=tuple(frames), arg=arg, pid=pid, tid=tid, goid=goid, module=module, decision=decision,
                cgroup_id=cgroup_id)
    assert decode_event(encode_event(ev)) == ev
