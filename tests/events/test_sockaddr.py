"""Decoding of struct sockaddr arguments (syscall.connect) into readable addresses."""

import socket
import struct

from gohook.events.decode import format_sockaddr


def test_ipv4() -> None:
    raw = struct.pack("<H", socket.AF_INET) + struct.pack(">H", 8080) + socket.inet_aton("127.0.0.1") + b"\0" * 8
    assert format_sockaddr(raw) == "127.0.0.1:8080"


def test_ipv6() -> None:
    raw = (struct.pack("<H", socket.AF_INET6) + struct.pack(">H", 443) + b"\0" * 4
           + socket.inet_pton(socket.AF_INET6, "::1") + b"\0" * 4)
    assert format_sockaddr(raw) == "[::1]:443"


def test_unix_paths() -> None:
    assert format_sockaddr(struct.pack("<H", socket.AF_UNIX) + b"/run/x.sock\0junk") == "unix:/run/x.sock"
    assert format_sockaddr(struct.pack("<H", socket.AF_UNIX) + b"\0hidden\0") == "unix:@hidden"


def test_short_and_unknown() -> None:
    assert format_sockaddr(b"\x02") is None
    assert format_sockaddr(struct.pack("<H", 16) + b"\x01\x02") == "family 16: 10000102"


def test_ipport() -> None:
    from gohook.events.decode import format_ipport

    v4mapped = bytes([16]) + b"\0" * 10 + b"\xff\xff" + bytes([127, 0, 0, 1]) + (8080).to_bytes(8, "little")
    assert format_ipport(v4mapped) == "127.0.0.1:8080"
    v4 = bytes([4, 10, 0, 0, 7]) + b"\0" * 12 + (443).to_bytes(8, "little")
    assert format_ipport(v4) == "10.0.0.7:443"
    anyaddr = bytes([0]) + b"\0" * 16 + (0).to_bytes(8, "little")
    assert format_ipport(anyaddr) == ":0"
    assert format_ipport(b"\x04") is None
