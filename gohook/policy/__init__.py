"""gohook.policy: what each module may do (stage after static analysis, before the plan).

format: the policy file (load with a file:line in every error, match modules, render), and the knobs
it sets (Action, Mode, Attribution); generate: a policy from static analysis; learn: a policy from
observed calls; ops: merge (union with provenance) and diff (what a new policy grants more).
"""
