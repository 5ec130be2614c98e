#!/usr/bin/env bash
# Set everything up (idempotent) and run the whole test suite: lint, then pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
echo "test: ruff check"
.venv/bin/ruff check gohook tests bench
echo "test: pytest"
exec .venv/bin/python -m pytest -q -ra "$@"
