#!/usr/bin/env bash
# `kube-dataplane dns` end to end on loopback: dig over UDP and TCP for every record kind of the
# Kubernetes DNS spec and their negative cases, protocol errors, a live zone change, and
# forwarding through the cache to a real upstream (Unbound, started here on its own port, serving
# only local zones), including upstreams that refuse or never answer; --autopath for a pod at
# 127.0.0.1.
source "$(dirname "$0")/lib.sh"
examples=$(cd "$(dirname "$0")/../../examples" && pwd)
command -v dig >/dev/null || kdp_fail "dig missing (scripts/packages/dns.txt: bind9-dnsutils)"
command -v unbound >/dev/null || kdp_fail "unbound missing (scripts/packages/dns.txt)"

# --- the upstream: Unbound with local zones only ("." static: NXDOMAIN for the rest, no traffic
# leaves loopback) ---------------------------------------------------------------------------
up_port=$(kdp_free_port)
mkdir -p "$KDP_TMP/unbound"
{
  cat <<EOF
server:
  interface: 127.0.0.1@$up_port
  port: $up_port
  do-ip6: no
  do-daemonize: no
  username: ""
  chroot: ""
  pidfile: ""
  directory: "$KDP_TMP/unbound"
  use-syslog: no
  logfile: ""
  verbosity: 0
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  local-zone: "." static
  local-zone: "example.test." static
  local-data: "example.test. 3600 IN SOA ns.example.test. admin.example.test. 1 3600 600 86400 60"
  local-data: "www.example.test. 300 IN A 192.0.2.1"
  local-data: "alias.example.test. 300 IN CNAME www.example.test."
  local-zone: "example.net." static
  local-data: "example.net. 3600 IN SOA ns.example.net. admin.example.net. 1 3600 600 86400 60"
  local-data: "api.payments.example.net. 300 IN A 192.0.2.50"
remote-control:
  control-enable: no
EOF
  for i in $(seq 1 120); do
    echo "server:"
    echo "  local-data: \"big.example.test. 300 IN A 198.18.$((i / 256)).$((i % 256))\""
  done
} > "$KDP_TMP/unbound/unbound.conf"
kdp_spawn unbound -d -c "$KDP_TMP/unbound/unbound.conf" 2>"$KDP_TMP/unbound.log"
kdp_wait_for 10 dig @127.0.0.1 -p "$up_port" +time=1 +tries=1 www.example.test +short ||
  kdp_fail "unbound did not start: $(cat "$KDP_TMP/unbound.log")"

# A UDP port that swallows queries and never answers (a dead upstream that does not refuse).
hole_port=$(kdp_free_port)
kdp_spawn python3 -c "import socket,time
s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1',$hole_port)); time.sleep(3600)"

# --- the server --------------------------------------------------------------------------------
cp -r "$examples" "$KDP_TMP/m"
cat > "$KDP_TMP/m/80-dns-extra.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: quiet}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop}
spec: {containers: [{name: c, image: x}]}
status: {phase: Running, podIP: 127.0.0.1}
---
apiVersion: v1
kind: Service
metadata: {name: dual, namespace: shop}
spec:
  clusterIPs: [10.96.0.40, "fd00::40"]
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv4, IPv6]
  ports: [{name: dns, port: 53, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: idle, namespace: data}
spec: {clusterIP: None, ports: [{name: p, port: 1}]}
---
apiVersion: v1
kind: Service
metadata: {name: alias, namespace: shop}
spec: {type: ExternalName, externalName: web.shop.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: many, namespace: shop}
spec: {clusterIP: None, ports: [{name: p, port: 1}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: many-1, namespace: shop, labels: {kubernetes.io/service-name: many}}
addressType: IPv4
ports: [{name: p, protocol: TCP, port: 1}]
endpoints:
YAML
for i in $(seq 1 60); do echo "- {addresses: [10.250.0.$i]}" >> "$KDP_TMP/m/80-dns-extra.yaml"; done

port=$(kdp_free_port)
mport=$(kdp_free_port)
murl="http://127.0.0.1:$mport"
kdp_spawn "$KDP_BIN" dns --manifests "$KDP_TMP/m" --listen "127.0.0.1:$port" --metrics "127.0.0.1:$mport" \
  --upstream "127.0.0.1:$up_port" --threads 2 --autopath --log-level debug 2>"$KDP_TMP/log"
kdp_wait_for 10 curl -sf "$murl/readyz" || kdp_fail "not ready: $(cat "$KDP_TMP/log")"

q() { dig @127.0.0.1 -p "$port" +time=3 +tries=1 "$@"; }
# expect DESCRIPTION "DIG ARGS" REGEX: dig's output, as one line, must match REGEX (grep -E).
expect() {
  local what=$1 args=$2 re=$3 out
  # shellcheck disable=SC2086
  out=$(q $args 2>&1) || true
  tr '\n' ' ' <<<"$out" | grep -Eq -- "$re" || kdp_fail "$what: dig $args: want /$re/, got:
$out"
}
status() { echo "status: $1"; }

for mode in "" "+tcp"; do
  # ClusterIP Services: A, AAAA (dual stack), NODATA for a family without an address; case kept.
  expect "A $mode" "$mode web.shop.svc.cluster.local A" 'web\.shop\.svc\.cluster\.local\.\s+30\s+IN\s+A\s+10\.96\.0\.20'
  expect "flags $mode" "$mode web.shop.svc.cluster.local A" 'flags: qr aa rd ra;'
  expect "case $mode" "$mode WeB.ShOp.svc.cluster.local A" 'WeB\.ShOp\.svc\.cluster\.local\.\s+30\s+IN\s+A\s+10\.96\.0\.20'
  expect "AAAA $mode" "$mode dual.shop.svc.cluster.local AAAA" 'IN\s+AAAA\s+fd00::40'
  expect "NODATA $mode" "$mode web.shop.svc.cluster.local AAAA" "$(status NOERROR).*ANSWER: 0, AUTHORITY: 1"
  expect "NODATA SOA $mode" "$mode web.shop.svc.cluster.local AAAA" 'cluster\.local\.\s+30\s+IN\s+SOA\s+ns\.dns\.cluster\.local\. hostmaster\.cluster\.local\.'
  # Headless: ready endpoints only, hostnames, SRV with additional addresses.
  expect "headless $mode" "$mode db.data.svc.cluster.local A" 'ANSWER: 2,'
  expect "hostname $mode" "$mode db-1.db.data.svc.cluster.local A" 'IN\s+A\s+10\.244\.2\.32'
  expect "headless none ready $mode" "$mode idle.data.svc.cluster.local A" "$(status NXDOMAIN)"
  expect "SRV headless $mode" "$mode _postgres._tcp.db.data.svc.cluster.local SRV" 'SRV\s+0 50 5432 db-0\.db\.data\.svc\.cluster\.local\.'
  expect "SRV additional $mode" "$mode _postgres._tcp.db.data.svc.cluster.local SRV" 'ADDITIONAL: 3'
  expect "SRV ClusterIP $mode" "$mode _https._tcp.web.shop.svc.cluster.local SRV" 'SRV\s+0 100 443 web\.shop\.svc\.cluster\.local\.'
  expect "SRV wrong proto $mode" "$mode _https._udp.web.shop.svc.cluster.local SRV" "$(status NXDOMAIN)"
  # PTR: ClusterIP, endpoint, IPv6 nibbles.
  expect "PTR $mode" "$mode -x 10.96.0.20" 'PTR\s+web\.shop\.svc\.cluster\.local\.'
  expect "PTR endpoint $mode" "$mode -x 10.244.1.31" 'PTR\s+db-0\.db\.data\.svc\.cluster\.local\.'
  expect "PTR v6 $mode" "$mode -x fd00::40" 'PTR\s+dual\.shop\.svc\.cluster\.local\.'
  # ExternalName inside the zone: CNAME and the target's address.
  expect "CNAME in zone $mode" "$mode alias.shop.svc.cluster.local A" 'CNAME\s+web\.shop\.svc\.cluster\.local\..*IN\s+A\s+10\.96\.0\.20'
  # Apex, version, pods.
  expect "SOA $mode" "$mode cluster.local SOA" 'IN\s+SOA\s+ns\.dns\.cluster\.local\.'
  expect "NS $mode" "$mode cluster.local NS" 'IN\s+NS\s+ns\.dns\.cluster\.local\.'
  expect "TXT $mode" "$mode dns-version.cluster.local TXT" 'TXT\s+"1\.1\.0"'
  expect "pod $mode" "$mode 10-244-1-21.shop.pod.cluster.local A" 'IN\s+A\s+10\.244\.1\.21'
  # Negative answers: NXDOMAIN vs NODATA, with the SOA.
  expect "NXDOMAIN $mode" "$mode nope.shop.svc.cluster.local A" "$(status NXDOMAIN).*AUTHORITY: 1"
  expect "search path $mode" "$mode example.com.shop.svc.cluster.local A" "$(status NXDOMAIN)"
  expect "namespace NODATA $mode" "$mode quiet.svc.cluster.local A" "$(status NOERROR).*ANSWER: 0"
  expect "no namespace $mode" "$mode loud.svc.cluster.local A" "$(status NXDOMAIN)"
  # Protocol: zone transfers refused, unknown opcode, EDNS.
  expect "EDNS $mode" "$mode web.shop.svc.cluster.local A +edns=0" 'EDNS: version: 0, flags:; udp: 1232'
  expect "BADVERS $mode" "$mode web.shop.svc.cluster.local A +edns=1 +noednsneg" 'BADVERS'
done
expect "AXFR" "+tcp cluster.local AXFR" 'Transfer failed'
expect "NOTIMP" "+opcode=2 cluster.local SOA" "$(status NOTIMP)"
# TC over UDP when the answer exceeds 512 without EDNS; the full answer over TCP.
expect "TC" "+noedns +ignore many.shop.svc.cluster.local A" 'flags: qr aa tc rd ra;'
expect "TCP after TC" "+noedns many.shop.svc.cluster.local A" 'ANSWER: 60,'

# Several queries on one TCP connection (dig +keepopen sends them over one connection).
out=$(q +tcp +keepopen web.shop.svc.cluster.local A db.data.svc.cluster.local A dns-version.cluster.local TXT 2>&1)
[ "$(grep -c 'status: NOERROR' <<<"$out")" -eq 3 ] || kdp_fail "pipelined TCP: $out"

# --- a zone change is visible at once ------------------------------------------------------------
# Five changes, each a new Service: dig in a tight loop (bounded: 5 s) until it is answered. The
# store's change is when the manifests source applied it (after its inotify debounce): the
# zone-published log line's time less its since_change_ms. Medians, so that one slice of a busy
# machine's scheduler does not decide.
sinces=() digs=()
for i in 1 2 3 4 5; do
  cat > "$KDP_TMP/m/90-new.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: checkout$i, namespace: shop}
spec: {clusterIP: 10.96.0.$((30 + i)), ports: [{port: 80}]}
YAML
  t0=$(date +%s%N)
  seen="" missed=$t0
  while (($(date +%s%N) - t0 < 5000000000)); do
    d0=$(date +%s%N)
    ans=$(dig @127.0.0.1 -p "$port" +short +time=1 +tries=1 "checkout$i.shop.svc.cluster.local")
    d1=$(date +%s%N)
    if [ "$ans" = "10.96.0.$((30 + i))" ]; then seen=$d1; break; fi
    missed=$d0
  done
  [ -n "$seen" ] || kdp_fail "new Service checkout$i not served"
  line=$(grep 'zone published' "$KDP_TMP/log" | tail -1)
  since=$(sed -E 's/.*since_change_ms=([0-9.]+).*/\1/' <<<"$line")
  published_ms=$(date -d "$(cut -d' ' -f1 <<<"$line")" +%s%3N)
  # With dig: the last dig that did not see the change began this long after the store event
  # (negative: before it); every later one saw it.
  dig_ms=$(python3 -c "print(round($missed / 1e6 - ($published_ms - $since), 1))")
  sinces+=("$since") digs+=("$dig_ms")
  echo "zone change $i: store → zone served ${since} ms; last dig to miss it began ${dig_ms} ms after the store event (a dig run takes $((($d1 - $d0) / 1000000)) ms); file write → dig $((($seen - t0) / 1000000)) ms (inotify debounce included)"
done
median() { printf '%s\n' "$@" | sort -g | sed -n 3p; }
since=$(median "${sinces[@]}") dig_ms=$(median "${digs[@]}")
echo "zone change medians: store → served ${since} ms; last dig to miss it began ${dig_ms} ms after the store event"
python3 -c "import sys; sys.exit(0 if $since < 10 else 1)" || kdp_fail "zone changes took ${sinces[*]} ms to be served"
# (+1: the log's millisecond resolution.)
python3 -c "import sys; sys.exit(0 if $dig_ms < 11 else 1)" || kdp_fail "zone changes answered by dig ${digs[*]} ms after the store event"
rm "$KDP_TMP/m/90-new.yaml"
kdp_wait_for 5 bash -c "dig @127.0.0.1 -p $port +time=1 +tries=1 checkout5.shop.svc.cluster.local | grep -q NXDOMAIN" ||
  kdp_fail "removed Service still served"

# --- forwarding --------------------------------------------------------------------------------
expect "forward" "www.example.test A" 'www\.example\.test\.\s+[0-9]+\s+IN\s+A\s+192\.0\.2\.1'
expect "forward not aa" "www.example.test A" 'flags: qr rd ra;'
expect "forward case" "WwW.Example.TEST A" 'WwW\.Example\.TEST\.\s+[0-9]+\s+IN\s+A\s+192\.0\.2\.1'
expect "forward tcp" "+tcp alias.example.test A" 'CNAME\s+www\.example\.test\.'
expect "forward NXDOMAIN" "nx.example.test A" "$(status NXDOMAIN).*example\.test\.\s+[0-9]+\s+IN\s+SOA"
expect "forward truncated upstream → TCP" "+bufsize=4096 big.example.test A" 'ANSWER: 120,'
expect "ExternalName out of zone" "payments.shop.svc.cluster.local A" 'CNAME\s+api\.payments\.example\.net\..*api\.payments\.example\.net\.\s+[0-9]+\s+IN\s+A\s+192\.0\.2\.50'
# Autopath (the client, 127.0.0.1, is pod shop/client): the first search-path query gets the
# final answer, in the zone and upstream.
expect "autopath in zone" "db.data.shop.svc.cluster.local A" 'db\.data\.shop\.svc\.cluster\.local\.\s+30\s+IN\s+CNAME\s+db\.data\.svc\.cluster\.local\..*IN\s+A\s+10\.244\.'
expect "autopath upstream" "www.example.test.shop.svc.cluster.local A" 'CNAME\s+www\.example\.test\..*www\.example\.test\.\s+[0-9]+\s+IN\s+A\s+192\.0\.2\.1'
expect "autopath miss" "nothing.example.test.shop.svc.cluster.local A" "$(status NXDOMAIN)"
metric() { curl -s "$murl/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
hits=$(metric kube_dataplane_dns_cache_hits_total)
expect "cached" "www.example.test A" 'IN\s+A\s+192\.0\.2\.1'
[ "$(metric kube_dataplane_dns_cache_hits_total)" -gt "$hits" ] || kdp_fail "no cache hit"
# (Captured first: grep -q exiting early would fail curl's pipe under pipefail.)
metrics=$(curl -s "$murl/metrics")
grep -q '^kube_dataplane_dns_requests_total{proto="tcp",type="SRV"} [1-9]' <<<"$metrics" ||
  kdp_fail "requests metric: $(grep dns_requests <<<"$metrics")"
grep -q '^kube_dataplane_dns_responses_total{rcode="NXDOMAIN"} [1-9]' <<<"$metrics" ||
  kdp_fail "responses metric"
grep -q '^kube_dataplane_dns_request_duration_seconds_count [1-9]' <<<"$metrics" ||
  kdp_fail "latency histogram"

# A dead upstream first: the next one answers; only dead ones: SERVFAIL within 2 s while cluster
# names are answered at once.
port2=$(kdp_free_port)
kdp_spawn "$KDP_BIN" dns --manifests "$KDP_TMP/m" --listen "127.0.0.1:$port2" \
  --upstream "127.0.0.1:$hole_port,127.0.0.1:$up_port" --threads 1 2>"$KDP_TMP/log2"
kdp_wait_for 10 dig @127.0.0.1 -p "$port2" +time=1 +tries=1 web.shop.svc.cluster.local +short ||
  kdp_fail "second server: $(cat "$KDP_TMP/log2")"
out=$(dig @127.0.0.1 -p "$port2" +time=4 +tries=1 www.example.test A 2>&1)
grep -q '192.0.2.1' <<<"$out" || kdp_fail "failover to the second upstream: $out"
port3=$(kdp_free_port)
kdp_spawn "$KDP_BIN" dns --manifests "$KDP_TMP/m" --listen "127.0.0.1:$port3" \
  --upstream "127.0.0.1:$hole_port" --threads 1 2>"$KDP_TMP/log3"
kdp_wait_for 10 dig @127.0.0.1 -p "$port3" +time=1 +tries=1 web.shop.svc.cluster.local +short ||
  kdp_fail "third server: $(cat "$KDP_TMP/log3")"
dig @127.0.0.1 -p "$port3" +time=5 +tries=1 gone.example.test A >"$KDP_TMP/slow" 2>&1 &
slow=$!
t0=$(date +%s%N)
out=$(dig @127.0.0.1 -p "$port3" +time=1 +tries=1 web.shop.svc.cluster.local A 2>&1)
ms=$((($(date +%s%N) - t0) / 1000000))
grep -q '10.96.0.20' <<<"$out" || kdp_fail "cluster name while upstream hangs: $out"
((ms < 500)) || kdp_fail "cluster name took ${ms} ms while the upstream hangs"
wait "$slow" || true
grep -q 'status: SERVFAIL' "$KDP_TMP/slow" || kdp_fail "dead upstream: $(cat "$KDP_TMP/slow")"
grep -Eq 'Query time: (1?[0-9]{1,3}) msec' "$KDP_TMP/slow" || kdp_fail "SERVFAIL too late: $(cat "$KDP_TMP/slow")"
echo "PASS dns"
