#!/usr/bin/env bash
# The Kubernetes API source against the real kube-apiserver v1.20.2 + etcd of the test harness
# (tests/e2e/apiserver.sh), issue 6's benchmark:
#  1. initial sync of SERVICES Services + SERVICES EndpointSlices (v1beta1, 3 endpoints each):
#     `kube-dataplane run --kubeconfig` from exec to /readyz (wall) and its peak RSS, median of
#     RUNS processes; beside it, in the same run, kubectl (client-go) listing the same two kinds
#     in pages of 500 as JSON (`kubectl get services,endpointslices -A -o json --chunk-size=500`),
#     its wall time and peak RSS;
#  2. WRITES changes of one EndpointSlice through the API: write start -> new address in the store,
#     p50/p99 (bench/api_bench.cpp), beside the write's own round trip (curl time_total).
# Prints the figures and writes section "## api: initial sync and write -> store latency" of
# bench/RESULTS.md.
#   bench/api_sync.sh [RUNS]   env: SERVICES=10000 WRITES=1000 BUILD=build
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
services=${SERVICES:-10000}
writes=${WRITES:-1000}
build=${BUILD:-build}
[[ -x $build/kube-dataplane && -x $build/api_bench ]] || scripts/build.sh release >/dev/null
KDP_BIN=$PWD/$build/kube-dataplane
source tests/e2e/lib.sh
source tests/e2e/apiserver.sh
load_at_start=$(cut -d' ' -f1 /proc/loadavg)

kdp_apiserver_start
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# --- the cluster: Services and their slices, created in Lists of 1,000 ----------------------------
python3 - "$KDP_TMP/objects" "$services" <<'PY'
import json, os, sys
out, n = sys.argv[1], int(sys.argv[2])
os.makedirs(out)
for start in range(0, n, 1000):
    items = []
    if start == 0:
        items.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
    for i in range(start, min(n, start + 1000)):
        items.append({"apiVersion": "v1", "kind": "Service",
                      "metadata": {"name": f"svc-{i}", "namespace": "bench"},
                      "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
        items.append({"apiVersion": "discovery.k8s.io/v1beta1", "kind": "EndpointSlice",
                      "metadata": {"name": f"svc-{i}-abcde", "namespace": "bench",
                                   "labels": {"kubernetes.io/service-name": f"svc-{i}"}},
                      "addressType": "IPv4",
                      "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
                      "endpoints": [{"addresses": [f"10.{128 + (i * 3 + k) // 65536}.{(i * 3 + k) // 256 % 256}.{(i * 3 + k) % 256}"],
                                     "conditions": {"ready": True},
                                     "topology": {"kubernetes.io/hostname": f"node-{k}"}}
                                    for k in range(3)]})
    with open(f"{out}/{start:06d}.json", "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f)
PY
created_at=$SECONDS
for f in "$KDP_TMP"/objects/*.json; do kdp_kubectl create -f "$f" >/dev/null; done
create_s=$((SECONDS - created_at))
have=$(kdp_kubectl get endpointslices -n bench --no-headers | wc -l)
[ "$have" -eq "$services" ] || kdp_fail "$have EndpointSlices created, want $services"

# --- 1. initial sync ---------------------------------------------------------------------------
sync_s=() sync_mb=() peer_s=() peer_mb=()
for ((r = 0; r < runs; r++)); do
  port=$(kdp_free_port)
  start=$(date +%s.%N)
  "$KDP_BIN" run --kubeconfig "$KDP_KUBECONFIG_TOKEN" --metrics "127.0.0.1:$port" 2>"$KDP_TMP/run.log" &
  pid=$!
  KDP_PIDS+=("$pid")
  until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || kdp_fail "kube-dataplane exited: $(tail -3 "$KDP_TMP/run.log")"
    sleep 0.01
  done
  end=$(date +%s.%N)
  objects=$(curl -s "http://127.0.0.1:$port/metrics" | awk '$1 ~ /^kube_dataplane_store_objects\{kind="(Service|EndpointSlice)"\}/ {n += $2} END {print n}')
  [ "$objects" -ge $((2 * services)) ] || kdp_fail "store has $objects Services+EndpointSlices"
  sync_s+=("$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", b - a}')")
  sync_mb+=("$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  # The peer: client-go (kubectl) listing the same kinds in pages of 500.
  /usr/bin/time -f '%e %M' -o "$KDP_TMP/peer.time" "$KDP_KUBECTL" --kubeconfig "$KDP_KUBECONFIG_TOKEN" \
    get services,endpointslices -A -o json --chunk-size=500 >"$KDP_TMP/peer.json"
  read -r s kb <"$KDP_TMP/peer.time"
  peer_s+=("$s")
  peer_mb+=("$(awk -v k="$kb" 'BEGIN {printf "%.1f", k / 1024}')")
done
sync_med=$(printf '%s\n' "${sync_s[@]}" | median)
mb_med=$(printf '%s\n' "${sync_mb[@]}" | median)
peer_med=$(printf '%s\n' "${peer_s[@]}" | median)
peer_mb_med=$(printf '%s\n' "${peer_mb[@]}" | median)
summary1="exec → /readyz ${sync_med} s, peak RSS ${mb_med} MB; kubectl (client-go) listing the same: ${peer_med} s, ${peer_mb_med} MB (time ratio $(awk -v a="$sync_med" -v b="$peer_med" 'BEGIN {printf "%.2f", a / b}'), RSS ratio $(awk -v a="$mb_med" -v b="$peer_mb_med" 'BEGIN {printf "%.2f", a / b}'))"
echo "sync: $summary1"

# --- 2. write -> store latency -----------------------------------------------------------------
kdp_kubectl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: lat, namespace: bench}
spec: {clusterIP: None, ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1beta1
kind: EndpointSlice
metadata: {name: lat, namespace: bench, labels: {kubernetes.io/service-name: lat}}
addressType: IPv4
ports: [{port: 80}]
endpoints: [{addresses: [10.98.0.1], conditions: {ready: true}}]
YAML
line=$("$build/api_bench" latency "$KDP_KUBECONFIG_TOKEN" "$KDP_API_SERVER" "$KDP_API_CA" \
  "$KDP_API_ADMIN_TOKEN" bench lat "$writes" 2>&1) || kdp_fail "api_bench: $line"
read -r _ w50 w99 wmax <<<"$(grep '^write_to_store_ms' <<<"$line")"
read -r _ r50 r99 rmax <<<"$(grep '^write_rtt_ms' <<<"$line")"
summary2="write start → store: p50 ${w50} ms, p99 ${w99} ms (max ${wmax}); the write's own round trip (curl PATCH): p50 ${r50} ms, p99 ${r99} ms (max ${rmax})"
echo "latency: $summary2"

section="## api: initial sync and write → store latency (real kube-apiserver v1.20.2)"
{
  echo "$section"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/model name\s*: //p' /proc/cpuinfo | head -1); load average at start: $load_at_start (shared with other jobs)"
  echo "- command: \`bench/api_sync.sh $runs\` (SERVICES=$services WRITES=$writes); apiserver and etcd on loopback (TLS, token auth, RBAC, watch cache on); $services Services + $services EndpointSlices (discovery.k8s.io/v1beta1, 3 endpoints each) created in ${create_s} s by kubectl"
  echo "- initial sync (median of $runs): $summary1"
  echo "- runs (s): ${sync_s[*]}; peak RSS (MB): ${sync_mb[*]}; kubectl runs (s): ${peer_s[*]}; kubectl peak RSS (MB): ${peer_mb[*]}"
  echo "- $writes writes, one at a time: $summary2"
  echo "- note: \"write start\" is before curl's process is spawned (popen), so it includes process start-up that curl's time_total (the peer figure) leaves out; kubectl lists to JSON text and so also pays for encoding it"
} >"$KDP_TMP/section.md"
python3 bench/write_section.py <"$KDP_TMP/section.md"
echo "wrote bench/RESULTS.md: $section"
