"""gohook.plan: catalog + hook sites + policy -> one frozen EnforcementPlan (the BPF side's only input).

model: the plan's frozen dataclasses; build: the planner (module ids, allowed masks, hook points,
provenance and sentinel probes); handmade: small plans made by hand, for tests and benchmarks that
exercise the BPF program without the planner.
"""
