"""gohook's performance evaluation (issue 6): driven by bench/evaluate.py, reported in docs/performance.md.

Modules, in pipeline order:

- stats:     medians and spreads of repeated runs, the interleaved schedule
- fixture:   the perfapp workload binary (testdata/go/perfapp), private copies, policies
- plans:     enforcement plans for each configuration (shipped, entry placement, scale variants)
- systrace:  the syscall-tracing alternative (bench/perfeval/syscall_trace.bpf.c) and its loader
- configs:   the instrumentations compared, behind one arm/disarm interface
- workloads: microbenchmark and HTTP service runs (wrk)
- report:    Markdown and PNG plots
"""
