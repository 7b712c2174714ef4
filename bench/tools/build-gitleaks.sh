#!/usr/bin/env bash
# Builds gitleaks (the masking benchmark's peer) from its Go module, only if the cached binary is missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ver="$(awk '$1=="require" && $2=="github.com/zricethezav/gitleaks/v8" {print $3}' "$here/gitleaks/go.mod")"
cache="${CHAPERONE_CACHE:-$HOME/.cache/chaperone}"
out="$cache/bin/gitleaks-$ver/gitleaks"
if [[ -x "$out" ]]; then
  echo "$out"
  exit 0
fi
mkdir -p "$(dirname "$out")"
echo "==> building gitleaks $ver into $out (first time only, about a minute)" >&2
cd "$here/gitleaks"
# -X sets the version string gitleaks prints; CGO off so the binary has no libc dependency.
CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X github.com/zricethezav/gitleaks/v8/version.Version=$ver" \
  -o "$out.tmp" github.com/zricethezav/gitleaks/v8
mv "$out.tmp" "$out"
echo "$out"
