#!/usr/bin/env bash
# Build what the lab's cluster mode runs on its nodes, once, into a per-version
# cache outside the repository, and print that directory:
#   kubelet, kube-proxy, kube-controller-manager, kube-scheduler, kubectl
#     (Kubernetes version pinned in node/go.mod, same as tools/kube/go.mod)
#   containerd, containerd-shim-runc-v2, ctr; runc (cgo + seccomp);
#   CNI plugins bridge, host-local, loopback, portmap (in cni/)
#   pause (node/pause: the pods' sandbox process; the lab pulls no images)
#
#   dir=$(tools/kube/build-node.sh | tail -1)   # build if needed; last stdout line = dir
#   tools/kube/build-node.sh --print-dir        # print the dir, do not build
#   tools/kube/build-node.sh --check            # exit 0 if cached and runnable, else 1
#
# Cache root: $PURELB_KUBE_CACHE (default ~/.cache/purelb/kube).
# Go: $GO if set, else `go` on PATH, else /usr/local/go/bin/go (>= 1.26.8 needed).
# runc needs libseccomp-dev and a C compiler; as root, a missing libseccomp-dev is
# installed with apt-get. Progress goes to stderr; only the directory goes to stdout.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mod_dir=$script_dir/node
export GOTOOLCHAIN=local

# Versions of the modules built with `go install pkg@version` (none has replace lines).
containerd_version=v2.4.2
runc_version=v1.4.4
cni_version=v1.10.0

# shellcheck source=lib.sh
. "$script_dir/lib.sh"
start_script kube-node 2,17 "$@"

k8s_version=$(modver "$mod_dir/go.mod" k8s.io/kubernetes)
[[ -n $k8s_version ]] || die "cannot read the k8s.io/kubernetes version from $mod_dir/go.mod"

cache_root=${PURELB_KUBE_CACHE:-$HOME/.cache/purelb/kube}
key="node-${k8s_version}-containerd${containerd_version#v}-runc${runc_version#v}-cni${cni_version#v}"
dir="$cache_root/$key"

kube_bins=(kubelet kube-proxy kube-controller-manager kube-scheduler kubectl)
cni_bins=(bridge host-local loopback portmap)

# A cache entry is good if every binary exists and the versioned ones report their version.
cached_ok() {
  local d=$1 b out
  for b in "${kube_bins[@]}" containerd containerd-shim-runc-v2 ctr runc pause; do
    [[ -x $d/$b ]] || return 1
  done
  for b in "${cni_bins[@]}"; do [[ -x $d/cni/$b ]] || return 1; done
  for b in kubelet kube-proxy kube-controller-manager kube-scheduler; do
    out=$("$d/$b" --version 2>/dev/null) || return 1
    [[ $out == *"$k8s_version"* ]] || return 1
  done
  out=$("$d/containerd" --version 2>/dev/null) || return 1
  [[ $out == *"$containerd_version"* ]] || return 1
  out=$("$d/runc" --version 2>/dev/null) || return 1
  [[ $out == *"${runc_version#v}"* ]] || return 1
}

serve_cached "$mode" "$dir"

# ---- cold path -------------------------------------------------------------

find_go 1.26.8 "containerd $containerd_version and the CNI plugins $cni_version (they require it)"

# runc is built with cgo and the seccomp tag: it needs libseccomp's headers and a C compiler.
if ! [[ -e /usr/include/seccomp.h ]]; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "installing libseccomp-dev (runc is built with seccomp)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q libseccomp-dev >&2 ||
      { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libseccomp-dev >&2; } ||
      die "apt-get install libseccomp-dev failed"
  else
    die "libseccomp's headers are missing (/usr/include/seccomp.h): install libseccomp-dev (as root: apt-get install -y libseccomp-dev)"
  fi
fi
command -v "${CC:-gcc}" >/dev/null || die "a C compiler is needed for runc (cgo): install gcc"

begin_build "$key" "$dir"
log "cold build of Kubernetes $k8s_version node binaries, containerd $containerd_version, runc $runc_version, CNI plugins $cni_version with $go_ver"
log "into $dir (about 6 min on 2 cores, more on a busy machine; full log: $build_log)"

run_step() {  # label command...
  local step=$1; shift
  log "$step"
  if ! "$@" 2>&1 | progress "$step"; then
    die "$step failed after $((SECONDS - start)) s (log: $build_log)"
  fi
}

minor=${k8s_version#v1.}; minor=${minor%%.*}
kube_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version"
kube_ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
kube_ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"

n=${#kube_bins[@]}; total=$((n + 4)); i=0
cd "$mod_dir"
for b in "${kube_bins[@]}"; do
  i=$((i + 1))
  run_step "step $i/$total $b" env CGO_ENABLED=0 "$go_bin" build -mod=readonly -v -trimpath \
    -ldflags "$kube_ldflags" -o "$tmp/$b" "k8s.io/kubernetes/cmd/$b"
done
i=$((i + 1))
run_step "step $i/$total pause" env CGO_ENABLED=0 "$go_bin" build -mod=readonly -v -trimpath \
  -ldflags "-s -w" -o "$tmp/pause" ./pause
cd "$tmp"

cd_mod=github.com/containerd/containerd/v2
i=$((i + 1))
run_step "step $i/$total containerd, containerd-shim-runc-v2, ctr $containerd_version" \
  env CGO_ENABLED=0 GOBIN="$tmp" "$go_bin" install -v -trimpath \
  -ldflags "-s -w -X $cd_mod/version.Version=$containerd_version" \
  "$cd_mod/cmd/containerd@$containerd_version" "$cd_mod/cmd/containerd-shim-runc-v2@$containerd_version" \
  "$cd_mod/cmd/ctr@$containerd_version"
i=$((i + 1))
run_step "step $i/$total runc $runc_version (cgo, seccomp)" \
  env CGO_ENABLED=1 GOBIN="$tmp" "$go_bin" install -v -trimpath -tags seccomp \
  -ldflags "-s -w -X main.version=${runc_version#v}" "github.com/opencontainers/runc@$runc_version"
i=$((i + 1))
mkdir -p "$tmp/cni"
p=github.com/containernetworking/plugins/plugins
run_step "step $i/$total CNI plugins $cni_version" \
  env CGO_ENABLED=0 GOBIN="$tmp/cni" "$go_bin" install -v -trimpath -ldflags "-s -w" \
  "$p/main/bridge@$cni_version" "$p/ipam/host-local@$cni_version" \
  "$p/main/loopback@$cni_version" "$p/meta/portmap@$cni_version"

cached_ok "$tmp" || die "the binaries built in $tmp do not all run or report the pinned versions"
{
  echo "kubernetes $k8s_version (kubelet kube-proxy kube-controller-manager kube-scheduler kubectl)"
  echo "containerd $containerd_version"
  echo "runc $runc_version"
  echo "cni-plugins $cni_version"
  echo "pause (node/pause)"
  echo "go $go_ver"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - start)) s"
  echo "go.sum sha256 $(sha256sum "$mod_dir/go.sum" | cut -d' ' -f1)"
} >"$tmp/BUILDINFO"
finish_build "$dir"
