#!/usr/bin/env bash
# Build promql-check (Prometheus's PromQL parser, version pinned in this directory's
# go.mod, with main.go) once into a cache outside the repository, and print the binary.
#
#   bin=$(tools/promql/build.sh | tail -1)   # build if needed; last stdout line = binary
#   tools/promql/build.sh --print-dir        # print the cache dir, do not build
#   tools/promql/build.sh --check            # exit 0 if cached and runnable, else 1
#
# Cache root: $PURELB_PROMQL_CACHE (default ~/.cache/purelb/promql).
# Go: $GO if set, else `go` on PATH, else /usr/local/go/bin/go (>= 1.26 needed).
# Progress goes to stderr; only the binary's path is written to stdout.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export GOTOOLCHAIN=local
export CGO_ENABLED=0

# shellcheck source=../kube/lib.sh
. "$script_dir/../kube/lib.sh"
start_script promql 2,11 "$@"

# A one-line `require MODULE VERSION` (lib.sh's modver reads require blocks).
prom_version=$(awk '$1 == "require" && $2 == "github.com/prometheus/prometheus" { print $3; exit }' "$script_dir/go.mod")
[[ -n $prom_version ]] || die "cannot read the github.com/prometheus/prometheus version from $script_dir/go.mod"
cache_root=${PURELB_PROMQL_CACHE:-$HOME/.cache/purelb/promql}
# The key covers our source too: a changed main.go or go.sum is a new build.
key="$prom_version-$(cat "$script_dir/main.go" "$script_dir/go.sum" | sha256sum | cut -c1-12)"
dir="$cache_root/$key"

# A cache entry is good if the binary parses an expression and names its metric.
cached_ok() {
  [[ -x $1/promql-check ]] || return 1
  [[ $(echo '["up == 0"]' | "$1/promql-check" 2>/dev/null) == '[{"expr":"up == 0","metrics":["up"]}]' ]]
}

if [[ $mode == build ]] && cached_ok "$dir"; then
  echo "$dir/promql-check"
  exit 0
fi
serve_cached "$mode" "$dir"

# ---- cold path -------------------------------------------------------------

find_go 1.26 "promql-check (Prometheus $prom_version's PromQL parser)"
begin_build "$key" "$dir"
log "cold build of promql-check with Prometheus $prom_version and $go_ver into $dir (full log: $build_log)"
if ! (cd "$script_dir" && "$go_bin" build -mod=readonly -v -trimpath -ldflags "-s -w" -o "$tmp/promql-check" . 2>&1) | progress "go build"; then
  die "go build failed after $((SECONDS - start)) s (log: $build_log)"
fi
cached_ok "$tmp" || die "the built $tmp/promql-check does not parse 'up == 0'"
{
  echo "prometheus $prom_version"
  echo "go $go_ver"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - start)) s"
} >"$tmp/BUILDINFO"
finish_build "$dir" >/dev/null
echo "$dir/promql-check"
