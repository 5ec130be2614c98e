#!/usr/bin/env bash
# Fetch real Go binaries built by old Go releases (pclntab magics 0xfffffffb
# and 0xfffffffa), which no toolchain we install can produce any more.
#
# They come from esbuild's linux x86-64 npm packages, which ship the prebuilt
# esbuild executable; each version was built with the Go of its day. Each one
# is pinned by the registry's sha512 integrity of its tarball and the sha256 of
# the binary inside, and lands under a stable name:
#
#   ${GOHOOK_CACHE:-/var/cache/gohook}/oldbin/<name>
#
# Idempotent: a binary already there with the pinned sha256 is not fetched
# again. Prints one line per binary:
#
#   fetch: <name> <path> <package>@<version> <go version> <pclntab magic>
#
# and, for anything it cannot do, one line "fetch: cannot ...: why" (exit 1).
# See docs/old-formats.md.
set -uo pipefail

CACHE="${GOHOOK_CACHE:-/var/cache/gohook}"
OUT="$CACHE/oldbin"

# name | npm package | version | tarball integrity (sha512) | binary sha256 | Go version | magic
# The Go version was read with `go version` (go1.12.9: the runtime.buildVersion
# string; that binary predates .go.buildinfo).
BINARIES=(
  "go1.12.9-esbuild-0.0.2|esbuild-linux-64|0.0.2|sha512-XqQeEsjUbAK5HVVxT330nkIZo/zucZcuf0z2l0urwDmtfrUwo4X0HEftVyYH3pdVXHt6PjE5xSKXK3pfXuJjpw==|0f9fa8b6ac2182101280a1746f5f4056cba6deafd37f92f4e09fa34c09d7cd64|go1.12.9|0xfffffffb"
  "go1.13.8-esbuild-0.1.0|esbuild-linux-64|0.1.0|sha512-eubAI/9QEf5XU62n0uHv3+cYCH1MpmIShkAvB8pVt/xsHulBB+IPJI+mceI5P09gFrwfoeJIKc1wD+apLNVn3w==|cfcf5209432e7736e616b7467f1d4b25b6c3eff64eb84a1afb4040f74c488289|go1.13.8|0xfffffffb"
  "go1.15-esbuild-0.8.0|esbuild-linux-64|0.8.0|sha512-GOSEEvV6/4xrt1As42uMDTzp9US1Cz+6L4qSZbukHzX+OnCVJa5ZIObuJt7qqocUIcWywDUeB4+UPv3Dvf44/g==|5a9a5446416192bd829dd9a869d214c820b976d85738453811ad37a04cd35e2b|go1.15|0xfffffffb"
  "go1.16-esbuild-0.8.57|esbuild-linux-64|0.8.57|sha512-+6Cng2L8ed6/DWOS+t2Dj8/54uIvWqpNg25UFC3CPAmAYkZR/tCKEsIHyKeUzvLCXtZ++jIsylr7UMwMuveTLA==|c113262e26944f88d64ab35488983fc64d3215b8a7a4a39f4e5e55918250ed4c|go1.16|0xfffffffa"
  "go1.17.2-esbuild-0.13.15|esbuild-linux-64|0.13.15|sha512-eCKzkNSLywNeQTRBxJRQ0jxRCl2YWdMB3+PkWFo2BBQYC5mISLIVIjThNtn6HUNqua1pnvgP5xX0nHbZbPj5oA==|593df79f645e8c303491a3124a0d998c9c3e4dbef7eee5f9cc112cac46fe3d0a|go1.17.2|0xfffffffa"
)
MEMBER="package/bin/esbuild"   # the binary's path inside every one of these tarballs

FAILED=0
cannot() { printf 'fetch: cannot %s\n' "$*" >&2; FAILED=1; }

# Hashes through Debian's python3 (always present; openssl or xxd may not be).
integrity() { /usr/bin/python3 -c 'import base64,hashlib,sys; print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$1"; }
# The first informative line of npm's error output (not its code/errno/syscall lines).
npm_reason() {
  grep -E '^npm (error|ERR!) ' "$1" | grep -v -E '^npm (error|ERR!) (code|errno|syscall) ' | head -1 \
    | sed -E 's/^npm (error|ERR!) //' | grep . || tail -1 "$1"
}
sha256() { sha256sum "$1" | cut -d' ' -f1; }

if ! mkdir -p "$OUT" 2>/dev/null; then
  cannot "create $OUT"
  exit 1
fi

fetch_one() {
  local name=$1 pkg=$2 ver=$3 want_int=$4 want_sha=$5
  local dest="$OUT/$name" tgz="$OUT/$pkg-$ver.tgz" tmp
  if [[ -f "$dest" && "$(sha256 "$dest")" == "$want_sha" ]]; then
    return 0
  fi
  if [[ ! -f "$tgz" || "$(integrity "$tgz")" != "$want_int" ]]; then
    command -v npm >/dev/null || { cannot "fetch $pkg@$ver: npm is not installed"; return 1; }
    tmp=$(mktemp -d "$OUT/.fetch.XXXXXX") || { cannot "make a temporary folder in $OUT"; return 1; }
    if ! (cd "$tmp" && npm pack --loglevel=error --fetch-retries=1 --cache "$CACHE/npm-cache" "$pkg@$ver" \
          >"$tmp/npm.log" 2>&1); then
      cannot "npm pack $pkg@$ver: $(npm_reason "$tmp/npm.log")"
      rm -rf "$tmp"
      return 1
    fi
    if [[ ! -f "$tmp/$pkg-$ver.tgz" ]]; then
      cannot "npm pack $pkg@$ver: no $pkg-$ver.tgz was written"
      rm -rf "$tmp"
      return 1
    fi
    local got
    got=$(integrity "$tmp/$pkg-$ver.tgz")
    if [[ "$got" != "$want_int" ]]; then
      cannot "verify $pkg@$ver: tarball sha512 is $got, pinned $want_int"
      rm -rf "$tmp"
      return 1
    fi
    mv -f "$tmp/$pkg-$ver.tgz" "$tgz"
    rm -rf "$tmp"
  fi
  tmp=$(mktemp -d "$OUT/.extract.XXXXXX") || { cannot "make a temporary folder in $OUT"; return 1; }
  if ! tar -xzf "$tgz" -C "$tmp" "$MEMBER" 2>"$tmp/tar.log"; then
    cannot "extract $MEMBER from $tgz: $(head -1 "$tmp/tar.log")"
    rm -rf "$tmp"
    return 1
  fi
  local sha
  sha=$(sha256 "$tmp/$MEMBER")
  if [[ "$sha" != "$want_sha" ]]; then
    cannot "verify $name: binary sha256 is $sha, pinned $want_sha"
    rm -rf "$tmp"
    return 1
  fi
  chmod 0755 "$tmp/$MEMBER" && mv -f "$tmp/$MEMBER" "$dest"
  rm -rf "$tmp"
}

for entry in "${BINARIES[@]}"; do
  IFS='|' read -r name pkg ver want_int want_sha gover magic <<<"$entry"
  if fetch_one "$name" "$pkg" "$ver" "$want_int" "$want_sha"; then
    printf 'fetch: %s %s %s@%s %s %s\n' "$name" "$OUT/$name" "$pkg" "$ver" "$gover" "$magic"
  fi
done
exit "$FAILED"
