#!/usr/bin/env bash
# Build kube-apiserver and etcd (versions pinned in this directory's go.mod) once
# into a per-version cache outside the repository, and print that directory.
#
#   dir=$(tools/kube/build.sh | tail -1)    # build if needed; last stdout line = dir
#   tools/kube/build.sh --print-dir         # print the dir, do not build
#   tools/kube/build.sh --check             # exit 0 if cached and runnable, else 1
#
# Cache root: $PURELB_KUBE_CACHE (default ~/.cache/purelb/kube).
# Go: $GO if set, else `go` on PATH, else /usr/local/go/bin/go (>= 1.24 needed).
# Progress goes to stderr; only the directory is written to stdout.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export GOTOOLCHAIN=local
export CGO_ENABLED=0

# shellcheck source=lib.sh
. "$script_dir/lib.sh"
start_script kube 2,11 "$@"

k8s_version=$(modver "$script_dir/go.mod" k8s.io/kubernetes)
etcd_version=$(modver "$script_dir/go.mod" go.etcd.io/etcd/server/v3)
[[ -n $k8s_version && -n $etcd_version ]] ||
  die "cannot read k8s.io/kubernetes / go.etcd.io/etcd/server/v3 versions from $script_dir/go.mod"

cache_root=${PURELB_KUBE_CACHE:-$HOME/.cache/purelb/kube}
key="${k8s_version}-etcd${etcd_version#v}"
dir="$cache_root/$key"

# A cache entry is good if both binaries exist, run, and report the pinned versions.
cached_ok() {
  local d=$1 out
  [[ -x $d/kube-apiserver && -x $d/etcd ]] || return 1
  out=$("$d/kube-apiserver" --version 2>/dev/null) || return 1
  [[ $out == *"$k8s_version"* ]] || return 1
  out=$("$d/etcd" --version 2>/dev/null) || return 1
  [[ $out == *"${etcd_version#v}"* ]] || return 1
}

serve_cached "$mode" "$dir"

# ---- cold path -------------------------------------------------------------

find_go 1.24 "kube-apiserver $k8s_version and etcd $etcd_version"
begin_build "$key" "$dir"
log "cold build of kube-apiserver $k8s_version and etcd $etcd_version with $go_ver"
log "into $dir (about 4-6 min on 2 cores, more on slower machines; full log: $build_log)"

build_one() {  # step-label package output
  local step=$1 pkg=$2 out=$3 total
  cd "$script_dir"
  log "$step: resolving package list for $pkg"
  # Upper bound: cached and already-built packages are not printed by -v.
  total=$("$go_bin" list -mod=readonly -deps "$pkg" 2>>"$build_log" | wc -l) || total='?'
  log "$step: go build $pkg"
  if ! "$go_bin" build -mod=readonly -v -trimpath -ldflags "$ldflags" -o "$out" "$pkg" 2>&1 |
    progress "$step" "$total"; then
    die "$step: go build $pkg failed after $((SECONDS - start)) s (log: $build_log)"
  fi
}

minor=${k8s_version#v1.}; minor=${minor%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version"
ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"

build_one "step 1/2 etcd" go.etcd.io/etcd/server/v3 "$tmp/etcd"
build_one "step 2/2 kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver "$tmp/kube-apiserver"

cached_ok "$tmp" || die "built binaries in $tmp do not report $k8s_version / $etcd_version"
{
  echo "kube-apiserver $k8s_version"
  echo "etcd $etcd_version"
  echo "go $go_ver"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - start)) s"
  echo "go.sum sha256 $(sha256sum "$script_dir/go.sum" | cut -d' ' -f1)"
} >"$tmp/BUILDINFO"
finish_build "$dir"
