#!/usr/bin/env bash
# Set everything up (idempotent), then run the demo: build a service whose
# dependency phones home, inspect it, generate and tighten a policy, run it
# under audit, under enforcement, then with action: error (scripts/demo.py
# prints every step).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
exec .venv/bin/python scripts/demo.py
