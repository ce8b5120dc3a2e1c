#!/usr/bin/env bash
# Build the helm CLI (version pinned in this directory's go.mod) once into a
# per-version cache outside the repository, and print the binary's path.
#
#   helm=$(tools/helm/build.sh | tail -1)   # build if needed; last stdout line = binary
#   tools/helm/build.sh --print-path        # print the path, do not build
#   tools/helm/build.sh --check             # exit 0 if cached and runnable, else 1
#
# Cache root: $PURELB_HELM_CACHE (default ~/.cache/purelb/helm).
# Go: $GO if set, else `go` on PATH, else /usr/local/go/bin/go (>= 1.26 needed).
# Progress goes to stderr; only the binary's path is written to stdout.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export GOTOOLCHAIN=local
export CGO_ENABLED=0

log() { printf '[helm] %s\n' "$*" >&2; }
die() { printf 'tools/helm/build.sh: %s\n' "$*" >&2; exit 2; }

usage() {
  sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

mode=build
case "${1:-}" in
  '') ;;
  --print-path) mode=print ;;
  --check) mode=check ;;
  -h|--help) usage; exit 0 ;;
  *) usage; die "unknown argument: $1" ;;
esac

# Versions come straight from go.mod, so the cached fast path needs no Go at all.
modver() { awk -v m="$1" '($1 == m || $1 == "require") && $NF != "(" {
  for (i = 1; i < NF; i++) if ($i == m && $(i+1) ~ /^v[0-9]/) { print $(i+1); exit } }' "$script_dir/go.mod"; }
helm_version=$(modver helm.sh/helm/v3)
k8s_version=$(modver k8s.io/client-go)
[[ -n $helm_version && -n $k8s_version ]] ||
  die "cannot read helm.sh/helm/v3 / k8s.io/client-go versions from $script_dir/go.mod"

cache_root=${PURELB_HELM_CACHE:-$HOME/.cache/purelb/helm}
dir="$cache_root/$helm_version"
bin="$dir/helm"

# A cache entry is good if the binary exists, runs, and reports the pinned version.
cached_ok() {
  local b=$1 out
  [[ -x $b ]] || return 1
  out=$("$b" version --short 2>/dev/null) || return 1
  [[ $out == "$helm_version"* ]] || return 1
}

case $mode in
  print) echo "$bin"; exit 0 ;;
  check) cached_ok "$bin" && exit 0 || exit 1 ;;
esac

if cached_ok "$bin"; then
  echo "$bin"
  exit 0
fi

# ---- cold path -------------------------------------------------------------

find_go() {
  local cand
  if [[ -n ${GO:-} ]]; then  # an explicit choice is not second-guessed
    cand=$(command -v "$GO" 2>/dev/null) && [[ -x $cand ]] && { echo "$cand"; return 0; }
    return 1
  fi
  for cand in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go; do
    [[ -n $cand && -x $cand ]] && { echo "$cand"; return 0; }
  done
  return 1
}
if [[ -n ${GO:-} ]]; then looked="\$GO=$GO"; else looked="\$GO (unset), 'go' on PATH, /usr/local/go/bin/go"; fi
go_missing_msg="Go >= 1.26 is needed to build helm $helm_version
(looked for: $looked).
Install Go >= 1.26 from https://go.dev/dl/ or set GO=/path/to/go."
go_bin=$(find_go) || die "no usable Go found. $go_missing_msg"
go_ver=$("$go_bin" env GOVERSION 2>/dev/null) || die "$go_bin does not run. $go_missing_msg"
if [[ $go_ver =~ ^go([0-9]+)\.([0-9]+) ]]; then
  (( BASH_REMATCH[1] > 1 || (BASH_REMATCH[1] == 1 && BASH_REMATCH[2] >= 26) )) ||
    die "$go_bin is $go_ver (GOTOOLCHAIN=local). $go_missing_msg"
else
  die "cannot parse the version of $go_bin ('$go_ver'). $go_missing_msg"
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.$helm_version.lock"
if ! flock -n 9; then
  log "another build of $helm_version is running; waiting for its lock"
  flock 9
fi
# Someone else may have finished the build while we waited.
if cached_ok "$bin"; then
  echo "$bin"
  exit 0
fi

# Leftovers of killed builds (we hold the lock, so none of them is live).
rm -rf "$cache_root/.$helm_version.build."*
tmp=$(mktemp -d "$cache_root/.$helm_version.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM HUP
build_log="$cache_root/.$helm_version.build.log"
: >"$build_log"

start=$SECONDS
log "cold build of helm $helm_version with $go_ver into $dir"
log "(a few minutes on 2 cores; full log: $build_log)"

# The same -X flags helm's Makefile sets, so `helm version` and the Kubernetes
# version helm assumes for `template`/`lint` (.Capabilities) are right.
k8s_minor=${k8s_version#v0.}; k8s_minor=${k8s_minor%%.*}
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1"
ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor"
ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1"
ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor"

# Reports progress every ~15 s (packages compiled so far) and passes anything
# that is not a package name (errors) straight through.
if ! (
  cd "$script_dir"
  "$go_bin" build -mod=readonly -v -trimpath -ldflags "$ldflags" -o "$tmp/helm" helm.sh/helm/v3/cmd/helm 2>&1
) | {
  pkgs=0 last=$SECONDS
  while IFS= read -r line; do
    printf '%s\n' "$line" >>"$build_log"
    if [[ $line =~ ^[A-Za-z0-9._~/+-]+$ ]]; then pkgs=$((pkgs + 1))
    elif [[ ! $line =~ ^go:\ downloading\  ]]; then printf '%s\n' "$line" >&2; fi
    if (( SECONDS - last >= 15 )); then
      log "$pkgs packages compiled, $((SECONDS - start)) s"; last=$SECONDS
    fi
  done
}; then  # pipefail: the status is go build's
  die "go build failed after $((SECONDS - start)) s (log: $build_log)"
fi

cached_ok "$tmp/helm" || die "built binary $tmp/helm does not report $helm_version"
{
  echo "helm $helm_version"
  echo "k8s.io/client-go $k8s_version"
  echo "go $go_ver"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - start)) s"
  echo "go.sum sha256 $(sha256sum "$script_dir/go.sum" | cut -d' ' -f1)"
} >"$tmp/BUILDINFO"
chmod 755 "$tmp"

# Replace atomically: a directory rename either fully happens or not at all.
if [[ -e $dir ]]; then
  mv -T "$dir" "$tmp.old"
  rm -rf "$tmp.old"
fi
mv -T "$tmp" "$dir"
trap - EXIT
log "done in $((SECONDS - start)) s: $bin"
echo "$bin"
