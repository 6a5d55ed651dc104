#!/usr/bin/env bash
# Proxy benchmarks 1 and 2 (issue 3), each inside network namespaces made here and deleted on
# exit, on a cluster of SERVICES ClusterIP Services x ENDPOINTS ready endpoints (manifests as JSON
# lists in a directory):
#  1. full sync from an empty table to the kernel's ack: `kube-dataplane proxy --once`, the whole
#     process (wall time, peak RSS), median of RUNS fresh namespaces; beside it, in the same run,
#     `nft -f` of our own --dry-run text and `nft -f` of kube-proxy's nftables layout (a chain per
#     Service port and per endpoint) for the same cluster (KUBE_PROXY_RUNS times: it is slow);
#  2. in that cluster, one EndpointSlice changes: store write -> kernel ack, p50/p99 over CHANGES
#     changes, and the netlink messages per change (bench/proxy_bench.cpp drives the store,
#     IncrementalCompiler and Syncer as the proxy does).
# Prints the figures and writes section "## proxy: full sync and one-change latency" of
# bench/RESULTS.md.
#   bench/proxy_sync.sh [RUNS]   env: SERVICES=10000 ENDPOINTS=10 CHANGES=1000 KUBE_PROXY_RUNS=1
#                                     BUILD=build (a release build directory)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
services=${SERVICES:-10000}
endpoints=${ENDPOINTS:-10}
changes=${CHANGES:-1000}
kp_runs=${KUBE_PROXY_RUNS:-1}
build=${BUILD:-build}
[[ -x $build/kube-dataplane && -x $build/proxy_bench ]] || scripts/build.sh release >/dev/null
build=$(cd "$build" && pwd)
KDP_BIN=$build/kube-dataplane
source tests/e2e/lib.sh
command -v nft >/dev/null || kdp_fail "nft is needed (scripts/install-deps.sh)"

cluster=$KDP_TMP/cluster
mkdir -p "$cluster"
"$build/proxy_bench" generate "$cluster" "$services" "$endpoints"
node=(--node-name node-0 --node-ip 192.0.2.1 --cluster-cidr 10.128.0.0/9)
"$KDP_BIN" proxy --manifests "$cluster" "${node[@]}" --dry-run >"$KDP_TMP/ours.nft" 2>/dev/null
"$build/proxy_bench" kube-proxy "$cluster" >"$KDP_TMP/kube-proxy.nft"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# Runs a command in a fresh namespace; prints "seconds peak_rss_mb".
timed() {
  local ns out
  ns=$(kdp_netns bench)
  out=$(/usr/bin/time -f "%e %M" ip netns exec "$ns" "$@" 2>&1 >/dev/null | tail -1)
  ip netns del "$ns"
  awk '{printf "%.3f %.1f\n", $1, $2 / 1024}' <<<"$out"
}
# Same, but the kernel's share too: "seconds sys_seconds".
timed_sys() {
  local ns out
  ns=$(kdp_netns bench)
  out=$(/usr/bin/time -f "%e %S" ip netns exec "$ns" "$@" 2>&1 >/dev/null | tail -1)
  ip netns del "$ns"
  echo "$out"
}

once_s=(); once_mb=(); ours_s=(); kp_s=(); kp_sys=()
for ((i = 0; i < runs; i++)); do
  read -r s mb < <(timed "$KDP_BIN" proxy --manifests "$cluster" "${node[@]}" --once --log-level warn)
  once_s+=("$s"); once_mb+=("$mb")
  read -r s _ < <(timed_sys nft -f "$KDP_TMP/ours.nft")
  ours_s+=("$s")
done
for ((i = 0; i < kp_runs; i++)); do
  read -r s sys < <(timed_sys nft -f "$KDP_TMP/kube-proxy.nft")
  kp_s+=("$s"); kp_sys+=("$sys")
done
once=$(printf '%s\n' "${once_s[@]}" | median)
once_rss=$(printf '%s\n' "${once_mb[@]}" | median)
ours=$(printf '%s\n' "${ours_s[@]}" | median)
kp=$(printf '%s\n' "${kp_s[@]}" | median)
kp_k=$(printf '%s\n' "${kp_sys[@]}" | median)
chains=$(grep -c 'chain ' "$KDP_TMP/kube-proxy.nft" || true)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", a / b}'; }
summary1="proxy --once: ${once} s wall, ${once_rss} MB peak RSS (goal <= 0.5 s, <= 80 MB); nft -f of our --dry-run text: ${ours} s; nft -f of kube-proxy's layout (${chains} chains): ${kp} s (${kp_k} s in the kernel) = $(ratio "$kp" "$once")x our --once"
echo "$summary1"

# The change loop twice: as any process, and as a real-time one (chrt -f 10), which no other
# tenant's work preempts: on a shared, loaded machine the first p99 is the scheduler's.
ns=$(kdp_netns bench)
line=$(ip netns exec "$ns" "$build/proxy_bench" changes "$cluster" "$changes" 192.0.2.1)
ip netns del "$ns"
ns=$(kdp_netns bench)
rt_line=$(ip netns exec "$ns" chrt -f 10 "$build/proxy_bench" changes "$cluster" "$changes" 192.0.2.1)
ip netns del "$ns"
echo "$line"
echo "$rt_line"
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }
summary2="one EndpointSlice change, store write -> kernel ack, ${changes} changes: p50 $(field p50_us "$line") µs, p99 $(field p99_us "$line") µs, max $(field max_us "$line") µs; as a real-time process: p50 $(field p50_us "$rt_line") µs, p99 $(field p99_us "$rt_line") µs (goal p99 <= 2 ms); $(field messages_per_change "$line") netlink messages per change"
echo "$summary2"

section="## proxy: full sync and one-change latency"
{
  echo "$section"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/model name\s*: //p' /proc/cpuinfo | head -1); load average at start: $(cut -d' ' -f1 /proc/loadavg)"
  echo "- command: \`bench/proxy_sync.sh $runs\` (SERVICES=$services ENDPOINTS=$endpoints CHANGES=$changes KUBE_PROXY_RUNS=$kp_runs); cluster: $services ClusterIP Services x $endpoints ready endpoints, JSON manifests; each figure the median of $runs fresh namespaces ($kp_runs for kube-proxy's layout)"
  echo "- full sync: $summary1"
  echo "- --once runs (s): ${once_s[*]}; peak RSS (MB): ${once_mb[*]}; nft -f ours (s): ${ours_s[*]}; nft -f kube-proxy layout (s): ${kp_s[*]}"
  echo "- change: $summary2"
  echo "- change runs: \`$line\`; real-time: \`$rt_line\`"
} >"$KDP_TMP/section.md"
python3 bench/write_section.py <"$KDP_TMP/section.md"
