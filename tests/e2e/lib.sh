# Shared helpers for the end-to-end tests (sourced). Every test:
#   source "$(dirname "$0")/lib.sh"
# gets: $KDP_BIN (the binary under test), a private $KDP_TMP removed on exit, network namespaces
# made with kdp_netns removed on exit (even when the test fails), and bounded waits.
set -euo pipefail

KDP_BIN=${KDP_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/kube-dataplane}
KDP_TMP=$(mktemp -d)
KDP_NETNS=()
KDP_PIDS=()

kdp_cleanup() {
  local pid ns
  for pid in "${KDP_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${KDP_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  # Every namespace this test made, also those made inside $(...) (a subshell cannot add to
  # KDP_NETNS, but $$ is the test's own PID there too).
  for ns in "${KDP_NETNS[@]}" $(ip netns list 2>/dev/null | awk -v tag="-$$-" 'index($1, "kdp-") == 1 && index($1, tag) {print $1}'); do
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$KDP_TMP"
}
trap kdp_cleanup EXIT

kdp_fail() { echo "FAIL: $*" >&2; exit 1; }

# Starts a command in the background and remembers it for cleanup: kdp_spawn CMD... ; pid in $!
kdp_spawn() { "$@" & KDP_PIDS+=("$!"); }

# A loopback port free for TCP and UDP both (DNS servers bind both). Also used by bench/.
kdp_free_port() {
  python3 -c 'import socket
for _ in range(100):
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass'
}

# Retries CMD every 50 ms until it succeeds or SECONDS pass: kdp_wait_for SECONDS CMD...
kdp_wait_for() {
  local seconds=$1; shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

# A network namespace with a unique name, deleted on exit: ns=$(kdp_netns NAME); also in
# $KDP_NETNS[-1] when called directly.
kdp_netns() {
  local name="kdp-$1-$$-$RANDOM"
  ip netns add "$name"
  KDP_NETNS+=("$name")
  ip -n "$name" link set lo up
  echo "$name"
}

# kdp_netns_vars VAR...: a namespace per VAR (as kdp_netns VAR), its name stored in $VAR. Call it
# in the test's own shell, not in $(...): the namespaces must be registered for deletion there.
kdp_netns_vars() {
  local var
  for var in "$@"; do
    kdp_netns "$var" >/dev/null
    printf -v "$var" '%s' "${KDP_NETNS[-1]}"
  done
}

# nsx NS CMD...: CMD inside network namespace NS.
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
