#!/usr/bin/env bash
# Ingress benchmarks (issue 5), each against its peers measured in the same run, interleaved
# round by round (so that load from elsewhere on the machine hits every proxy alike):
#   http   wrk, keep-alive, a 13-byte static body from a backend nginx, through kube-dataplane,
#          nginx (proxy_pass + upstream keepalive) and HAProxy (http-reuse), same route (Host
#          bench.local, path /), same X-Forwarded-* work, 1 and 2 worker threads. Beside them the
#          floor (bench/ingress_floor.cpp): a one-thread relay without any HTTP work, the
#          ceiling any proxy runs under with this machine, client and backend.
#   tls    new TLS 1.3 connections per second (ECDSA P-256 certificate, X25519): wrk with
#          "Connection: close", so every request is a full handshake (wrk keeps no session for
#          resumption) plus one proxied request; vs nginx and HAProxy. wrk rather than h2load
#          (HTTP/2 only to nginx; HTTP/1.1 is what we serve) or `openssl s_time` (one connection
#          at a time, so it measures latency, not the server's capacity).
#   routes 10,000 Ingresses through the real binary (manifests directory): time from a changed
#          Ingress file to its new route answering, and resident memory (bench/ingress_routes_bench
#          measures the compiler alone).
# Pinning (2 cores): with 1 worker thread every proxy runs on CPU 1 and wrk plus the backend on
# CPU 0; with 2 threads nothing is pinned (the proxy needs both cores). Besides req/s the proxy's
# own CPU time per request is reported (from /proc), which does not depend on who else is busy.
# Usage: bench/ingress.sh [http|tls|routes|all] [ROUNDS] [SECONDS]; KDP_BIN=path/to/kube-dataplane.
# Needs bench/install-deps.sh (nginx, haproxy, wrk). Rewrites its sections of bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
rounds=${2:-5}
secs=${3:-5}
KDP_BIN=$(realpath "${KDP_BIN:-build/kube-dataplane}")
FLOOR_BIN=${FLOOR_BIN:-$(dirname "$KDP_BIN")/ingress_floor}
[ -x "$FLOOR_BIN" ] || { echo "$FLOOR_BIN missing: build the ingress_floor target" >&2; exit 1; }
for tool in nginx haproxy wrk; do
  command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin
  command -v "$tool" >/dev/null || { echo "$tool missing: run bench/install-deps.sh" >&2; exit 1; }
done

# $KDP_TMP, KDP_PIDS (killed on exit, also on failure), kdp_free_port, kdp_wait_for.
source tests/e2e/lib.sh
work=$KDP_TMP
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime of a process
tree_ticks() {  # the process and its children (nginx and HAProxy workers)
  local total=0 p
  for p in $1 $(pgrep -P "$1" || true); do total=$((total + $(cpu_ticks "$p"))); done
  echo "$total"
}
machine="$(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/model name\s*: //p' /proc/cpuinfo | head -1)"
hz=$(getconf CLK_TCK)
load_start=$(cut -d" " -f1-3 /proc/loadavg)

# --- the backend and the certificate --------------------------------------------------------
backend_ip=127.0.0.10
bport=$(kdp_free_port)
mkdir -p "$work/backend"
cat > "$work/backend/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $work/backend/pid;
error_log $work/backend/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  server {
    listen $backend_ip:$bport backlog=4096;
    location / { default_type text/plain; return 200 "hello, world\n"; }
  }
}
EOF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=bench.local \
  -addext subjectAltName=DNS:bench.local -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
cat "$work/cert.pem" "$work/key.pem" > "$work/haproxy.pem"

# --- the three proxies, one route each -------------------------------------------------------
mkdir -p "$work/m"
cat > "$work/m/bench.yaml" <<EOF
apiVersion: v1
kind: Service
metadata: {name: web, namespace: bench}
spec: {ports: [{name: http, port: 80, targetPort: $bport}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: bench, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: $bport}]
endpoints: [{addresses: [$backend_ip]}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: bench, namespace: bench}
spec:
  ingressClassName: kube-dataplane
  rules:
  - host: bench.local
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
EOF

nginx_conf() {  # nginx_conf THREADS HTTP_PORT HTTPS_PORT
  cat <<EOF
daemon off;
worker_processes $1;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 10000; }
http {
  access_log off;
  keepalive_requests 100000000;
  ssl_protocols TLSv1.2 TLSv1.3;
  upstream web { server $backend_ip:$bport; keepalive 64; }
  server {
    listen 127.0.0.1:$2 default_server reuseport backlog=4096;
    listen 127.0.0.1:$3 ssl default_server reuseport backlog=4096;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    return 404;
  }
  server {
    listen 127.0.0.1:$2;
    listen 127.0.0.1:$3 ssl;
    server_name bench.local;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    location / {
      proxy_pass http://web;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Real-IP \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$host;
      proxy_set_header X-Forwarded-Port \$server_port;
    }
  }
}
EOF
}

haproxy_conf() {  # haproxy_conf THREADS HTTP_PORT HTTPS_PORT
  cat <<EOF
global
  nbthread $1
  maxconn 9000
  ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:$2
  bind 127.0.0.1:$3 ssl crt $work/haproxy.pem
  option forwardfor
  http-request set-header X-Real-IP %[src]
  http-request set-header X-Forwarded-Proto https if { ssl_fc }
  http-request set-header X-Forwarded-Proto http if !{ ssl_fc }
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  http-request set-header X-Forwarded-Port %[dst_port]
  http-request return status 404 unless { hdr(host) -i bench.local }
  default_backend web
backend web
  server s1 $backend_ip:$bport
EOF
}

# start_proxy NAME THREADS CPUS: starts it, sets $proxy_pid, $http_port, $https_port
start_proxy() {
  local name=$1 threads=$2 cpus=$3
  http_port=$(kdp_free_port); https_port=$(kdp_free_port)
  case "$name" in
    kube-dataplane)
      local mport; mport=$(kdp_free_port)
      taskset -c "$cpus" "$KDP_BIN" ingress --manifests "$work/m" --http "127.0.0.1:$http_port" \
        --https "127.0.0.1:$https_port" --metrics "127.0.0.1:$mport" --threads "$threads" \
        --access-log off --default-cert "$work/cert.pem" --default-key "$work/key.pem" \
        --log-level warn 2>"$work/kdp.log" &
      proxy_pid=$!
      kdp_wait_for 10 curl -sf "http://127.0.0.1:$mport/readyz" || { cat "$work/kdp.log"; exit 1; } ;;
    nginx)
      nginx_conf "$threads" "$http_port" "$https_port" > "$work/nginx.conf"
      taskset -c "$cpus" nginx -c "$work/nginx.conf" -e "$work/nginx-error.log" &
      proxy_pid=$! ;;
    floor)
      taskset -c "$cpus" "$FLOOR_BIN" "$http_port" "$backend_ip" "$bport" &
      proxy_pid=$! ;;
    haproxy)
      haproxy_conf "$threads" "$http_port" "$https_port" > "$work/haproxy.cfg"
      taskset -c "$cpus" haproxy -f "$work/haproxy.cfg" -q &
      proxy_pid=$! ;;
  esac
  KDP_PIDS+=("$proxy_pid")
  kdp_wait_for 10 curl -sf -H 'Host: bench.local' "http://127.0.0.1:$http_port/" ||
    { echo "$name did not start" >&2; exit 1; }
}
stop_proxy() {
  kill "$proxy_pid" 2>/dev/null || true
  wait "$proxy_pid" 2>/dev/null || true
}

# run_wrk CPUS ARGS... → prints "req/s p99_ms"
run_wrk() {
  local cpus=$1; shift
  taskset -c "$cpus" wrk --latency "$@" > "$work/wrk.out" 2>&1 || { cat "$work/wrk.out" >&2; return 1; }
  local rps p99 unit errors
  rps=$(awk '/^Requests\/sec:/{print $2}' "$work/wrk.out")
  read -r p99 unit < <(awk '$1=="99%"{v=$2; u=v; sub(/[0-9.]+/,"",u); sub(/[a-z]+$/,"",v); print v, u}' "$work/wrk.out")
  case "$unit" in us) p99=$(awk -v v="$p99" 'BEGIN{print v/1000}') ;; s) p99=$(awk -v v="$p99" 'BEGIN{print v*1000}') ;; esac
  errors=$(awk '/Non-2xx|Socket errors/' "$work/wrk.out")
  if [ -n "$errors" ]; then echo "wrk: $errors" >&2; fi
  echo "$rps $p99"
}

start_backend() {
  taskset -c "$1" nginx -c "$work/backend/nginx.conf" -e "$work/backend/error.log" &
  backend_pid=$!
  KDP_PIDS+=("$backend_pid")
  kdp_wait_for 10 curl -sf "http://$backend_ip:$bport/"
}

proxies=(kube-dataplane nginx haproxy)
declare -A result

# measure KIND THREADS: KIND http|tls; fills result[KIND,THREADS,proxy,rps|p99|cpu]
measure() {
  local kind=$1 threads=$2 proxy_cpus load_cpus conns url r
  if [ "$threads" = 1 ]; then proxy_cpus=1; load_cpus=0; else proxy_cpus=0,1; load_cpus=0,1; fi
  local -A rps p99 cpu
  local measured=("${proxies[@]}")
  if [ "$kind" = http ]; then measured+=(floor); fi
  for ((round = 0; round < rounds; round++)); do
    for proxy in "${measured[@]}"; do
      start_proxy "$proxy" "$threads" "$proxy_cpus"
      if [ "$kind" = http ]; then
        url="http://127.0.0.1:$http_port/"; conns=64
        run_wrk "$load_cpus" -t1 -c"$conns" -d1s -H 'Host: bench.local' "$url" >/dev/null  # warm-up
        local t0; t0=$(tree_ticks "$proxy_pid")
        r=$(run_wrk "$load_cpus" -t"$threads" -c"$conns" -d"${secs}s" -H 'Host: bench.local' "$url")
      else
        url="https://127.0.0.1:$https_port/"; conns=32
        local t0; t0=$(tree_ticks "$proxy_pid")
        r=$(run_wrk "$load_cpus" -t"$threads" -c"$conns" -d"${secs}s" -H 'Host: bench.local' \
          -H 'Connection: close' "$url")
      fi
      local t1; t1=$(tree_ticks "$proxy_pid")
      stop_proxy
      read -r a b <<<"$r"
      rps[$proxy]+="$a "; p99[$proxy]+="$b "
      # proxy CPU microseconds per request (or per connection)
      cpu[$proxy]+="$(awk -v t=$((t1 - t0)) -v hz="$hz" -v r="$a" -v s="$secs" 'BEGIN{printf "%.1f", t / hz * 1e6 / (r * s)}') "
      echo "$kind threads=$threads round=$round $proxy: ${a} req/s p99 ${b} ms" >&2
    done
  done
  for proxy in "${measured[@]}"; do
    result[$kind,$threads,$proxy,rps]=$(tr ' ' '\n' <<<"${rps[$proxy]}" | sed '/^$/d' | median)
    result[$kind,$threads,$proxy,p99]=$(tr ' ' '\n' <<<"${p99[$proxy]}" | sed '/^$/d' | median)
    result[$kind,$threads,$proxy,cpu]=$(tr ' ' '\n' <<<"${cpu[$proxy]}" | sed '/^$/d' | median)
    result[$kind,$threads,$proxy,runs]="${rps[$proxy]% }"
  done
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a / b}'; }

# Replaces (or appends) the section whose heading is $1 in bench/RESULTS.md with stdin.
write_section() {
  local heading=$1 body
  body=$(cat)
  printf '%s\n\n%s\n' "$heading" "$body" | python3 bench/write_section.py
}

report_http() {
  local t p line
  for t in 1 2; do
    local k=${result[http,$t,kube-dataplane,rps]} n=${result[http,$t,nginx,rps]} h=${result[http,$t,haproxy,rps]}
    echo "- threads=$t: kube-dataplane ${k} req/s (p99 ${result[http,$t,kube-dataplane,p99]} ms, ${result[http,$t,kube-dataplane,cpu]} µs CPU/req); nginx ${n} (p99 ${result[http,$t,nginx,p99]} ms, ${result[http,$t,nginx,cpu]} µs); HAProxy ${h} (p99 ${result[http,$t,haproxy,p99]} ms, ${result[http,$t,haproxy,cpu]} µs) → **$(ratio "$k" "$n")× nginx, $(ratio "$k" "$h")× HAProxy** (goal ≥ 1.2×, ≥ 1.0×, p99 ≤ nginx's)"
    local f=${result[http,$t,floor,rps]}
    echo "- threads=$t floor (one-thread relay, no HTTP work: the ceiling on this setup): ${f} req/s (${result[http,$t,floor,cpu]} µs CPU/req) = $(ratio "$f" "$n")× nginx, $(ratio "$f" "$h")× HAProxy"
    for p in "${proxies[@]}" floor; do line+="$p t=$t: ${result[http,$t,$p,runs]}; "; done
  done
  echo "- runs (req/s): ${line%; }"
}

report_tls() {
  local t=$1 p line=""
  local k=${result[tls,$t,kube-dataplane,rps]} n=${result[tls,$t,nginx,rps]} h=${result[tls,$t,haproxy,rps]}
  echo "- threads=$t: kube-dataplane ${k} conn/s (${result[tls,$t,kube-dataplane,cpu]} µs CPU/conn); nginx ${n} (${result[tls,$t,nginx,cpu]} µs); HAProxy ${h} (${result[tls,$t,haproxy,cpu]} µs) → **$(ratio "$k" "$n")× nginx** (goal ≥ 1.0×), $(ratio "$k" "$h")× HAProxy"
  for p in "${proxies[@]}"; do line+="$p: ${result[tls,$t,$p,runs]}; "; done
  echo "- runs (conn/s): ${line%; }"
}

header() {
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $machine; shared with other work (figures are medians of interleaved rounds); load average (1/5/15 min) $load_start at the start, $(cut -d" " -f1-3 /proc/loadavg) at the end; scheduling: $(chrt -p $$ | sed -n 's/.*policy: //p' | head -1)"
  echo "- versions: $(nginx -v 2>&1 | sed 's/.*: //'), $(haproxy -v | head -1 | awk '{print "HAProxy " $3}'), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), $(openssl version | awk '{print $1, $2}')"
}

if [ "$what" = http ] || [ "$what" = all ] || [ "$what" = tls ]; then
  start_backend 0
fi

if [ "$what" = http ] || [ "$what" = all ]; then
  measure http 1
  measure http 2
  report_http | tee /dev/stderr | {
    header
    echo "- command: \`bench/ingress.sh http $rounds $secs\`; wrk -c64 -t(threads), ${secs} s per run after a 1 s warm-up, $rounds interleaved rounds, median; body 13 bytes from a backend nginx on $backend_ip; threads=1: proxy on CPU 1, wrk + backend on CPU 0; threads=2: proxy and wrk not pinned, backend on CPU 0"
    echo "- every proxy adds X-Forwarded-For/-Proto/-Host/-Port and X-Real-IP and routes by Host (other hosts 404); no access log"
    cat
  } | write_section "## ingress: wrk keep-alive through kube-dataplane vs nginx vs HAProxy"
fi

if [ "$what" = tls ] || [ "$what" = all ]; then
  measure tls 1
  report_tls 1 | tee /dev/stderr | {
    header
    echo "- command: \`bench/ingress.sh tls $rounds $secs\`; wrk -c32 -t1 -H 'Connection: close' https://…: each request a new TCP connection and a full TLS 1.3 handshake (ECDSA P-256 certificate, X25519), then one proxied GET; proxy on CPU 1 (1 worker), wrk + backend on CPU 0; $rounds interleaved rounds of ${secs} s, median"
    echo "- wrk (the client: key share, CertificateVerify check) costs as much CPU per handshake as the server, so conn/s is bounded by its core as well; µs CPU/conn (the proxy's own /proc time) compares the servers independently of that"
    cat
  } | write_section "## ingress: new TLS 1.3 connections per second vs nginx"
fi

if [ "$what" = routes ] || [ "$what" = all ]; then
  bench/ingress_routes.sh "$KDP_BIN"
fi
