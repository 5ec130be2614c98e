"""gohook.sites: where to hook (stage after reading the binary).

catalog/: the capability catalog (catalog.yaml: capabilities, hooked functions, argument registers
checked against Go's register ABI); probesite: the probe offset inside a function's prologue; hooks:
the catalog's functions present in a binary, with their probe sites; goruntime: runtime.g / runtime.m
offsets per Go release (one table, verified against DWARF); syscalls: x86-64 system call numbers.
"""
