# Shared by the dns benchmarks (bench/dns.sh, bench/dns_memory.sh): waiting for a real answer;
# /proc readings. Sourced after `set -euo pipefail`, from the repository root. The scratch
# directory ($tmp), the processes started (KDP_PIDS, killed on exit) and free loopback ports
# (kdp_free_port) come from the e2e tests' lib.sh.
source tests/e2e/lib.sh
tmp=$KDP_TMP
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
