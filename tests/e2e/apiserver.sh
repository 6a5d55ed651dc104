# A real Kubernetes API server for end-to-end tests (sourced after lib.sh):
#   source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/apiserver.sh"
#   kdp_apiserver_start [extra kube-apiserver flags...]
#
# kube-apiserver v1.20.2 is built from Debian 12's `kubernetes` source package (the full upstream
# tree with vendor/) and runs against Debian's etcd 3.4, both on free loopback ports, TLS only.
# Recipe and limits: /work/shared/notes/real-kube-apiserver.md; k8s/NOTES.md ("API test harness").
#
# Install (idempotent, run by scripts/test.sh; ~5-6 min cold on 2 cores):
#   kdp_apiserver_install        builds into $KDP_APISERVER_DIR, outside the repository
#
# After kdp_apiserver_start, these are set (all files live under $KDP_API_TMP, removed on exit):
#   KDP_API_SERVER          https://127.0.0.1:PORT
#   KDP_API_CA              CA certificate (PEM) the serving certificate is signed with
#   KDP_KUBECONFIG_ADMIN    client certificate CN=kdp-admin, O=system:masters (may do anything)
#   KDP_KUBECONFIG_TOKEN    bearer token of user "kube-dataplane" (no groups beyond authenticated)
#   KDP_KUBECONFIG_CERT     client certificate CN=kube-dataplane (same user as the token)
#   KDP_KUBECONFIG_TOKEN_FILE  the same token through `tokenFile:`
#   KDP_KUBECONFIG_WRONG_CA the admin's credentials, but a CA that did not sign the server's cert
#                           (alias KDP_KUBECONFIG_BADCA)
#   The kube-dataplane kubeconfigs have deploy/rbac.yaml's rights (see kdp_apiserver_start); CA and
#   client certificate are embedded as data except in KDP_KUBECONFIG_CERT, which names files.
#   KDP_API_ADMIN_TOKEN     a bearer token in group system:masters (for curl)
#   KDP_API_TOKEN           the bearer token of user "kube-dataplane"
#   KDP_API_SA_KEY          service-account signing key (tokens of ServiceAccounts validate)
#   KDP_ETCD_ENDPOINT       http://127.0.0.1:PORT (for etcdctl)
#   KDP_APISERVER_PID, KDP_ETCD_PID, KDP_APISERVER_LOG, KDP_ETCD_LOG
#   KDP_KUBECTL             kubectl v1.20.2 (same version as the server: no skew warnings)
# Helpers: kdp_kubectl (admin kubectl), kdp_apiserver_stop / kdp_apiserver_restart (the apiserver
# alone, for watch-cut tests; etcd keeps the data), kdp_etcd_compact (compact etcd at its current
# revision, so older resourceVersions answer 410 when the server runs with --watch-cache=false),
# kdp_apiserver_stop_all (both; also run by the EXIT trap), kdp_apiserver_into_netns NS (the
# apiserver reachable at the same address inside a test's network namespace).

KDP_APISERVER_VERSION=v1.20.2
KDP_APISERVER_DIR=${KDP_APISERVER_DIR:-${KDP_CACHE:-$HOME/.cache/kube-dataplane}/kube-apiserver-1.20.2}
KDP_APISERVER_BIN=$KDP_APISERVER_DIR/bin/kube-apiserver
KDP_APISERVER_CACHE=$KDP_APISERVER_DIR
KDP_KUBECTL=$KDP_APISERVER_DIR/bin/kubectl

kdp_apiserver_installed() {
  [ -x "$KDP_APISERVER_BIN" ] && [ -x "$KDP_KUBECTL" ] &&
    "$KDP_APISERVER_BIN" --version 2>/dev/null | grep -qx "Kubernetes $KDP_APISERVER_VERSION"
}

# Builds kube-apiserver and unpacks kubectl into $KDP_APISERVER_DIR; does nothing when they are
# there. Needs root (or sudo) for apt. Runs in a subshell: no cd or set -e leaks to the caller.
kdp_apiserver_install() (
  set -euo pipefail
  kdp_apiserver_installed && exit 0
  local sudo="" repo
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  mkdir -p "$KDP_APISERVER_DIR"
  # One build at a time (tests or helpers may call this concurrently).
  exec 9>"$KDP_APISERVER_DIR/.lock"
  flock 9
  kdp_apiserver_installed && exit 0
  export DEBIAN_FRONTEND=noninteractive

  # apt needs Debian *source* entries for `apt-get source`; derive them from the configured
  # binary ones (same mirror), in a file of our own.
  if ! grep -Eqrs '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
        $sudo tee /etc/apt/sources.list.d/kdp-debian-src.sources >/dev/null
    else
      grep -E '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' |
        $sudo tee /etc/apt/sources.list.d/kdp-debian-src.list >/dev/null
    fi
    $sudo apt-get update -q
  fi
  local packages
  mapfile -t packages < <(sed 's/#.*//' "$repo/scripts/packages/tests/apiserver.txt" | tr -s ' \t' '\n' | sed '/^$/d')
  $sudo apt-get install -y -q --no-install-recommends "${packages[@]}"

  local src=$KDP_APISERVER_DIR/src
  rm -rf "$src" && mkdir -p "$src" && cd "$src"
  # By suite, not version: a later security upload replaces the version in the archive.
  apt-get source -q --download-only kubernetes/bookworm
  apt-get download -q kubernetes-client/bookworm
  tar xzf kubernetes_*.orig.tar.gz
  cd kubernetes-1.20.2
  # Vendored reflect2 v1.0.1 makes a Go >= 1.18 binary fault in mapiterinit seconds after start;
  # Debian's newer copies are what upstream moved to (reflect2 1.0.2, json-iterator 1.1.12).
  local lib
  for lib in github.com/modern-go/reflect2 github.com/json-iterator/go; do
    rm -rf "vendor/$lib" && mkdir -p "vendor/$lib"
    cp /usr/share/gocode/src/$lib/*.go "vendor/$lib/" && rm -f "vendor/$lib/"*_test.go
  done
  # As Debian's debian/rules builds it: GOPATH mode through the tree's Makefile, offline.
  env -u GOPATH -u GOFLAGS -u GO111MODULE CGO_ENABLED=0 GOPROXY=off GOCACHE="$src/gocache" \
    nice -n 10 make WHAT=cmd/kube-apiserver
  mkdir -p "$KDP_APISERVER_DIR/bin"
  install -m 0755 _output/bin/kube-apiserver "$KDP_APISERVER_BIN.new"
  cd "$src"
  dpkg-deb -x kubernetes-client_*.deb client
  install -m 0755 client/usr/bin/kubectl "$KDP_KUBECTL"
  mv "$KDP_APISERVER_BIN.new" "$KDP_APISERVER_BIN"
  cd / && rm -rf "$src"
  "$KDP_APISERVER_BIN" --version
)

# --- running it -----------------------------------------------------------------------------

KDP_APISERVER_PID=""
KDP_ETCD_PID=""
KDP_API_TMP=""
KDP_APISERVER_ARGS=()

# Stops a process this shell started: SIGTERM (or $2), up to 20 s, then SIGKILL. Quiet if gone.
kdp_stop_pid() {
  local pid=$1 signal=${2:-TERM} deadline=$((SECONDS + 20))
  [ -n "$pid" ] || return 0
  kill -"$signal" "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# A key (P-256) and a certificate signed by the test CA: kdp_api_cert NAME SUBJECT EXTENSIONS
kdp_api_cert() {
  local name=$1 subject=$2 ext=$3 dir=$KDP_API_TMP/pki
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$subject" \
    -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" > "$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null
}

kdp_api_pki() {
  local dir=$KDP_API_TMP/pki
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=kdp-test-ca -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=kdp-test-ca -keyout "$dir/wrong-ca.key" -out "$dir/wrong-ca.crt" 2>/dev/null
  kdp_api_cert server /CN=kube-apiserver "$(printf '%s\n' \
    'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
    'extendedKeyUsage=serverAuth' \
    'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc')"
  local client_ext
  client_ext=$(printf '%s\n' 'basicConstraints=critical,CA:FALSE' \
    'keyUsage=critical,digitalSignature,keyEncipherment' 'extendedKeyUsage=clientAuth')
  kdp_api_cert admin /O=system:masters/CN=kdp-admin "$client_ext"
  kdp_api_cert kube-dataplane /O=kube-dataplane/CN=kube-dataplane "$client_ext"
  # ServiceAccount tokens: RSA, as kube-controller-manager's signer would use.
  openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
  openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
  KDP_API_ADMIN_TOKEN=admin-$RANDOM$RANDOM$RANDOM
  KDP_API_TOKEN=dataplane-$RANDOM$RANDOM$RANDOM
  # token,user,uid,"groups"
  printf '%s\n' "$KDP_API_ADMIN_TOKEN,kdp-admin,kdp-admin,system:masters" \
    "$KDP_API_TOKEN,kube-dataplane,kube-dataplane,kube-dataplane" > "$dir/tokens.csv"
  printf '%s' "$KDP_API_TOKEN" > "$dir/kube-dataplane.token"
  KDP_API_CA=$dir/ca.crt
  KDP_API_SA_KEY=$dir/sa.key
}

kdp_b64() { base64 -w0 < "$1"; }

# kdp_api_kubeconfig OUT CA_FILE USER_YAML [NAMESPACE]: a one-context kubeconfig; the CA embedded
# as data. The context's namespace (default: kube-dataplane, where deploy/rbac.yaml grants Leases).
kdp_api_kubeconfig() {
  cat > "$1" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: kdp-test
  cluster:
    server: $KDP_API_SERVER
    certificate-authority-data: $(kdp_b64 "$2")
users:
- name: kdp-user
  user:
$3
contexts:
- name: kdp-test
  context:
    cluster: kdp-test
    user: kdp-user
    namespace: ${4:-kube-dataplane}
current-context: kdp-test
KUBECONFIG
}

kdp_api_kubeconfigs() {
  local pki=$KDP_API_TMP/pki dir=$KDP_API_TMP/kubeconfig
  mkdir -p "$dir"
  KDP_KUBECONFIG_ADMIN=$dir/admin.yaml
  KDP_KUBECONFIG_TOKEN=$dir/kube-dataplane-token.yaml
  KDP_KUBECONFIG_TOKEN_FILE=$dir/kube-dataplane-token-file.yaml
  KDP_KUBECONFIG_CERT=$dir/kube-dataplane-cert.yaml
  KDP_KUBECONFIG_WRONG_CA=$dir/wrong-ca.yaml
  KDP_KUBECONFIG_BADCA=$KDP_KUBECONFIG_WRONG_CA
  # Certificates embedded as data (admin, wrong CA) and as file paths (kube-dataplane-cert): a
  # kubeconfig parser meets both.
  kdp_api_kubeconfig "$KDP_KUBECONFIG_ADMIN" "$pki/ca.crt" \
    "    client-certificate-data: $(kdp_b64 "$pki/admin.crt")
    client-key-data: $(kdp_b64 "$pki/admin.key")" default
  kdp_api_kubeconfig "$KDP_KUBECONFIG_WRONG_CA" "$pki/wrong-ca.crt" \
    "    client-certificate-data: $(kdp_b64 "$pki/admin.crt")
    client-key-data: $(kdp_b64 "$pki/admin.key")"
  kdp_api_kubeconfig "$KDP_KUBECONFIG_TOKEN" "$pki/ca.crt" "    token: $KDP_API_TOKEN"
  kdp_api_kubeconfig "$KDP_KUBECONFIG_TOKEN_FILE" "$pki/ca.crt" \
    "    tokenFile: $pki/kube-dataplane.token"
  kdp_api_kubeconfig "$KDP_KUBECONFIG_CERT" "$pki/ca.crt" \
    "    client-certificate: $pki/kube-dataplane.crt
    client-key: $pki/kube-dataplane.key"
  # The same cluster with the CA as a file path instead of data.
  sed -i "s|certificate-authority-data: .*|certificate-authority: $pki/ca.crt|" "$KDP_KUBECONFIG_CERT"
}

kdp_kubectl() { "$KDP_KUBECTL" --kubeconfig "$KDP_KUBECONFIG_ADMIN" "$@"; }

kdp_api_readyz() {
  [ "$(curl -sS --max-time 2 --cacert "$KDP_API_CA" -H "Authorization: Bearer $KDP_API_ADMIN_TOKEN" \
    "$KDP_API_SERVER/readyz" 2>/dev/null)" = ok ]
}

# Waits until PID serves (CHECK succeeds), failing early with LOG's tail when PID exits. The
# bounds are generous: on 2 loaded cores with ctest -j2 a start took minutes once.
kdp_api_wait() {
  local pid=$1 log=$2 seconds=$3; shift 3
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$log" >&2; kdp_fail "$(basename "$log" .log) exited before it was ready"
    fi
    ((SECONDS < deadline)) || { tail -n 30 "$log" >&2; kdp_fail "$(basename "$log" .log) not ready in ${seconds}s"; }
    sleep 0.1
  done
}

kdp_etcd_healthy() {
  curl -sS --max-time 2 "$KDP_ETCD_ENDPOINT/health" 2>/dev/null | grep -q '"health":"true"'
}

kdp_etcd_start() {
  local client_port peer_port
  client_port=$(kdp_free_port)
  peer_port=$(kdp_free_port)
  KDP_ETCD_ENDPOINT=http://127.0.0.1:$client_port
  KDP_ETCD_LOG=$KDP_API_TMP/etcd.log
  etcd --name kdp --data-dir "$KDP_API_TMP/etcd" \
    --listen-client-urls "$KDP_ETCD_ENDPOINT" --advertise-client-urls "$KDP_ETCD_ENDPOINT" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "kdp=http://127.0.0.1:$peer_port" \
    --logger zap --log-level warn >"$KDP_ETCD_LOG" 2>&1 &
  KDP_ETCD_PID=$!
  kdp_api_wait "$KDP_ETCD_PID" "$KDP_ETCD_LOG" 60 kdp_etcd_healthy
}

# Starts (or, after kdp_apiserver_stop, restarts) kube-apiserver with $KDP_APISERVER_ARGS.
kdp_apiserver_run() {
  KDP_APISERVER_LOG=$KDP_API_TMP/kube-apiserver.log
  echo "--- start $(date -u +%T)" >> "$KDP_APISERVER_LOG"
  "$KDP_APISERVER_BIN" "${KDP_APISERVER_ARGS[@]}" >>"$KDP_APISERVER_LOG" 2>&1 &
  KDP_APISERVER_PID=$!
  kdp_api_wait "$KDP_APISERVER_PID" "$KDP_APISERVER_LOG" 180 kdp_api_readyz
}

# kdp_apiserver_start [extra kube-apiserver flags...]: etcd + kube-apiserver (RBAC on), the
# kubeconfigs above, and deploy/rbac.yaml applied with user "kube-dataplane" bound to its roles
# (so tests run the program with exactly the production rights). A later flag wins
# over a default one (e.g. --authorization-mode=AlwaysAllow, --watch-cache=false).
kdp_apiserver_start() {
  kdp_apiserver_installed ||
    kdp_fail "kube-apiserver $KDP_APISERVER_VERSION is not built in $KDP_APISERVER_DIR: run scripts/test.sh (or kdp_apiserver_install)"
  command -v etcd >/dev/null || kdp_fail "etcd is not installed: run scripts/test.sh (or kdp_apiserver_install)"
  KDP_API_TMP=$(mktemp -d "${TMPDIR:-/tmp}/kdp-api.XXXXXX")
  kdp_api_pki
  kdp_etcd_start
  local port pki=$KDP_API_TMP/pki
  port=$(kdp_free_port)
  KDP_API_SERVER=https://127.0.0.1:$port
  KDP_APISERVER_ARGS=(
    --etcd-servers="$KDP_ETCD_ENDPOINT"
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$port"
    --cert-dir="$KDP_API_TMP/cert-dir"
    --tls-cert-file="$pki/server.crt" --tls-private-key-file="$pki/server.key"
    --client-ca-file="$pki/ca.crt" --token-auth-file="$pki/tokens.csv"
    --authorization-mode=Node,RBAC
    --service-account-issuer=https://kubernetes.default.svc.cluster.local
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key"
    --service-cluster-ip-range=10.96.0.0/16
    # No endpoint reconciler: otherwise it warns every 10 s that 127.0.0.1 is loopback.
    --endpoint-reconciler-type=none
    --feature-gates=EndpointSliceTerminatingCondition=true
    "$@")
  kdp_apiserver_run
  kdp_api_kubeconfigs
  if [ "${KDP_API_NO_RBAC_GRANT:-}" != 1 ]; then kdp_apiserver_grant_deploy_rbac User kube-dataplane; fi
}

# Applies deploy/rbac.yaml and gives a subject what `kube-dataplane run` with all three components
# needs: both workloads' ClusterRoles and the ingress's Lease Role.
# kdp_apiserver_grant_deploy_rbac KIND NAME (e.g. User kube-dataplane)
kdp_apiserver_grant_deploy_rbac() {
  local repo
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  # One kubectl call (each costs ~0.5 s): the manifests, then the bindings.
  kdp_kubectl apply -f "$repo/deploy/rbac.yaml" -f - >/dev/null <<BINDINGS
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kdp-test-$2-node}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kube-dataplane-node}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: $1, name: $2}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kdp-test-$2-ingress}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kube-dataplane-ingress}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: $1, name: $2}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: kdp-test-$2, namespace: kube-dataplane}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: kube-dataplane-ingress-leader-election}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: $1, name: $2}]
BINDINGS
}

# The apiserver alone: kdp_apiserver_stop [SIGNAL] (TERM: graceful; KILL: a cut mid-stream).
kdp_apiserver_stop() { kdp_stop_pid "$KDP_APISERVER_PID" "${1:-TERM}"; KDP_APISERVER_PID=""; }

# Stops the apiserver and starts it again on the same port against the same etcd (the data and
# resourceVersions survive); returns once /readyz is ok. kdp_apiserver_restart [SIGNAL]
kdp_apiserver_restart() { kdp_apiserver_stop "${1:-TERM}"; kdp_apiserver_run; }

kdp_etcdctl() { ETCDCTL_API=3 etcdctl --endpoints="$KDP_ETCD_ENDPOINT" "$@"; }

# Compacts etcd so that every resourceVersion seen before the call is gone: with
# --watch-cache=false a LIST/WATCH from one answers 410 Expired. Two writes to a key outside the
# apiserver's /registry first: a watch from RV r starts at r+1, which must lie below the
# compaction (at exactly the compacted revision etcd still serves it, without previous values).
# Prints the revision compacted at.
kdp_etcd_compact() {
  local revision
  kdp_etcdctl put /kdp-test/compaction-marker 1 >/dev/null
  kdp_etcdctl put /kdp-test/compaction-marker 2 >/dev/null
  revision=$(kdp_etcdctl endpoint status -w json | jq -r '.[0].Status.header.revision')
  kdp_etcdctl compact "$revision" >/dev/null
  echo "$revision"
}

# A kubeconfig for a ServiceAccount (TokenRequest API; v1.20 runs no token controller, so no
# token Secret gets filled): kdp_api_sa_kubeconfig NAMESPACE NAME OUT
kdp_api_sa_kubeconfig() {
  local token
  token=$(kdp_kubectl create --raw "/api/v1/namespaces/$1/serviceaccounts/$2/token" -f - <<'REQUEST' | jq -r .status.token
{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}}
REQUEST
)
  [ -n "$token" ] && [ "$token" != null ] || kdp_fail "no token for ServiceAccount $1/$2"
  kdp_api_kubeconfig "$3" "$KDP_API_CA" "    token: $token"
}

# Makes the apiserver reachable inside network namespace NS at the same address
# ($KDP_API_SERVER, 127.0.0.1:PORT), so the kubeconfigs work unchanged for a program run there
# (e.g. the proxy, which must only touch the namespace's nftables): socat listens on the
# namespace's loopback and relays each connection over a Unix socket (not tied to a network
# namespace) to a second socat on the machine's loopback. Nothing is added to the machine's own
# network. Both run until the test's cleanup. kdp_apiserver_into_netns NS
kdp_apiserver_into_netns() {
  local ns=$1 port=${KDP_API_SERVER##*:}
  local sock
  sock=$(mktemp -u "$KDP_API_TMP/relay-XXXXXX.sock")
  command -v socat >/dev/null || kdp_fail "socat missing (scripts/packages/proxy.txt)"
  # socat's errors (a client that hung up early: "Broken pipe") go to a log, not the test's output.
  kdp_spawn socat "UNIX-LISTEN:$sock,fork" "TCP:127.0.0.1:$port" 2>>"$KDP_API_TMP/relay.log"
  kdp_wait_for 10 test -S "$sock" || kdp_fail "relay socket $sock not created"
  kdp_spawn ip netns exec "$ns" socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" \
    "UNIX-CONNECT:$sock" 2>>"$KDP_API_TMP/relay.log"
  kdp_wait_for 10 ip netns exec "$ns" curl -sf --max-time 2 --cacert "$KDP_API_CA" \
    -H "Authorization: Bearer $KDP_API_ADMIN_TOKEN" "$KDP_API_SERVER/readyz" ||
    kdp_fail "apiserver not reachable in namespace $ns"
}

# Both processes and the temp dir; safe to call twice, and run on exit.
kdp_apiserver_stop_all() {
  kdp_stop_pid "$KDP_APISERVER_PID"; KDP_APISERVER_PID=""
  kdp_stop_pid "$KDP_ETCD_PID"; KDP_ETCD_PID=""
  if [ -n "$KDP_API_TMP" ]; then rm -rf "$KDP_API_TMP"; fi
  KDP_API_TMP=""
}

# Stop the servers before lib.sh's cleanup (when sourced after lib.sh; scripts/test.sh sources
# this file alone for kdp_apiserver_install).
if declare -F kdp_cleanup >/dev/null; then
  trap 'kdp_apiserver_stop_all; kdp_cleanup' EXIT
fi
