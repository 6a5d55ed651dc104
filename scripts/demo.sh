#!/usr/bin/env bash
# The demo: installs what is needed, builds, and runs kube-dataplane on examples/ — what it loads,
# its metrics and readiness, and a manifest edited on disk becoming live.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
bin=build/kube-dataplane

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "what examples/ holds:  kube-dataplane run --manifests examples --dry-run"
"$bin" run --manifests examples --dry-run

work=$(mktemp -d)
pid=""
cleanup() {  # runs under set -e: nothing in it may fail
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cp -r examples "$work/manifests"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
metrics="http://127.0.0.1:$port"

step "running:  kube-dataplane run --manifests $work/manifests --metrics 127.0.0.1:$port"
"$bin" run --manifests "$work/manifests" --metrics "127.0.0.1:$port" --log-level info &
pid=$!
# Wait (bounded) for readiness: /readyz answers 200 after the first full load.
for _ in $(seq 100); do
  curl -sf "$metrics/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "kube-dataplane exited" >&2; exit 1; }
  sleep 0.1
done
echo "GET /readyz -> $(curl -s -w ' %{http_code}' "$metrics/readyz")"
curl -s "$metrics/metrics" | grep -E '^kube_dataplane_store_objects'

step "adding a Service to the watched directory"
cat > "$work/manifests/70-checkout.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: checkout, namespace: shop}
spec:
  clusterIP: 10.96.0.30
  selector: {app: checkout}
  ports: [{name: http, port: 80, targetPort: 8080}]
YAML
# Wait (bounded) until the store shows it.
for _ in $(seq 50); do
  curl -s "$metrics/metrics" | grep -q '^kube_dataplane_store_objects{kind="Service"} 7' && break
  sleep 0.1
done
curl -s "$metrics/metrics" | grep -E '^kube_dataplane_store_(objects\{kind="Service"\}|version)'

step "breaking that file: the last good objects stay, the log says why"
echo 'spec: [unclosed' >> "$work/manifests/70-checkout.yaml"
for _ in $(seq 50); do
  curl -s "$metrics/metrics" | grep -q '^kube_dataplane_decode_errors_total [1-9]' && break
  sleep 0.1
done
curl -s "$metrics/metrics" | grep -E '^kube_dataplane_(store_objects\{kind="Service"\}|decode_errors_total)'
step "dns: kube-dataplane dns answers the example Services (dig over UDP and TCP)"
dnsport=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dnsmetrics=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" dns --manifests "$work/manifests" --listen "127.0.0.1:$dnsport" --metrics "127.0.0.1:$dnsmetrics" \
  --threads 1 --log-level warn &
dnspid=$!
trap 'kill "$dnspid" 2>/dev/null || true; wait "$dnspid" 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$dnsmetrics/readyz" >/dev/null 2>&1 && break
  kill -0 "$dnspid" 2>/dev/null || { echo "kube-dataplane dns exited" >&2; exit 1; }
  sleep 0.1
done
ask() { echo "\$ dig $*"; dig @127.0.0.1 -p "$dnsport" +time=2 +tries=1 +noall +answer "$@" || true; }
ask web.shop.svc.cluster.local A
ask db.data.svc.cluster.local A
ask +tcp _postgres._tcp.db.data.svc.cluster.local SRV
ask payments.shop.svc.cluster.local CNAME
ask -x 10.96.0.20
ask dns-version.cluster.local TXT
echo "\$ dig nope.shop.svc.cluster.local  ->  $(dig @127.0.0.1 -p "$dnsport" +time=2 +tries=1 nope.shop.svc.cluster.local | grep -o 'status: [A-Z]*')"
kill "$dnspid" 2>/dev/null && wait "$dnspid" 2>/dev/null || true

step "ingress: the example Ingresses over HTTP and HTTPS, to tiny backends on 127.0.0.x"
ipids=()
ingress_cleanup() {
  local p
  for p in "${ipids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${ipids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap "ingress_cleanup; $(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")" EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
bport=$(free_port)
# A backend that says who it is and what it was asked.
backend='
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        body = ("%s: %s %s (X-Forwarded-Proto %s)\n" % (sys.argv[1], self.command, self.path,
                self.headers.get("X-Forwarded-Proto"))).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
http.server.ThreadingHTTPServer((sys.argv[2], int(sys.argv[3])), H).serve_forever()'
mkdir -p "$work/ingress"
cp examples/50-ingress.yaml examples/60-tls-secret.yaml "$work/ingress/"
printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n' > "$work/ingress/00-ns.yaml"
n=10
for svc in web:80:http api:9090:grpc admin:8000:http; do
  IFS=: read -r name sport pname <<<"$svc"
  n=$((n + 1))
  python3 -c "$backend" "$name" "127.0.0.$n" "$bport" & ipids+=($!)
  cat >> "$work/ingress/10-backends.yaml" <<YAML
---
apiVersion: v1
kind: Service
metadata: {name: $name, namespace: shop}
spec: {ports: [{name: $pname, port: $sport, targetPort: $bport}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name-local, namespace: shop, labels: {kubernetes.io/service-name: $name}}
addressType: IPv4
ports: [{name: $pname, port: $bport}]
endpoints: [{addresses: [127.0.0.$n]}]
YAML
done
for i in 11 12 13; do  # bounded wait for the backends to listen
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.$i:$bport/" && break; sleep 0.1; done
done
hport=$(free_port); tport=$(free_port); mport=$(free_port)
echo "kube-dataplane ingress --manifests $work/ingress --http 127.0.0.1:$hport --https 127.0.0.1:$tport"
"$bin" ingress --manifests "$work/ingress" --http "127.0.0.1:$hport" --https "127.0.0.1:$tport" \
  --metrics "127.0.0.1:$mport" --access-log off --log-level warn & ipids+=($!)
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$mport/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
c() {
  local host=$1 url=$2
  curl -sk --max-time 5 --resolve "$host:$hport:127.0.0.1" --resolve "$host:$tport:127.0.0.1" "$url" "${@:3}"
}
for url in "https://shop.example.com:$tport/" "https://shop.example.com:$tport/api/orders" \
           "https://www.shop.example.com:$tport/" "http://admin.example.com:$hport/users" \
           "http://elsewhere.example.com:$hport/ (the default backend)"; do
  host=${url#*//}; host=${host%%:*}
  printf '%-62s -> %s' "GET $url" "$(c "$host" "${url%% *}")"
  echo
done
printf '%-62s -> %s\n' "GET http://shop.example.com:$hport/" \
  "$(c shop.example.com "http://shop.example.com:$hport/" -o /dev/null -w '%{http_code} %{redirect_url}')"
for sni in shop.example.com www.shop.example.com other.example.com; do
  printf '%-62s -> %s\n' "TLS handshake with SNI $sni" "$(openssl s_client -connect "127.0.0.1:$tport" \
    -servername "$sni" </dev/null 2>/dev/null | openssl x509 -noout -subject)"
done
step "proxy: a ClusterIP balanced over three pods, in network namespaces the demo creates"
# Everything here happens inside namespaces made for the demo (deleted at exit): a node running
# kube-dataplane proxy, and three pods behind veth links. The machine's own firewall is untouched.
pxns=() pxpid="" pxpods=()
proxy_cleanup() {
  local p ns
  for p in $pxpid "${pxpods[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in $pxpid "${pxpods[@]}"; do wait "$p" 2>/dev/null || true; done
  for ns in "${pxns[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap "proxy_cleanup; $(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")" EXIT
pxnode="kdp-demo-node-$$"; ip netns add "$pxnode"; pxns+=("$pxnode")
ip -n "$pxnode" link set lo up
# The node's own address and a default route, as a real node has (on a veth pair of its own).
ip -n "$pxnode" link add eth0 type veth peer name eth0-peer
ip -n "$pxnode" addr add 192.0.2.80/24 dev eth0
ip -n "$pxnode" link set eth0 up; ip -n "$pxnode" link set eth0-peer up
ip -n "$pxnode" route add default via 192.0.2.1
mkdir -p "$work/proxy"
pxeps=""
for i in 1 2 3; do
  pod="kdp-demo-pod$i-$$"; ip netns add "$pod"; pxns+=("$pod")
  ip -n "$pxnode" link add "pod$i" type veth peer name eth0 netns "$pod"
  ip -n "$pxnode" addr add 10.244.0.1/32 dev "pod$i"; ip -n "$pxnode" link set "pod$i" up
  ip -n "$pxnode" route add "10.244.0.1$i/32" dev "pod$i"
  ip -n "$pod" addr add "10.244.0.1$i/32" dev eth0; ip -n "$pod" link set eth0 up; ip -n "$pod" link set lo up
  ip -n "$pod" route add 10.244.0.1 dev eth0; ip -n "$pod" route add default via 10.244.0.1
  ip netns exec "$pod" timeout 120 python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 8080)); s.listen(64)
while True:
    c, _ = s.accept(); c.sendall(sys.argv[1].encode()); c.close()' "pod$i" &
  pxpods+=($!)
  pxeps+="- {addresses: [10.244.0.1$i], nodeName: demo-node}"$'\n'
done
pxweb() {
  cat > "$work/proxy/web.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec: {clusterIP: 10.96.0.80, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: demo, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, protocol: TCP, port: 8080}]
endpoints:
$1
YAML
}
pxweb "$pxeps"
echo "kube-dataplane proxy --manifests $work/proxy --node-name demo-node --node-ip 192.0.2.80  (in $pxnode)"
ip netns exec "$pxnode" "$bin" proxy --manifests "$work/proxy" --node-name demo-node \
  --node-ip 192.0.2.80 --log-level warn &
pxpid=$!
for _ in $(seq 100); do  # bounded wait for the rules
  ip netns exec "$pxnode" nft list map ip kube-dataplane service-ips 2>/dev/null | grep -q 10.96.0.80 && break
  sleep 0.1
done
pxconnect() {  # 30 new connections to the ClusterIP, counted by the pod that answered
  ip netns exec "$pxnode" python3 -c '
import collections, socket
n = collections.Counter()
for _ in range(30):
    try:
        with socket.create_connection(("10.96.0.80", 80), timeout=2) as s: n[s.recv(16).decode()] += 1
    except OSError as e: n[type(e).__name__] += 1
print("  30 connections to 10.96.0.80:80 ->", dict(sorted(n.items())))'
}
ip netns exec "$pxnode" nft list map ip kube-dataplane backends-3 | grep -E '^\s*(elements|10\.)' | sed 's/^\s*/  /'
pxconnect
echo "editing the EndpointSlice: pod3 leaves"
pxweb "$(head -n 2 <<<"$pxeps")"
for _ in $(seq 100); do
  ip netns exec "$pxnode" nft list map ip kube-dataplane service-ips 2>/dev/null | grep -q 'endpoints-2' && break
  sleep 0.1
done
pxconnect
echo "no endpoints at all: refused at once"
pxweb "[]"
for _ in $(seq 100); do
  ip netns exec "$pxnode" nft list map ip kube-dataplane no-endpoint-services 2>/dev/null | grep -q 10.96.0.80 && break
  sleep 0.1
done
pxconnect
proxy_cleanup; pxns=() pxpid="" pxpods=()

step "done"
