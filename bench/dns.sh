#!/usr/bin/env bash
# The dns benchmarks of issue 4, each against its peer in the same run, on loopback only:
#   1. dnsperf against 10,000 Services (A, SRV, PTR, NXDOMAIN mix): kube-dataplane dns vs NSD
#      serving zone files written from the same model (bench/dns_gen.py), 1 and 2 threads;
#   2. cached forwarded names: kube-dataplane dns vs Unbound, same upstream (an NSD), 1 thread;
#   3. resident memory with 10,000 Services and 50,000 endpoints (NSD's beside it);
#   4. zone change → published at that scale (bench/dns_zone_bench.cpp) vs a full compile.
# Every run is bounded (dnsperf -l); every process is started here and killed by PID on exit.
#
#   bench/dns.sh [RUNS=3] [SECONDS=10] [PARTS=auth,forward,memory,zone]
#                                            (KDP_BIN, KDP_BENCH_DIR: the build's binaries)
# PARTS picks the benchmarks; with fewer than all, only their lines of the RESULTS.md section are
# replaced (each marked with its own date and load), so one benchmark can be re-measured alone.
# The memory line needs auth too (it reads the 2-thread server after its dnsperf runs). DRY=1
# prints the figures without writing RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
secs=${2:-10}
parts=${3:-auth,forward,memory,zone}
want() { [[ ",$parts," == *",$1,"* ]]; }
bin=${KDP_BIN:-build/kube-dataplane}
bench_dir=${KDP_BENCH_DIR:-$(dirname "$bin")}
for tool in dnsperf nsd unbound dig python3; do
  command -v "$tool" >/dev/null || { echo "$tool missing (scripts/packages/bench/dns.txt)" >&2; exit 1; }
done
source bench/dns_lib.sh
cpu_ticks() {  # PID...: user+system clock ticks of the processes
  local t=0
  # (Fields after the command name, which may hold spaces: utime and stime are the 12th and 13th.)
  for p in "$@"; do t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}'))); done
  echo "$t"
}
hz=$(getconf CLK_TCK)
# dnsperf PORT FILE PIDS...: prints "qps qps_per_core_of_server_cpu"
perf_run() {
  local port=$1 file=$2
  shift 2
  local c0 c1 out qps
  c0=$(cpu_ticks "$@")
  out=$(dnsperf -s 127.0.0.1 -p "$port" -d "$file" -l "$secs" -c 1 -T 1 -q 500 2>&1)
  c1=$(cpu_ticks "$@")
  qps=$(awk '/Queries per second/ {print $4}' <<<"$out")
  lost=$(awk '/Queries lost/ {print $3}' <<<"$out")
  [ -n "$qps" ] || { echo "dnsperf failed: $out" >&2; exit 1; }
  python3 -c "q=$qps; cpu=($c1-$c0)/$hz/$secs; print(round(q), round(q/cpu) if cpu > 0 else 0, $lost)"
}

python3 bench/dns_gen.py "$tmp/gen" 10000 5
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
date=$(date -u +%Y-%m-%dT%H:%MZ)

nsd_conf() {  # DIR PORT THREADS ZONE:FILE...
  local dir=$1 port=$2 threads=$3
  shift 3
  mkdir -p "$dir"
  {
    cat <<CONF
server:
  ip-address: 127.0.0.1@$port
  port: $port
  do-ip6: no
  server-count: $threads
  reuseport: yes
  username: ""
  chroot: ""
  zonesdir: ""
  database: ""
  zonelistfile: "$dir/zone.list"
  xfrdfile: "$dir/xfrd.state"
  xfrdir: "$dir"
  pidfile: "$dir/nsd.pid"
  logfile: "$dir/nsd.log"
  verbosity: 0
  # Like ours: no rate limiting, no NS records added to positive answers.
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  minimal-responses: yes
remote-control:
  control-enable: no
CONF
    for z in "$@"; do
      printf 'zone:\n  name: "%s"\n  zonefile: "%s"\n' "${z%%:*}" "${z#*:}"
    done
  } > "$dir/nsd.conf"
}

# --- 1. authoritative: kube-dataplane dns vs NSD ---------------------------------------------
declare -A auth
for threads in 1 2; do
  want auth || break
  kport=$(kdp_free_port)
  "$bin" dns --manifests "$tmp/gen/manifests" --listen "127.0.0.1:$kport" --threads "$threads" \
    --upstream 127.0.0.1:9 --log-level warn 2>"$tmp/kdp-$threads.log" &
  kpid=$!
  KDP_PIDS+=("$kpid")
  nport=$(kdp_free_port)
  nsd_conf "$tmp/nsd-$threads" "$nport" "$threads" "cluster.local:$tmp/gen/nsd/cluster.local.zone" \
    "10.in-addr.arpa:$tmp/gen/nsd/10.in-addr.arpa.zone"
  nsd -d -c "$tmp/nsd-$threads/nsd.conf" 2>"$tmp/nsd-$threads.err" &
  npid=$!
  KDP_PIDS+=("$npid")
  wait_dns "$kport" svc-1.ns1.svc.cluster.local
  wait_dns "$nport" svc-1.ns1.svc.cluster.local
  # The same answers from both (dig +short, sorted), for a sample of the query mix.
  for q in "svc-1.ns1.svc.cluster.local A" "_http._tcp.svc-10.ns10.svc.cluster.local SRV" \
           "1.0.96.10.in-addr.arpa PTR" "svc-20.ns20.svc.cluster.local A"; do
    # shellcheck disable=SC2086
    a=$(dig @127.0.0.1 -p "$kport" +short $q | sort) b=$(dig @127.0.0.1 -p "$nport" +short $q | sort)
    [ "$a" = "$b" ] || { echo "answers differ for $q: ours [$a] NSD [$b]" >&2; exit 1; }
  done
  # shellcheck disable=SC2046
  nsd_pids=("$npid" $(descendants "$npid"))
  kq=() kc=() nq=() nc=() kl=0 nl=0
  dnsperf -s 127.0.0.1 -p "$kport" -d "$tmp/gen/queries.txt" -l 2 -q 200 >/dev/null 2>&1  # warm-up
  dnsperf -s 127.0.0.1 -p "$nport" -d "$tmp/gen/queries.txt" -l 2 -q 200 >/dev/null 2>&1
  for r in $(seq "$runs"); do
    read -r q c l < <(perf_run "$kport" "$tmp/gen/queries.txt" "$kpid")
    kq+=("$q") kc+=("$c") kl=$((kl + l))
    read -r q c l < <(perf_run "$nport" "$tmp/gen/queries.txt" "${nsd_pids[@]}")
    nq+=("$q") nc+=("$c") nl=$((nl + l))
    echo "threads=$threads run=$r ours=${kq[-1]} qps (${kc[-1]}/core) nsd=${nq[-1]} qps (${nc[-1]}/core)"
  done
  auth[$threads]="$(median "${kq[@]}") $(median "${kc[@]}") $(median "${nq[@]}") $(median "${nc[@]}") ${kq[*]} / ${nq[*]} lost $kl/$nl"
  if [ "$threads" = 2 ]; then
    rss_kdp=$(rss_mb "$kpid")
    # shellcheck disable=SC2046
    rss_nsd=$(rss_mb "$npid" $(descendants "$npid"))
    names=$(awk '/zone published/ {for (i = 1; i <= NF; i++) if ($i ~ /^names=/) print substr($i, 7)}' "$tmp/kdp-$threads.log" | tail -1)
  fi
  kill "$kpid" "$npid"
  wait "$kpid" "$npid" 2>/dev/null || true
done

# --- 3. memory at rest: a fresh server, after its first load ------------------------------------
if want memory; then
kport=$(kdp_free_port)
"$bin" dns --manifests "$tmp/gen/manifests" --listen "127.0.0.1:$kport" --threads 2 \
  --upstream 127.0.0.1:9 --log-level warn 2>/dev/null &
kpid=$!
KDP_PIDS+=("$kpid")
wait_dns "$kport" svc-1.ns1.svc.cluster.local
sleep 1
rss_idle=$(rss_mb "$kpid")
peak_kb=$(awk '/^VmHWM/ {print $2}' "/proc/$kpid/status")
rss_peak=$(python3 -c "print(round($peak_kb / 1024, 1))")
kill "$kpid"
wait "$kpid" 2>/dev/null || true
fi

# --- 2. cached forwarding: kube-dataplane dns vs Unbound, one upstream (NSD) ----------------------
if want forward; then
uport=$(kdp_free_port)
nsd_conf "$tmp/nsd-up" "$uport" 1 "example.test:$tmp/gen/upstream.zone"
nsd -d -c "$tmp/nsd-up/nsd.conf" 2>"$tmp/nsd-up.err" &
KDP_PIDS+=($!)
wait_dns "$uport" name1.example.test
mkdir -p "$tmp/m0"
printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n' > "$tmp/m0/ns.yaml"
kport=$(kdp_free_port)
"$bin" dns --manifests "$tmp/m0" --listen "127.0.0.1:$kport" --threads 1 \
  --upstream "127.0.0.1:$uport" --log-level warn 2>/dev/null &
kpid=$!
KDP_PIDS+=("$kpid")
bport=$(kdp_free_port)
cat > "$tmp/unbound.conf" <<CONF
server:
  interface: 127.0.0.1@$bport
  port: $bport
  do-ip6: no
  num-threads: 1
  so-reuseport: yes
  do-daemonize: no
  username: ""
  chroot: ""
  pidfile: ""
  directory: "$tmp"
  use-syslog: no
  logfile: ""
  verbosity: 0
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "iterator"
  qname-minimisation: no
  # test. is one of Unbound's locally served zones by default (RFC 6761).
  local-zone: "test." nodefault
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@$uport
remote-control:
  control-enable: no
CONF
unbound -d -c "$tmp/unbound.conf" 2>"$tmp/unbound.err" &
bpid=$!
KDP_PIDS+=("$bpid")
wait_dns "$kport" name1.example.test
wait_dns "$bport" name1.example.test
# Fill both caches with every name once, then measure.
dnsperf -s 127.0.0.1 -p "$kport" -d "$tmp/gen/forward-queries.txt" -n 1 -c 1 -q 10 >/dev/null 2>&1
dnsperf -s 127.0.0.1 -p "$bport" -d "$tmp/gen/forward-queries.txt" -n 1 -c 1 -q 10 >/dev/null 2>&1
fq=() fc=() uq=() uc=()
for r in $(seq "$runs"); do
  read -r q c l < <(perf_run "$kport" "$tmp/gen/forward-queries.txt" "$kpid")
  fq+=("$q") fc+=("$c")
  read -r q c l < <(perf_run "$bport" "$tmp/gen/forward-queries.txt" "$bpid")
  uq+=("$q") uc+=("$c")
  echo "forward run=$r ours=${fq[-1]} qps (${fc[-1]}/core) unbound=${uq[-1]} qps (${uc[-1]}/core)"
done
fwd="$(median "${fq[@]}") $(median "${fc[@]}") $(median "${uq[@]}") $(median "${uc[@]}")"
fi

# --- 4. zone changes at scale ---------------------------------------------------------------------
zone_out=""
want zone && zone_out=$("$bench_dir/dns_zone_bench" 1000)
zv() { awk -v k="$1" '$1 == k {print $2}' <<<"$zone_out"; }

# --- report ----------------------------------------------------------------------------------------
ratio() { [ -n "$1" ] && [ -n "$2" ] && python3 -c "print(f'{$1 / $2:.2f}')" || echo -; }
read -r k1 kc1 n1 nc1 rest1 <<<"${auth[1]:-}" || true
read -r k2 kc2 n2 nc2 rest2 <<<"${auth[2]:-}" || true
read -r f fc u uc <<<"${fwd:-}" || true
: "${rss_idle:=} ${rss_peak:=} ${rss_kdp:=} ${rss_nsd:=}"
section=$(cat <<MD
## dns: dnsperf vs NSD, cached forwarding vs Unbound, memory, zone changes (10,000 Services / 50,000 endpoints)

- date: $date; machine: $machine (shared with other work: load average $(cut -d' ' -f1 /proc/loadavg) at the end)
- command: \`bench/dns.sh $runs $secs\` (medians of $runs dnsperf runs of $secs s each, ours and the peer alternating; dnsperf -c 1 -T 1 -q 500 on the same machine; qps/core = qps ÷ the server's CPU seconds per second, from /proc)
- cluster: bench/dns_gen.py — 10,000 Services in 100 namespaces (one in ten headless), 5 ready endpoints each; NSD serves zone files written from the same model (answers compared before measuring); query mix: ClusterIP A 40%, SRV 20%, PTR 20%, NXDOMAIN 20% (headless names included)
- authoritative, 1 thread: ours $k1 qps ($kc1 qps/core), NSD $n1 qps ($nc1 qps/core): ratio $(ratio "$k1" "$n1") (per core $(ratio "$kc1" "$nc1"); goal ≥ 1.0; CoreDNS's published ≈ 17k qps/core)
- authoritative, 2 threads: ours $k2 qps ($kc2 qps/core), NSD $n2 qps ($nc2 qps/core): ratio $(ratio "$k2" "$n2") (per core $(ratio "$kc2" "$nc2"))
- runs (qps, ours / NSD): 1 thread ${rest1}; 2 threads ${rest2}
- cached forwarding (1,000 names under example.test, caches filled first; upstream: NSD), 1 thread: ours $f qps ($fc qps/core), Unbound $u qps ($uc qps/core): ratio $(ratio "$f" "$u") (per core $(ratio "$fc" "$uc"); goal ≥ 1.0)
- memory: fresh server after its first load, 2 threads: RSS $rss_idle MB (peak $rss_peak MB during the load); after the 2-thread dnsperf runs $rss_kdp MB; $(zv zone_names) names (goal ≤ 30 MB; CoreDNS's published formula ≈ 114 MB); NSD serving the same zones: $rss_nsd MB (all its processes)
- zone change → published (store apply → subscriber → ZoneCompiler::update → ZoneHolder::publish, 1,000 single-Service changes, bench/dns_zone_bench): p50 $(zv change_to_published_ms_p50) ms, p99 $(zv change_to_published_ms_p99) ms, max $(zv change_to_published_ms_max) ms (CPU time p50 $(zv change_cpu_ms_p50) ms, p99 $(zv change_cpu_ms_p99) ms; headless p50 $(zv headless_change_ms_p50) ms); at most $(zv max_names_remerged) names re-merged and $(zv max_shards_copied) of 1,024 shards copied per change; the peer, a full compile of the $(zv zone_names) names: $(zv full_compile_ms_median) ms (goal: visible within 10 ms)
MD
)
# A partial run keeps only its own lines (the python below replaces just those in RESULTS.md).
keep=()
want auth && keep+=("- authoritative" "- runs (qps")
want forward && keep+=("- cached forwarding")
want auth && want memory && want zone && keep+=("- memory")
want zone && keep+=("- zone change")
full=0
want auth && want forward && want memory && want zone && full=1
if [ "$full" = 0 ]; then
  section=$(while IFS= read -r line; do
    case "$line" in
      "- "*) for k in "${keep[@]}"; do if [[ $line == "$k"* ]]; then echo "$line"; break; fi; done ;;
      *) echo "$line" ;;
    esac
  done <<<"$section")
fi
echo "$section"
[ -z "${DRY:-}" ] || exit 0  # DRY=1: print only, RESULTS.md untouched
python3 - "$section" "$full" "measured $date by \`bench/dns.sh $runs $secs $parts\`, load average $(cut -d' ' -f1 /proc/loadavg) at the end" <<'PY'
import re, sys
path = "bench/RESULTS.md"
text = open(path).read()
section, full, note = sys.argv[1].rstrip() + "\n", sys.argv[2] == "1", sys.argv[3]
head = section.splitlines()[0]
pattern = re.compile(r"^" + re.escape(head) + r"\n.*?(?=^## |\Z)", re.S | re.M)
found = pattern.search(text)
if full or not found:
    text = pattern.sub(lambda m: section + "\n", text) if found else text.rstrip() + "\n\n" + section
else:
    # Partial run: replace the lines with the same key (the text before the first ':').
    old = found.group(0).splitlines()
    for line in section.splitlines()[1:]:
        if not line.startswith("- "):
            continue
        key = line.split(":", 1)[0]
        line = line + f" ({note})"
        idx = [i for i, l in enumerate(old) if l.split(":", 1)[0] == key]
        if idx:
            old[idx[0]] = line
        else:
            old.insert(len(old) - (1 if old and old[-1] == "" else 0), line)
    text = text[:found.start()] + "\n".join(old) + "\n" + text[found.end():]
open(path, "w").write(text)
PY
