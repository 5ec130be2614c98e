"""gohook.attribution: where a return address becomes a module (Python side).

ranges: text address -> modules of the logical frames at that PC (inline trees included), the range
table the BPF program binary-searches (C side: gohook/bpf/c/lib/attribution.h). docs/architecture.md
follows a return address end to end.
"""
