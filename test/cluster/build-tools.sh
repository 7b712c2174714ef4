#!/usr/bin/env bash
# Builds the test control plane's binaries (kube-apiserver, etcd, helm, kubectl if missing) from the pinned Go tools modules, once per version.
#
# Layout (the TypeScript helper test/cluster/tools.ts computes the same paths; keep both in step):
#   $CHAPERONE_CACHE/bin/k8s-<ver>/kube-apiserver   from tools/kube-apiserver/go.mod (k8s.io/kubernetes)
#   $CHAPERONE_CACHE/bin/k8s-<ver>/kubectl          same module; only when no kubectl is on PATH
#   $CHAPERONE_CACHE/bin/etcd-<ver>/etcd            from tools/etcd/go.mod (go.etcd.io/etcd/server/v3)
#   $CHAPERONE_CACHE/bin/helm-<ver>/helm            from tools/helm/go.mod (helm.sh/helm/v4)
#   $CHAPERONE_CACHE/bin/current.env                NAME=path lines for shells and humans
# A pin change in a go.mod changes <ver>, so the next run builds the new version. Builds run one at a
# time (2 cores) into a temp name and are renamed into place, so an interrupted build never leaves a
# broken binary in the cache. Exit status: non-zero if kube-apiserver or etcd could not be built; a helm
# failure is reported (module and error) and the script goes on, so the control plane still works.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$here/tools"
cache="${CHAPERONE_CACHE:-$HOME/.cache/chaperone}"
bin="$cache/bin"
logs="$cache/build-logs"
mkdir -p "$bin" "$logs"

# Never let the go command fetch another toolchain; the machine's go is the one we use.
export GOTOOLCHAIN=local CGO_ENABLED=0
command -v go >/dev/null || { echo "build-tools: 'go' is not on PATH; install Go >= 1.24 (Debian golang or the machine's toolchain)" >&2; exit 1; }

# pin MODULE_DIR MODULE -> the version required in that tools module's go.mod
pin() {
  local v
  v="$(awk -v m="$2" '($1 == "require" && $2 == m) { print $3; exit } ($1 == m) { print $2; exit }' "$tools/$1/go.mod")"
  [ -n "$v" ] || { echo "build-tools: no 'require $2' in $tools/$1/go.mod" >&2; exit 1; }
  printf '%s' "$v"
}

k8s_ver="$(pin kube-apiserver k8s.io/kubernetes)"
etcd_ver="$(pin etcd go.etcd.io/etcd/server/v3)"
helm_ver="$(pin helm helm.sh/helm/v4)"
k8s_minor="$(echo "$k8s_ver" | cut -d. -f2)"

failed=()
built=0

# build NAME MODULE_DIR OUT PACKAGE LDFLAGS: go build into OUT.tmp.$$, then mv into place.
build() {
  local name="$1" dir="$2" out="$3" pkg="$4" ldflags="$5"
  if [ -x "$out" ]; then
    echo "    $name: cached at $out"
    return 0
  fi
  mkdir -p "$(dirname "$out")"
  local tmp="$out.tmp.$$" log="$logs/$(basename "$(dirname "$out")")-$name.log" start=$SECONDS
  echo "    $name: building $pkg in tools/$dir (log: $log) ..."
  # In the background (own process group via setsid) + wait, so a Ctrl-C or SIGTERM reaches our trap at
  # once and the trap can stop go and its compiler processes together.
  (cd "$tools/$dir" && exec setsid go build -trimpath -ldflags "$ldflags" -o "$tmp" "$pkg") >"$log" 2>&1 &
  child=$!
  if wait "$child"; then
    child=
    mv -f "$tmp" "$out"
    built=$((built + 1))
    echo "    $name: built in $((SECONDS - start)) s -> $out"
  else
    child=""
    rm -f "$tmp"
    echo "build-tools: FAILED to build $name: module tools/$dir ($pkg); last lines of $log:" >&2
    tail -n 20 "$log" >&2
    failed+=("$name")
    return 1
  fi
}
# A temp file left by a killed build is garbage; a finished binary is only ever created by mv.
child=""
on_signal() {
  if [ -n "$child" ]; then
    kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  echo "build-tools: interrupted; nothing half-built was cached" >&2
  exit 130
}
trap on_signal INT TERM
trap 'rm -f "$bin"/*/*.tmp.$$' EXIT

k8s_ld="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_ver -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$k8s_minor -X k8s.io/client-go/pkg/version.gitVersion=$k8s_ver -X k8s.io/component-base/version.gitTreeState=clean"
helm_ld="-s -w -X helm.sh/helm/v4/internal/version.version=$helm_ver -X helm.sh/helm/v4/internal/version.metadata= -X helm.sh/helm/v4/internal/version.gitTreeState=clean"

echo "==> build-tools: kube-apiserver $k8s_ver, etcd $etcd_ver, helm $helm_ver (cache: $bin)"
build kube-apiserver kube-apiserver "$bin/k8s-$k8s_ver/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ld" || true
build etcd etcd "$bin/etcd-$etcd_ver/etcd" go.etcd.io/etcd/server/v3 "-s -w" || true
build helm helm "$bin/helm-$helm_ver/helm" helm.sh/helm/v4/cmd/helm "$helm_ld" || true

kubectl_path="$bin/k8s-$k8s_ver/kubectl"
if [ -x "$kubectl_path" ]; then
  echo "    kubectl: cached at $kubectl_path"
elif command -v kubectl >/dev/null; then
  kubectl_path="$(command -v kubectl)"
  echo "    kubectl: using the machine's $kubectl_path"
else
  build kubectl kube-apiserver "$kubectl_path" k8s.io/kubernetes/cmd/kubectl "$k8s_ld" || true
fi

{
  echo "# Written by test/cluster/build-tools.sh; paths of the test control plane's binaries."
  echo "KUBE_APISERVER=$bin/k8s-$k8s_ver/kube-apiserver"
  echo "ETCD=$bin/etcd-$etcd_ver/etcd"
  echo "HELM=$bin/helm-$helm_ver/helm"
  echo "KUBECTL=$kubectl_path"
} >"$bin/current.env.tmp.$$"
mv -f "$bin/current.env.tmp.$$" "$bin/current.env"

echo "==> build-tools: $built built, paths in $bin/current.env"
for f in "${failed[@]}"; do
  case "$f" in
    helm) echo "build-tools: WARNING helm is missing; chart tests that need it will fail with a pointer here" >&2 ;;
    *) echo "build-tools: $f is required for the test control plane; see the log above" >&2; exit 1 ;;
  esac
done
