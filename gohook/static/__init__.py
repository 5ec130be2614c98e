"""gohook.static: what the machine code can reach, without running it (inspect, policy generate).

callgraph: direct calls from disassembly (lazy, capstone); analysis: which module reaches which
capability, with an example path, and the gaps gohook cannot see; inspection: the whole `inspect`
result for one binary (sites + call graph + analysis) as data.
"""
