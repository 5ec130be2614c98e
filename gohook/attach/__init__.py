"""gohook.attach: the ptrace side of enforcement (pipeline stages: bpf -> attach -> events).

tracer: a thread that ptraces target processes (every thread of each, or only the main thread as a
fail-closed leash), passes their signals on untouched, and at a SIGSYS the BPF program sent to a denied
call lets a callback rewrite the thread's registers so the hooked Go function returns an error instead of
the process dying (issue 15 §2). It is pure ptrace: it imports nothing of gohook.bpf, events or session;
the session wires the callback to the BPF maps.
"""
