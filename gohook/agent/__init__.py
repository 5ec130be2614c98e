"""`gohook agent`: one long-running enforcer per machine (the stage after attach).

    policy dir -> match (exec events, running processes) -> per-file sessions (plan, BPF, attach, pins)
              -> events (JSON lines, --events FILE) and metrics (Prometheus)

policies: the policy directory (`match:` sections, last good policy per file); identity: what a program
file is (inode, Go build ID, main module); matching: which policy applies to a file; sessions: one attached,
pinned enforcement program per probed file, updated in place on reload; metrics: the Prometheus registry and
the /metrics and /healthz endpoints; service: the loop that ties them together.
"""

PIN_ROOT = "/sys/fs/bpf/gohook/agent"  # bpffs directory of the sessions' pinned probes (gohook.agent.sessions)
