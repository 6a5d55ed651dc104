# Shared by the dns benchmarks (bench/dns.sh, bench/dns_memory.sh): a scratch directory and the
# processes started, both removed on exit; loopback ports; waiting for a real answer; /proc.
# Sourced after `set -euo pipefail`.
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket
for _ in range(100):
    t=socket.socket(); t.bind(("127.0.0.1",0)); p=t.getsockname()[1]
    u=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1",p)); print(p); break
    except OSError: pass'
}
wait_dns() {  # PORT NAME: until the server answers NAME (30 s at most)
  for _ in $(seq 300); do
    dig @127.0.0.1 -p "$1" +time=1 +tries=1 +short "$2" | grep -qE "^[0-9]" && return 0
    sleep 0.1
  done
  echo "server on port $1 did not answer $2" >&2
  exit 1
}
descendants() {  # PID: its children, grandchildren, ... (NSD's main and servers are under xfrd)
  local c
  for c in $(pgrep -P "$1" || true); do echo "$c"; descendants "$c"; done
}
rss_mb() {  # PID...: summed VmRSS in MB
  local kb=0
  for p in "$@"; do kb=$((kb + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status"))); done
  python3 -c "print(round($kb / 1024, 1))"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
