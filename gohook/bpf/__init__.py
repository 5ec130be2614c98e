"""gohook.bpf: the BPF side of enforcement (pipeline stages: plan -> BPF -> attach -> events).

render: plan -> -D defines and kernel tables (pure); loader: compile with bcc,
fill the maps, attach the uprobes, poll the ring buffer. The C lives in bpf/.
"""

from gohook.bpf.errors import (
    AttachError,
    BpfError,
    BpfUnavailableError,
    CompileError,
    PlanTableError,
    VerifierError,
)
from gohook.bpf.render import KernelTables, ProgramOptions, build_tables, render_cflags, render_program

__all__ = [
    "AttachError",
    "BpfError",
    "BpfUnavailableError",
    "CompileError",
    "KernelTables",
    "PlanTableError",
    "ProgramOptions",
    "VerifierError",
    "build_tables",
    "render_cflags",
    "render_program",
]
