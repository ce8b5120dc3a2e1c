# Shared by tools/kube/build.sh and tools/kube/build-node.sh (sourced, not run): the
# cached fast path, finding Go, the lock and temporary directory of a cold build,
# progress lines, and the atomic install of the result. The caller defines
# cached_ok (start_script defines log, die and usage), and sets cache_root. Nothing here
# runs Go until find_go.

# start_script TAG HELP_LINES ARGS...: log (stderr lines tagged [TAG]), die (exit 2) and
# usage (the main script's comment lines HELP_LINES, e.g. 2,11), and $mode from the
# arguments: build (none), print (--print-dir) or check (--check).
start_script() {
  log_tag=$1 help_lines=$2
  shift 2
  mode=build
  case "${1:-}" in
    '') ;;
    --print-dir) mode=print ;;
    --check) mode=check ;;
    -h|--help) usage; exit 0 ;;
    *) usage; die "unknown argument: $1" ;;
  esac
}
log() { printf '[%s] %s\n' "$log_tag" "$*" >&2; }
die() { printf '%s: %s\n' "${BASH_SOURCE[-1]#"${PWD}/"}" "$*" >&2; exit 2; }
usage() { sed -n "${help_lines}p" "${BASH_SOURCE[-1]}" | sed 's/^# \{0,1\}//' >&2; }

# modver GO_MOD MODULE: the version GO_MOD requires of MODULE (so the cached fast path needs no Go at all).
modver() { awk -v m="$2" '$1 == m && $2 ~ /^v[0-9]/ { print $2; exit }' "$1"; }

# serve_cached MODE DIR: for --print-dir prints DIR, for --check exits 0 if cached_ok DIR
# (else 1); for a build prints DIR and exits if it is cached already, else returns.
serve_cached() {
  case $1 in
    print) echo "$2"; exit 0 ;;
    check) cached_ok "$2" && exit 0 || exit 1 ;;
  esac
  if cached_ok "$2"; then
    echo "$2"
    exit 0
  fi
}

# find_go MIN WHAT: sets go_bin and go_ver to a Go >= MIN ("1.24" or "1.26.8") from $GO,
# else `go` on PATH, else /usr/local/go/bin/go; dies saying WHAT needs it otherwise.
find_go() {
  local min=$1 what=$2 cand looked msg
  go_bin=""
  if [[ -n ${GO:-} ]]; then  # an explicit choice is not second-guessed
    looked="\$GO=$GO"
    cand=$(command -v "$GO" 2>/dev/null) && [[ -x $cand ]] && go_bin=$cand
  else
    looked="\$GO (unset), 'go' on PATH, /usr/local/go/bin/go"
    for cand in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go; do
      [[ -n $cand && -x $cand ]] && { go_bin=$cand; break; }
    done
  fi
  msg="Go >= $min is needed to build $what
(looked for: $looked).
Install Go >= $min from https://go.dev/dl/ or set GO=/path/to/go."
  [[ -n $go_bin ]] || die "no usable Go found. $msg"
  go_ver=$("$go_bin" env GOVERSION 2>/dev/null) || die "$go_bin does not run. $msg"
  [[ $go_ver =~ ^go([0-9]+)\.([0-9]+)(\.([0-9]+))? ]] || die "cannot parse the version of $go_bin ('$go_ver'). $msg"
  local have=$(( BASH_REMATCH[1] * 1000000 + BASH_REMATCH[2] * 1000 + ${BASH_REMATCH[4]:-0} ))
  local m=(${min//./ })
  local need=$(( m[0] * 1000000 + m[1] * 1000 + ${m[2]:-0} ))
  (( have >= need )) || die "$go_bin is $go_ver (GOTOOLCHAIN=local). $msg"
}

# begin_build KEY DIR: takes the build lock of KEY (waiting for another build), prints DIR
# and exits if that build (or anyone) filled the cache meanwhile; else makes $tmp (removed
# on exit), empties $build_log and sets $start.
begin_build() {
  local key=$1 dir=$2
  mkdir -p "$cache_root"
  exec 9>"$cache_root/.$key.lock"
  if ! flock -n 9; then
    log "another build of $key is running; waiting for its lock"
    flock 9
  fi
  # Someone else may have finished the build while we waited.
  if cached_ok "$dir"; then
    echo "$dir"
    exit 0
  fi
  # Leftovers of killed builds (we hold the lock, so none of them is live).
  rm -rf "$cache_root/.$key.build."*
  tmp=$(mktemp -d "$cache_root/.$key.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  trap 'exit 130' INT TERM HUP
  build_log="$cache_root/.$key.build.log"
  : >"$build_log"
  start=$SECONDS
}

# progress STEP [TOTAL]: reads `go build -v` / `go install -v` output, prints a one-line
# summary every ~15 s and passes anything that is not a package name (errors) through.
progress() {
  local step=$1 total=${2:-} pkgs=0 dls=0 last=$SECONDS line="" buf="" rc
  local t0=$SECONDS
  report() {
    local dl="" of=""
    (( dls == 0 )) || dl=", $dls modules downloaded"
    [[ -z $total ]] || of=" (of at most $total)"
    log "$step: $pkgs packages compiled$of$dl," \
      "$((SECONDS - t0)) s in step, $((SECONDS - start)) s total${1:+ $1}"
  }
  handle() {
    printf '%s\n' "$1" >>"$build_log"
    if [[ $1 =~ ^go:\ (downloading|extracting)\  ]]; then
      dls=$((dls + 1))
    elif [[ $1 =~ ^[A-Za-z0-9._~/+@-]+$ ]]; then
      pkgs=$((pkgs + 1))
    elif [[ -n $1 ]]; then
      printf '%s\n' "$1" >&2
    fi
  }
  while :; do
    if IFS= read -r -t 1 line; then
      handle "$buf$line"; buf=""
    else
      rc=$?
      if (( rc > 128 )); then buf+=$line; else
        [[ -n $buf$line ]] && handle "$buf$line"
        break
      fi
    fi
    if (( SECONDS - last >= 15 )); then report; last=$SECONDS; fi
  done
  report "(done)"
}

# finish_build DIR: moves $tmp into place as DIR (a directory rename either fully happens
# or not at all), prints DIR.
finish_build() {
  local dir=$1
  chmod 755 "$tmp"
  if [[ -e $dir ]]; then
    mv -T "$dir" "$tmp.old"
    rm -rf "$tmp.old"
  fi
  mv -T "$tmp" "$dir"
  trap - EXIT
  log "done in $((SECONDS - start)) s: $dir"
  echo "$dir"
}
