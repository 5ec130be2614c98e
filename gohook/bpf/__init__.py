"""gohook.bpf: the BPF side of enforcement (pipeline stages: plan -> BPF -> attach -> events).

abi: the Python mirror of the C header gohook.h (struct layouts, flags, counters, kinds, constants), a
base module any stage may import; render: plan -> -D defines, kernel tables and the program text (pure);
loader: compile with bcc, fill the maps, attach the uprobes, poll the ring buffer; errors: what fails
here. The C is package data in c/ (gohook.bpf.c, gohook.h, lib/*.h).

Nothing is imported here: gohook.plan imports gohook.bpf.abi, and gohook.bpf.render imports gohook.plan,
so importing render with the package would be an import cycle. Import the modules themselves.
"""
