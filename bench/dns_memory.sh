#!/usr/bin/env bash
# Issue 4, benchmark 3 alone: resident memory of `kube-dataplane dns` serving 10,000 Services and
# 50,000 endpoints (bench/dns_gen.py, as bench/dns.sh), NSD serving zone files of the same model
# beside it. Each run starts both fresh, waits until they answer, waits 1 s, reads /proc and
# kills both by PID. Writes its own section of bench/RESULTS.md.
#
#   bench/dns_memory.sh [RUNS=3]      (KDP_BIN: the build's binary)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
bin=${KDP_BIN:-build/kube-dataplane}
for tool in nsd dig python3; do
  command -v "$tool" >/dev/null || { echo "$tool missing (scripts/packages/bench/dns.txt)" >&2; exit 1; }
done
source bench/dns_lib.sh
status_mb() {  # PID FIELD: a /proc/PID/status field (kB) in MB
  awk -v k="$2:" '$1 == k {printf "%.1f", $2 / 1024}' "/proc/$1/status"
}

python3 bench/dns_gen.py "$tmp/gen" 10000 5
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
date=$(date -u +%Y-%m-%dT%H:%MZ)

mkdir -p "$tmp/nsd"
nport=$(kdp_free_port)
cat > "$tmp/nsd/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1@$nport
  port: $nport
  do-ip6: no
  server-count: 2
  reuseport: yes
  username: ""
  chroot: ""
  zonesdir: ""
  database: ""
  zonelistfile: "$tmp/nsd/zone.list"
  xfrdfile: "$tmp/nsd/xfrd.state"
  xfrdir: "$tmp/nsd"
  pidfile: "$tmp/nsd/nsd.pid"
  logfile: "$tmp/nsd/nsd.log"
  verbosity: 0
remote-control:
  control-enable: no
zone:
  name: "cluster.local"
  zonefile: "$tmp/gen/nsd/cluster.local.zone"
zone:
  name: "10.in-addr.arpa"
  zonefile: "$tmp/gen/nsd/10.in-addr.arpa.zone"
CONF

rss=() anon=() file=() hwm=() nsd_rss=()
for r in $(seq "$runs"); do
  kport=$(kdp_free_port)
  "$bin" dns --manifests "$tmp/gen/manifests" --listen "127.0.0.1:$kport" --threads 2 \
    --upstream 127.0.0.1:9 --log-level warn 2>"$tmp/kdp.log" &
  kpid=$!
  KDP_PIDS+=("$kpid")
  nsd -d -c "$tmp/nsd/nsd.conf" 2>"$tmp/nsd.err" &
  npid=$!
  KDP_PIDS+=("$npid")
  wait_dns "$kport" svc-1.ns1.svc.cluster.local
  wait_dns "$nport" svc-1.ns1.svc.cluster.local
  sleep 1
  rss+=("$(status_mb "$kpid" VmRSS)") anon+=("$(status_mb "$kpid" RssAnon)")
  file+=("$(status_mb "$kpid" RssFile)") hwm+=("$(status_mb "$kpid" VmHWM)")
  # shellcheck disable=SC2046
  nsd_rss+=("$(rss_mb "$npid" $(descendants "$npid"))")
  echo "memory run=$r ours RSS ${rss[-1]} MB (anonymous ${anon[-1]}, file ${file[-1]}, peak ${hwm[-1]}) NSD ${nsd_rss[-1]} MB"
  kill "$kpid" "$npid"
  wait "$kpid" "$npid" 2>/dev/null || true
done

section=$(cat <<MD
## dns: resident memory at rest (10,000 Services / 50,000 endpoints)

- date: $date; machine: $machine (shared with other work: load average $(cut -d' ' -f1 /proc/loadavg) at the end)
- command: \`bench/dns_memory.sh $runs\` (medians of $runs fresh starts of \`kube-dataplane dns --manifests DIR --threads 2\` on bench/dns_gen.py's 10,000 Services in 100 namespaces, 5 ready endpoints each, read from /proc/PID/status 1 s after the first answer; NSD, 2 servers, zone files of the same model, all its processes)
- ours: RSS $(median "${rss[@]}") MB (anonymous $(median "${anon[@]}") MB, file-backed $(median "${file[@]}") MB; peak $(median "${hwm[@]}") MB during the load); NSD: $(median "${nsd_rss[@]}") MB; goal ≤ 30 MB (CoreDNS's published formula ≈ 114 MB); runs: ${rss[*]} / NSD ${nsd_rss[*]}
MD
)
echo "$section"
python3 bench/write_section.py <<<"$section"
