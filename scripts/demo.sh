#!/usr/bin/env bash
# Set everything up (idempotent), build the bundled demo service and run gohook on it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
GO="${GOHOOK_CACHE:-/var/cache/gohook}/go/1.27.3/go/bin/go"
OUT="$ROOT/build/demo"
mkdir -p "$OUT"
echo "demo: building testdata/go/demo with $($GO version)"
(cd testdata/go/demo && GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod CGO_ENABLED=0 "$GO" build -o "$OUT/demo" .)
echo "demo: \$ gohook symbols build/demo/demo   (functions of the demo's non-std modules)"
.venv/bin/gohook symbols "$OUT/demo" --json | .venv/bin/python -c '
import json, sys
doc = json.load(sys.stdin)
funcs = doc["functions"]
print("Go", doc["go_version"], "| main module", doc["main_module"], "|", len(funcs), "functions")
for f in funcs:
    if f["module"] != "std":
        print("  %#x  %-28s %s" % (f["entry"], f["module"], f["name"]))
'
