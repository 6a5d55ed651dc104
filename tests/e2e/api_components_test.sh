#!/usr/bin/env bash
# The components fed by the Kubernetes API source, against a real kube-apiserver v1.20.2 + etcd
# (tests/e2e/apiserver.sh), with deploy/rbac.yaml's rights only. Objects created, changed and
# deleted through the API show up in each component in the order the API made them:
# - proxy (`--kubeconfig`, inside a network namespace this test creates; the apiserver is relayed
#   into it): Service/EndpointSlice writes → elements of the namespace's `ip kube-dataplane`
#   maps, in API order (nft monitor: one generation per transaction), and a real TCP connection
#   through the ClusterIP to a server in a pod namespace follows the endpoint change;
# - ingress (`--kubeconfig`, on loopback): Ingress + Service + EndpointSlice → the route answers
#   from a local backend, a changed path and backend answer anew, a deleted Ingress → 404;
#   with --publish-address the Ingress status is written promptly (the time is printed);
# - proxy --dry-run / --once with --kubeconfig: one LIST, the rules printed / applied, exit.
#
#   client 203.0.113.2 ── node 203.0.113.1 (proxy) ─┬─ pod1 10.244.1.11:8080
#                         192.168.77.1              ├─ pod2 10.244.1.12:8080
#                             └─ uplink 192.168.77.2 (default route)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/apiserver.sh"
py=$(command -v python3)
command -v nft >/dev/null || kdp_fail "nft missing (scripts/packages/proxy.txt: nftables)"

kdp_apiserver_start
kdp_kubectl create namespace shop >/dev/null

ms_now() { date +%s%3N; }
stop_clean() {  # stop_clean PID LOG: SIGTERM, and it must exit 0 (a sanitizer report fails)
  local rc=0
  kill "$1"; wait "$1" 2>/dev/null || rc=$?
  [ "$rc" -eq 0 ] || kdp_fail "exit $rc after SIGTERM: $(tail -20 "$2")"
}

# ================================ proxy ===========================================================
kdp_netns_vars node client pod1 pod2 uplink
ip -n "$node" link add nc type veth peer name eth0 netns "$client"
ip -n "$node" addr add 203.0.113.1/24 dev nc; ip -n "$node" link set nc up
ip -n "$client" addr add 203.0.113.2/24 dev eth0; ip -n "$client" link set eth0 up
ip -n "$client" route add default via 203.0.113.1
pod_link() {  # pod_link POD_NS POD_IP IFNAME
  ip -n "$node" link add "$3" type veth peer name eth0 netns "$1"
  ip -n "$node" addr add 10.244.1.1/32 dev "$3"; ip -n "$node" link set "$3" up
  ip -n "$node" route add "$2/32" dev "$3"
  ip -n "$1" addr add "$2/32" dev eth0; ip -n "$1" link set eth0 up
  ip -n "$1" route add 10.244.1.1 dev eth0; ip -n "$1" route add default via 10.244.1.1
}
pod_link "$pod1" 10.244.1.11 p1
pod_link "$pod2" 10.244.1.12 p2
nsx "$node" sysctl -qw net.ipv4.ip_forward=1
# A default route to an uplink, as real nodes have: a ClusterIP port nobody serves is routed,
# then rejected by the proxy's rules (without a route the node itself answers "unreachable").
ip -n "$node" link add upl type veth peer name eth0 netns "$uplink"
ip -n "$node" addr add 192.168.77.1/24 dev upl; ip -n "$node" link set upl up
ip -n "$uplink" addr add 192.168.77.2/24 dev eth0; ip -n "$uplink" link set eth0 up
ip -n "$node" route add default via 192.168.77.2

# Each pod answers every TCP connection on 8080 with its name (bounded by timeout).
cat >"$KDP_TMP/server.py" <<'PY'
import socket, sys
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", 8080)); t.listen(64)
while True:
    c, _ = t.accept(); c.sendall(sys.argv[1].encode() + b"\n"); c.close()
PY
# One TCP connection: prints the first line received, or "ERR <exception>".
cat >"$KDP_TMP/connect.py" <<'PY'
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as s:
        print(s.makefile().readline().strip())
except Exception as e:
    print("ERR", type(e).__name__)
PY
for p in pod1 pod2; do kdp_spawn ip netns exec "${!p}" timeout 300 "$py" "$KDP_TMP/server.py" "$p"; done
connect() { nsx "$client" "$py" "$KDP_TMP/connect.py" "$@"; }
serves() { [ "$(nsx "${!1}" "$py" "$KDP_TMP/connect.py" 127.0.0.1 8080)" = "$1" ]; }
for p in pod1 pod2; do kdp_wait_for 10 serves "$p" || kdp_fail "server $p not up"; done

kdp_apiserver_into_netns "$node"
kdp_spawn ip netns exec "$node" "$KDP_BIN" proxy --kubeconfig "$KDP_KUBECONFIG_TOKEN" \
  --node-name node1 --node-ip 203.0.113.1 --cluster-cidr 10.244.0.0/16 \
  --metrics 127.0.0.1:19090 2>"$KDP_TMP/proxy.log"
proxy_pid=$!
kdp_wait_for 60 nsx "$node" curl -sf 127.0.0.1:19090/readyz ||
  kdp_fail "proxy not ready: $(tail -5 "$KDP_TMP/proxy.log")"

# Every transaction the proxy commits, as `nft monitor` prints it ("# new generation N ..." ends
# each one); started after the first sync.
kdp_spawn ip netns exec "$node" timeout 300 stdbuf -oL nft monitor >"$KDP_TMP/monitor.txt"
monitor_pid=$!
nsx "$node" nft list table ip kube-dataplane >/dev/null || kdp_fail "no table after readyz"

# Destinations (Services with endpoints, and those without: rejected) and the whole table.
dests() {
  nsx "$node" nft list map ip kube-dataplane service-ips
  nsx "$node" nft list map ip kube-dataplane no-endpoint-services
}
table() { nsx "$node" nft list table ip kube-dataplane; }
has_dest() { grep -qF "$1" <<<"$(dests)"; }      # has_dest "10.96.0.30 . tcp . 80 "
lacks_dest() { ! grep -qF "$1" <<<"$(dests)"; }
has_backend() { grep -qF "$1" <<<"$(table)"; }   # has_backend ": 10.244.1.11 . 8080"
lacks_backend() { ! grep -qF "$1" <<<"$(table)"; }
answers() { [ "$(connect "$1" "$2")" = "$3" ]; }

service() {  # service NAME IP PORT: a ClusterIP Service → 8080
  kdp_kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata: {name: $1, namespace: shop}
spec: {clusterIP: $2, ports: [{name: http, port: $3, targetPort: 8080}]}
YAML
}
slice() {  # slice SERVICE IP...: its one EndpointSlice (v1beta1: what v1.20 serves)
  local svc=$1 ip; shift
  {
    cat <<YAML
apiVersion: discovery.k8s.io/v1beta1
kind: EndpointSlice
metadata: {name: $svc-1, namespace: shop, labels: {kubernetes.io/service-name: $svc}}
addressType: IPv4
ports: [{name: http, protocol: TCP, port: 8080}]
endpoints:
YAML
    for ip in "$@"; do printf -- '- {addresses: [%s], conditions: {ready: true}, topology: {kubernetes.io/hostname: node1}}\n' "$ip"; done
  } | kdp_kubectl apply -f - >/dev/null
}

# --- create: a rule, then a real connection through the ClusterIP --------------------------------
t0=$(ms_now)
service web 10.96.0.30 80
slice web 10.244.1.11
kdp_wait_for 20 has_backend "10.96.0.30 . tcp . 80 . 0x00000000 : 10.244.1.11 . 8080" ||
  kdp_fail "created Service/slice not in the rules: $(table)"
echo "proxy: API create → rules in $(( $(ms_now) - t0 )) ms (two kubectl writes included)"
has_dest "10.96.0.30 . tcp . 80 " || kdp_fail "no destination for 10.96.0.30:80: $(dests)"
answers 10.96.0.30 80 pod1 || kdp_fail "ClusterIP → pod1: $(connect 10.96.0.30 80)"

# --- change: the endpoint moves to pod2, then the Service's port changes -------------------------
t0=$(ms_now)
slice web 10.244.1.12
kdp_wait_for 20 has_backend ": 10.244.1.12 . 8080" || kdp_fail "changed slice not in the rules: $(table)"
echo "proxy: API slice change → rules in $(( $(ms_now) - t0 )) ms"
lacks_backend "10.244.1.11" || kdp_fail "old endpoint still in the rules: $(table)"
answers 10.96.0.30 80 pod2 || kdp_fail "ClusterIP → pod2 after the change: $(connect 10.96.0.30 80)"
service web 10.96.0.30 81
kdp_wait_for 20 has_dest "10.96.0.30 . tcp . 81 " || kdp_fail "changed port not in the rules: $(dests)"
lacks_dest "10.96.0.30 . tcp . 80 " || kdp_fail "old port still in the rules: $(dests)"
answers 10.96.0.30 81 pod2 || kdp_fail "ClusterIP:81 → pod2: $(connect 10.96.0.30 81)"
out=$(connect 10.96.0.30 80); grep -q "^ERR ConnectionRefusedError" <<<"$out" || kdp_fail "old port not refused: $out"

# --- delete: the destination goes, connections are refused ----------------------------------------
kdp_kubectl -n shop delete service web >/dev/null
kdp_wait_for 20 lacks_dest "10.96.0.30 " || kdp_fail "deleted Service still in the rules: $(dests)"
grep -q '^ERR' <<<"$(connect 10.96.0.30 81)" || kdp_fail "deleted Service still answers"
kdp_kubectl -n shop delete endpointslice web-1 >/dev/null
kdp_wait_for 20 lacks_backend 10.244.1.12 || kdp_fail "deleted slice still in the rules: $(table)"

# --- order: five Services created one after the other, then deleted in another order ---------------
# Each element must appear (and later go) in a transaction no earlier than the previous write's.
order=(45 42 44 41 43)
for i in "${order[@]}"; do service "o$i" "10.96.0.$i" 80; done
for i in "${order[@]}"; do kdp_wait_for 20 has_dest "10.96.0.$i . tcp . 80 " || kdp_fail "o$i not in the rules"; done
# A burst on one Service: the last write wins.
for port in 91 92 93 94; do service o41 10.96.0.41 "$port"; done
kdp_wait_for 20 has_dest "10.96.0.41 . tcp . 94 " || kdp_fail "burst: last port not in the rules: $(dests)"
for port in 80 91 92 93; do lacks_dest "10.96.0.41 . tcp . $port " || kdp_fail "burst: stale port $port"; done
deleted=(43 45 41 44 42)
for i in "${deleted[@]}"; do kdp_kubectl -n shop delete service "o$i" >/dev/null; done
for i in "${deleted[@]}"; do kdp_wait_for 20 lacks_dest "10.96.0.$i " || kdp_fail "o$i still in the rules"; done
kill "$monitor_pid"; wait "$monitor_pid" 2>/dev/null || true
# generation WHAT IP PORT: the number of the transaction that added/deleted that destination
# (the monitor prints a transaction's elements, then "# new generation N").
generation() {
  awk -v what="$1" -v key="$2 . tcp . $3 " '
    /^# new generation/ { gen++; if (seen) { print gen; exit } }
    $0 ~ "^" what " element ip kube-dataplane (service-ips|no-endpoint-services) " && index($0, key) { seen = 1 }
  ' "$KDP_TMP/monitor.txt"
}
check_order() {  # check_order add|delete PORT IP-SUFFIX...
  local what=$1 port=$2 previous=0 i g; shift 2
  for i in "$@"; do
    g=$(generation "$what" "10.96.0.$i" "$port")
    [ -n "$g" ] || kdp_fail "$what of 10.96.0.$i not seen by nft monitor: $(grep -c . "$KDP_TMP/monitor.txt") lines"
    [ "$g" -ge "$previous" ] || kdp_fail "$what of 10.96.0.$i in transaction $g, before the previous write's ($previous)"
    previous=$g
  done
  echo "proxy: $what order ${*} → transactions $(for i in "$@"; do generation "$what" "10.96.0.$i" "$port"; done | tr '\n' ' ')"
}
check_order add 80 "${order[@]}"
# Deleted at their last port (o41: 94).
awk '/^delete element ip kube-dataplane (service-ips|no-endpoint-services) /' "$KDP_TMP/monitor.txt" | grep -qF "10.96.0.41 . tcp . 94 " ||
  kdp_fail "o41's last port was never deleted"
for port in 91 92 93; do
  [ "$(awk '/^add element ip kube-dataplane (service-ips|no-endpoint-services) /' "$KDP_TMP/monitor.txt" | grep -cF "10.96.0.41 . tcp . $port ")" -le 1 ] ||
    kdp_fail "burst port $port added more than once"
done
check_order delete 80 43 45 44 42

# --- one-shot modes from the API: one LIST of every kind the proxy reads, then exit --------------
service o50 10.96.0.50 80
slice o50 10.244.1.11
kdp_wait_for 20 has_dest "10.96.0.50 . tcp . 80 : goto endpoints-" || kdp_fail "o50 not in the rules"
oneshot_args=(proxy --kubeconfig "$KDP_KUBECONFIG_TOKEN" --node-name node1 --node-ip 203.0.113.1
              --cluster-cidr 10.244.0.0/16)
# --dry-run touches nothing: run as is, bounded.
timeout 60 "$KDP_BIN" "${oneshot_args[@]}" --dry-run >"$KDP_TMP/dry.nft" 2>"$KDP_TMP/dry.log" ||
  kdp_fail "--dry-run from the API: exit $?: $(tail -3 "$KDP_TMP/dry.log")"
grep -q '10.96.0.50 . tcp . 80 : goto endpoints-' "$KDP_TMP/dry.nft" &&
  grep -q '10.96.0.50 . tcp . 80 . 0 : 10.244.1.11 . 8080' "$KDP_TMP/dry.nft" ||
  kdp_fail "--dry-run from the API: o50 missing: $(grep -c . "$KDP_TMP/dry.nft") lines"
[ "$(grep -c 'listed kind=' "$KDP_TMP/dry.log")" -eq 3 ] ||
  kdp_fail "--dry-run should list Service, EndpointSlice, Node once: $(grep 'listed kind=' "$KDP_TMP/dry.log")"
# --once applies one full sync, into a namespace of its own (the apiserver relayed in).
kdp_netns once >/dev/null; once=${KDP_NETNS[-1]}
kdp_apiserver_into_netns "$once"
timeout 60 ip netns exec "$once" "$KDP_BIN" "${oneshot_args[@]}" --once 2>"$KDP_TMP/once.log" ||
  kdp_fail "--once from the API: exit $?: $(tail -3 "$KDP_TMP/once.log")"
grep -q '10.96.0.50 . tcp . 80 : goto endpoints-' <<<"$(nsx "$once" nft list map ip kube-dataplane service-ips)" ||
  kdp_fail "--once from the API: o50 not in the namespace's rules"
# No source outside a pod: a usage error, as for the long-running modes.
set +e
err=$(env -u KUBERNETES_SERVICE_HOST "$KDP_BIN" proxy --node-name n --node-ip 192.0.2.1 --dry-run 2>&1 >/dev/null); rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q "no source" <<<"$err" || kdp_fail "--dry-run without a source: exit $rc: $err"
echo "proxy: --dry-run and --once from the API: ok"

# No error, no restart: the proxy is still the one started.
kill -0 "$proxy_pid" || kdp_fail "proxy exited: $(tail -5 "$KDP_TMP/proxy.log")"
stop_clean "$proxy_pid" "$KDP_TMP/proxy.log"

# ================================ ingress =========================================================
# Backends on loopback: answer every request with their name and the path they got.
cat >"$KDP_TMP/backend.py" <<'PY'
import http.server, sys
name, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        data = ("%s %s\n" % (name, self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
http.server.ThreadingHTTPServer((addr, port), H).serve_forever()
PY
bport=$(kdp_free_port)
kdp_spawn timeout 300 "$py" "$KDP_TMP/backend.py" web-a 127.0.0.2 "$bport"
kdp_spawn timeout 300 "$py" "$KDP_TMP/backend.py" web-b 127.0.0.3 "$bport"
for ip in 127.0.0.2 127.0.0.3; do
  kdp_wait_for 10 curl -sf "http://$ip:$bport/" || kdp_fail "backend $ip did not start"
done

kdp_kubectl apply -f - >/dev/null <<'YAML'
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: kube-dataplane}
spec: {controller: kube-dataplane.io/ingress}
YAML
hport=$(kdp_free_port); sport=$(kdp_free_port); mport=$(kdp_free_port)
# With --publish-address it also writes Ingress status (the Lease in namespace kube-dataplane,
# where deploy/rbac.yaml grants it).
POD_NAME=api-components POD_NAMESPACE=kube-dataplane kdp_spawn "$KDP_BIN" ingress \
  --kubeconfig "$KDP_KUBECONFIG_TOKEN" --http "127.0.0.1:$hport" --https "127.0.0.1:$sport" \
  --metrics "127.0.0.1:$mport" --threads 1 --access-log off --publish-address 203.0.113.10 \
  2>"$KDP_TMP/ingress.log"
ingress_pid=$!
kdp_wait_for 60 curl -sf "http://127.0.0.1:$mport/readyz" ||
  kdp_fail "ingress not ready: $(tail -5 "$KDP_TMP/ingress.log")"

get() {  # get PATH: "CODE BODY" for shop.example.com (BODY only for 200)
  local code
  code=$(curl -s --max-time 3 -o "$KDP_TMP/body" -w '%{http_code}' -H 'Host: shop.example.com' \
    "http://127.0.0.1:$hport$1") || true
  if [ "$code" = 200 ]; then echo "$code $(cat "$KDP_TMP/body")"; else echo "$code"; fi
}
get_is() { [ "$(get "$1")" = "$2" ]; }
backend_service() {  # backend_service NAME ADDRESS: a Service and its slice on the backend port
  kdp_kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata: {name: $1, namespace: shop}
spec: {ports: [{name: http, port: 80, targetPort: $bport}]}
---
apiVersion: discovery.k8s.io/v1beta1
kind: EndpointSlice
metadata: {name: $1-1, namespace: shop, labels: {kubernetes.io/service-name: $1}}
addressType: IPv4
ports: [{name: http, protocol: TCP, port: $bport}]
endpoints:
- {addresses: [$2], conditions: {ready: true}}
YAML
}
ingress() {  # ingress PATH SERVICE
  kdp_kubectl apply -f - >/dev/null <<YAML
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop}
spec:
  ingressClassName: kube-dataplane
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: $1, pathType: Prefix, backend: {service: {name: $2, port: {number: 80}}}}
YAML
}

get_is /a 404 || kdp_fail "route before the Ingress: $(get /a)"
# --- create -------------------------------------------------------------------------------------
backend_service web-a 127.0.0.2
backend_service web-b 127.0.0.3
t0=$(ms_now)
ingress /a web-a
kdp_wait_for 20 get_is /a/x "200 web-a /a/x" || kdp_fail "created Ingress not routed: $(get /a/x): $(tail -20 "$KDP_TMP/ingress.log")"
echo "ingress: API create → route answers in $(( $(ms_now) - t0 )) ms (the kubectl write included)"
# --- change the path, then the backend --------------------------------------------------------------
ingress /b web-a
kdp_wait_for 20 get_is /b "200 web-a /b" || kdp_fail "changed path not routed: $(get /b)"
get_is /a 404 || kdp_fail "old path still routed: $(get /a)"
ingress /b web-b
kdp_wait_for 20 get_is /b "200 web-b /b" || kdp_fail "changed backend not routed: $(get /b)"
# The backend Service's endpoint changes (slice rewritten): web-b's Service now points at .2.
backend_service web-b 127.0.0.2
kdp_wait_for 20 get_is /b "200 web-a /b" || kdp_fail "changed endpoint not used: $(get /b)"
# A burst: the last write wins.
for p in /c /d /e /f; do ingress "$p" web-a; done
kdp_wait_for 20 get_is /f "200 web-a /f" || kdp_fail "burst: last path not routed: $(get /f)"
for p in /b /c /d /e; do get_is "$p" 404 || kdp_fail "burst: stale path $p: $(get "$p")"; done
# --- delete ----------------------------------------------------------------------------------------
kdp_kubectl -n shop delete ingress shop >/dev/null
kdp_wait_for 20 get_is /f 404 || kdp_fail "deleted Ingress still routed: $(get /f)"

# --- Ingress status: written promptly after a create (the time is printed) -------------------------
api() { curl -sS --max-time 5 --cacert "$KDP_API_CA" -H "Authorization: Bearer $KDP_API_ADMIN_TOKEN" "$@"; }
ingresses=$KDP_API_SERVER/apis/networking.k8s.io/v1/namespaces/shop/ingresses
status_written() {
  [ "$(api "$ingresses/$1" | jq -r '.status.loadBalancer.ingress[0].ip // empty')" = 203.0.113.10 ]
}
kdp_wait_for 30 grep -q 'ingress status lease acquired' "$KDP_TMP/ingress.log" ||
  kdp_fail "no Lease: $(tail -5 "$KDP_TMP/ingress.log")"
latencies=()
for i in 1 2 3 4 5 6 7; do
  t0=$(ms_now)
  api -X POST -H 'Content-Type: application/json' "$ingresses" -o /dev/null --data-binary @- <<JSON
{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "status-$i"},
 "spec": {"ingressClassName": "kube-dataplane",
          "defaultBackend": {"service": {"name": "web-a", "port": {"number": 80}}}}}
JSON
  kdp_wait_for 20 status_written "status-$i" || kdp_fail "status-$i: no status: $(tail -3 "$KDP_TMP/ingress.log")"
  latencies+=($(( $(ms_now) - t0 )))
done
sorted=($(printf '%s\n' "${latencies[@]}" | sort -n))
echo "ingress status: API create → status written (POST, then GET every ~50 ms): ${latencies[*]} ms; median ${sorted[3]} ms, max ${sorted[6]} ms"
# The writer reacts to the store's change. The 2 s polling it replaced took 1.9-2.1 s for every
# one here: each create follows just after a round (the previous status seen), so the next round
# is ~2 s away. A bound on the fastest, not the median, holds on a loaded machine too.
[ "${sorted[0]}" -lt 1000 ] || kdp_fail "status written after ${sorted[0]} ms at best, want < 1000 ms"
# Someone clears the status: the watch brings the change, the status is written again.
t0=$(ms_now)
api "$ingresses/status-1" | jq -c '.status = {"loadBalancer": {}}' |
  api -X PUT -H 'Content-Type: application/json' "$ingresses/status-1/status" -o /dev/null --data-binary @-
kdp_wait_for 20 status_written status-1 || kdp_fail "cleared status not written again"
echo "ingress status: cleared by another writer → written again in $(( $(ms_now) - t0 )) ms"
writes=$(grep -c 'ingress status written ingress=shop/status-1 ' "$KDP_TMP/ingress.log" || true)
[ "$writes" -eq 2 ] || kdp_fail "shop/status-1 written $writes times, want 2"
kill -0 "$ingress_pid" || kdp_fail "ingress exited: $(tail -5 "$KDP_TMP/ingress.log")"
stop_clean "$ingress_pid" "$KDP_TMP/ingress.log"
echo "PASS api_components"
