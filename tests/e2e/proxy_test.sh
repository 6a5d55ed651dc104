#!/usr/bin/env bash
# The proxy with real TCP and UDP through real nftables, inside namespaces this test creates:
#
#   client (203.0.113.2) ── node1 (203.0.113.1 | 192.168.77.1) ── node2 (192.168.77.2)
#                             ├─ pod1a 10.244.1.11                  └─ pod2a 10.244.2.21
#                             └─ pod1b 10.244.1.12
#
# The proxy runs in node1 only. Shown: ClusterIP spread over every endpoint, named targetPort,
# UDP, NodePort to the other node's endpoint (masqueraded), NodePort with policy Local (source
# kept, other node unused), LB IPs with source ranges, hairpin, terminating fallback, no
# endpoints and a wrong port refused at once, a manifest edit applied, the table flushed by hand
# and restored, a restart under a connection loop.
source "$(dirname "$0")/lib.sh"
py=$(command -v python3)

kdp_netns_vars node1 node2 client pod1a pod1b pod2a

# Links are created inside the namespaces (never in the machine's own).
ip -n "$node1" link add n1n2 type veth peer name n2n1 netns "$node2"
ip -n "$node1" addr add 192.168.77.1/24 dev n1n2; ip -n "$node1" link set n1n2 up
ip -n "$node2" addr add 192.168.77.2/24 dev n2n1; ip -n "$node2" link set n2n1 up
ip -n "$node1" link add n1c type veth peer name eth0 netns "$client"
ip -n "$node1" addr add 203.0.113.1/24 dev n1c; ip -n "$node1" link set n1c up
ip -n "$client" addr add 203.0.113.2/24 dev eth0; ip -n "$client" link set eth0 up
ip -n "$client" route add default via 203.0.113.1
pod_link() {  # pod_link NODE_NS GW POD_NS POD_IP IFNAME
  ip -n "$1" link add "$5" type veth peer name eth0 netns "$3"
  ip -n "$1" addr add "$2/32" dev "$5"; ip -n "$1" link set "$5" up
  ip -n "$1" route add "$4/32" dev "$5"
  ip -n "$3" addr add "$4/32" dev eth0; ip -n "$3" link set eth0 up
  ip -n "$3" route add "$2" dev eth0; ip -n "$3" route add default via "$2"
}
pod_link "$node1" 10.244.1.1 "$pod1a" 10.244.1.11 p1a
pod_link "$node1" 10.244.1.1 "$pod1b" 10.244.1.12 p1b
pod_link "$node2" 10.244.2.1 "$pod2a" 10.244.2.21 p2a
ip -n "$node1" route add 10.244.2.0/24 via 192.168.77.2
ip -n "$node2" route add 10.244.1.0/24 via 192.168.77.1
ip -n "$node2" route add 203.0.113.0/24 via 192.168.77.1
# Nodes have a default route: traffic to a ClusterIP without endpoints is routed, then rejected.
ip -n "$node1" route add default via 192.168.77.2
for ns in "$node1" "$node2"; do nsx "$ns" sysctl -qw net.ipv4.ip_forward=1; done

# Backends: TCP 8080 answers "<pod> <peer ip>", UDP 5353 the same; bounded by timeout.
cat >"$KDP_TMP/server.py" <<'PY'
import socket, sys, threading
name = sys.argv[1]
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 5353))
    while True:
        data, peer = s.recvfrom(512); s.sendto(f"{name} {peer[0]}\n".encode(), peer)
threading.Thread(target=udp, daemon=True).start()
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", 8080)); t.listen(128)
while True:
    c, peer = t.accept(); c.sendall(f"{name} {peer[0]}\n".encode()); c.close()
PY
# Client: N connections (tcp) or queries (udp); one line each: the answer, or ERR <reason> <ms>.
cat >"$KDP_TMP/client.py" <<'PY'
import socket, sys, time
proto, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
delay = float(sys.argv[5]) if len(sys.argv) > 5 else 0
for _ in range(n):
    start = time.monotonic()
    try:
        if proto == "tcp":
            with socket.create_connection((host, port), timeout=2) as s:
                print(s.makefile().readline().strip())
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(2); s.sendto(b"q", (host, port)); print(s.recv(512).decode().strip())
    except Exception as e:
        print(f"ERR {type(e).__name__} {int((time.monotonic() - start) * 1000)} {e}")
    sys.stdout.flush()
    time.sleep(delay)
PY
for p in pod1a pod1b pod2a; do
  kdp_spawn ip netns exec "${!p}" timeout 300 "$py" "$KDP_TMP/server.py" "$p"
done
for p in pod1a pod1b pod2a; do
  kdp_wait_for 10 nsx "${!p}" "$py" "$KDP_TMP/client.py" tcp 127.0.0.1 8080 1 ||
    kdp_fail "server $p not up"
done
tcp() { nsx "$client" "$py" "$KDP_TMP/client.py" tcp "$@"; }
udp() { nsx "$client" "$py" "$KDP_TMP/client.py" udp "$@"; }

mkdir "$KDP_TMP/m"
slice() {  # slice NAME SERVICE PORTNAME PROTO PORT ENDPOINT...  (ENDPOINT = ip@node)
  local name=$1 svc=$2 pname=$3 proto=$4 port=$5; shift 5
  printf -- '---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: %s, namespace: default, labels: {kubernetes.io/service-name: %s}}\naddressType: IPv4\nports: [{name: "%s", protocol: %s, port: %s}]\nendpoints:\n' \
    "$name" "$svc" "$pname" "$proto" "$port"
  for ep in "$@"; do printf -- '- {addresses: [%s], nodeName: %s}\n' "${ep%@*}" "${ep#*@}"; done
}
cat >"$KDP_TMP/m/services.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {clusterIP: 10.96.0.20, ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: default}
spec: {clusterIP: 10.96.0.53, ports: [{name: dns, port: 53, protocol: UDP, targetPort: 5353}]}
---
apiVersion: v1
kind: Service
metadata: {name: np, namespace: default}
spec: {type: NodePort, clusterIP: 10.96.0.30, ports: [{port: 80, targetPort: 8080, nodePort: 30080}]}
---
apiVersion: v1
kind: Service
metadata: {name: nplocal, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.31
  externalTrafficPolicy: Local
  ports: [{port: 80, targetPort: 8080, nodePort: 30081}]
---
apiVersion: v1
kind: Service
metadata: {name: lb-ok, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.32
  loadBalancerSourceRanges: [203.0.113.0/24]
  ports: [{port: 80, targetPort: 8080, nodePort: 30082}]
status: {loadBalancer: {ingress: [{ip: 198.18.0.10}]}}
---
apiVersion: v1
kind: Service
metadata: {name: lb-closed, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.33
  loadBalancerSourceRanges: [10.99.0.0/16]
  ports: [{port: 80, targetPort: 8080, nodePort: 30083}]
status: {loadBalancer: {ingress: [{ip: 198.18.0.11}]}}
---
apiVersion: v1
kind: Service
metadata: {name: hairpin, namespace: default}
spec: {clusterIP: 10.96.0.40, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: term, namespace: default}
spec: {clusterIP: 10.96.0.41, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: default}
spec: {clusterIP: 10.96.0.99, ports: [{port: 80}]}
YAML
web_slice() { slice web-1 web http TCP 8080 "$@" >"$KDP_TMP/m/web.yaml"; }
web_slice 10.244.1.11@node1 10.244.1.12@node1 10.244.2.21@node2
{
  slice dns-1 dns dns UDP 5353 10.244.1.11@node1 10.244.2.21@node2
  slice np-1 np "" TCP 8080 10.244.2.21@node2
  slice nplocal-1 nplocal "" TCP 8080 10.244.1.11@node1 10.244.2.21@node2
  slice lb-ok-1 lb-ok "" TCP 8080 10.244.2.21@node2
  slice lb-closed-1 lb-closed "" TCP 8080 10.244.2.21@node2
  slice hairpin-1 hairpin "" TCP 8080 10.244.1.11@node1
  slice term-1 term "" TCP 8080 10.244.1.11@node1 10.244.1.12@node1
} >"$KDP_TMP/m/slices.yaml"
# term: pod1a not ready, pod1b terminating but serving: the terminating one takes the traffic.
sed -i '/name: term-1/,$ {
  s/- {addresses: \[10.244.1.11\], nodeName: node1}/- {addresses: [10.244.1.11], nodeName: node1, conditions: {ready: false}}/
  s/- {addresses: \[10.244.1.12\], nodeName: node1}/- {addresses: [10.244.1.12], nodeName: node1, conditions: {ready: false, serving: true, terminating: true}}/
}' "$KDP_TMP/m/slices.yaml"

# Metrics on node1's own loopback (a fresh namespace: the port is free).
proxy_args=(proxy --manifests "$KDP_TMP/m" --node-name node1 --node-ip 192.168.77.1
            --cluster-cidr 10.244.0.0/16 --metrics 127.0.0.1:19090)
start_proxy() {
  kdp_spawn ip netns exec "$node1" "$KDP_BIN" "${proxy_args[@]}" 2>>"$KDP_TMP/proxy.log"
  proxy_pid=$!
}
start_proxy
has_rules() { grep -q vmap <<<"$(nsx "$node1" nft list chain ip kube-dataplane services 2>&1)"; }
kdp_wait_for 10 has_rules || kdp_fail "no rules: $(cat "$KDP_TMP/proxy.log")"
metrics() { nsx "$node1" curl -s 127.0.0.1:19090/metrics; }
kdp_wait_for 5 nsx "$node1" curl -sf 127.0.0.1:19090/readyz || kdp_fail "/readyz"
# (grep reads a variable: `curl | grep -q` under pipefail fails when grep exits first.)
grep -q '^kube_dataplane_proxy_elements_by_kind{kind="service-ips"} [1-9]' <<<"$(metrics)" ||
  kdp_fail "elements metric: $(metrics | grep proxy_elements)"
grep -q '^kube_dataplane_proxy_sync_duration_seconds_count{mode="full"} 1$' <<<"$(metrics)" ||
  kdp_fail "sync metric: $(metrics | grep proxy_sync)"

# ClusterIP spreads over all three endpoints (named targetPort resolved to 8080).
out=$(tcp 10.96.0.20 80 60)
for p in pod1a pod1b pod2a; do grep -q "^$p " <<<"$out" || kdp_fail "ClusterIP never reached $p: $out"; done
! grep -q ERR <<<"$out" || kdp_fail "ClusterIP errors: $out"
# From outside --cluster-cidr: masqueraded (the pod sees a node address, not the client).
! grep -q ' 203.0.113.2$' <<<"$out" || kdp_fail "ClusterIP from outside not masqueraded: $out"

# UDP.
out=$(udp 10.96.0.53 53 30)
grep -q '^pod1a ' <<<"$out" && grep -q '^pod2a ' <<<"$out" || kdp_fail "UDP spread: $out"

# NodePort (policy Cluster) to the other node's endpoint: masqueraded so replies come back.
out=$(tcp 192.168.77.1 30080 10)
[ "$(grep -c '^pod2a 192.168.77.1$' <<<"$out")" -eq 10 ] || kdp_fail "NodePort Cluster: $out"

# NodePort with policy Local: only this node's endpoint, client source kept.
out=$(tcp 192.168.77.1 30081 20)
[ "$(grep -c '^pod1a 203.0.113.2$' <<<"$out")" -eq 20 ] || kdp_fail "NodePort Local: $out"

# LB IPs: allowed source range answers; a range that excludes the client drops (times out).
out=$(tcp 198.18.0.10 80 5)
[ "$(grep -c '^pod2a ' <<<"$out")" -eq 5 ] || kdp_fail "LB IP with allowed source: $out"
out=$(tcp 198.18.0.11 80 1)
grep -q '^ERR TimeoutError' <<<"$out" || kdp_fail "LB IP outside source ranges not dropped: $out"

# Hairpin: a pod reaching itself through its Service (masqueraded, or the reply never matches).
out=$(nsx "$pod1a" "$py" "$KDP_TMP/client.py" tcp 10.96.0.40 80 5)
[ "$(grep -c '^pod1a ' <<<"$out")" -eq 5 ] || kdp_fail "hairpin: $out"

# Terminating fallback: no Ready endpoint, so the serving+terminating one answers.
out=$(tcp 10.96.0.41 80 5)
[ "$(grep -c '^pod1b ' <<<"$out")" -eq 5 ] || kdp_fail "terminating fallback: $out"

# No endpoints, and a wrong port of a live ClusterIP: refused at once.
for target in "10.96.0.99 80" "10.96.0.20 81"; do
  out=$(tcp $target 3)
  while read -r err kind ms _; do
    [ "$err" = ERR ] && [ "$kind" = ConnectionRefusedError ] && [ "$ms" -lt 100 ] ||
      kdp_fail "$target: want refused in <100 ms, got: $err $kind $ms"
  done <<<"$out"
done

# An edit: pod1b leaves web's endpoints; no new connection reaches it.
web_slice 10.244.1.11@node1 10.244.2.21@node2
gone() {
  local m; m=$(nsx "$node1" nft list map ip kube-dataplane backends-2) && ! grep -q 10.244.1.12 <<<"$m"
}
kdp_wait_for 10 gone || kdp_fail "edit not applied"
out=$(tcp 10.96.0.20 80 40)
! grep -q '^pod1b ' <<<"$out" || kdp_fail "removed endpoint still used: $out"
grep -q '^pod1a ' <<<"$out" && grep -q '^pod2a ' <<<"$out" || kdp_fail "after edit: $out"

# Someone flushes our table: back within about a second.
nsx "$node1" nft flush table ip kube-dataplane
kdp_wait_for 3 has_rules || kdp_fail "flushed table not restored"
nsx "$node1" nft delete table ip kube-dataplane
kdp_wait_for 3 has_rules || kdp_fail "deleted table not restored"
grep -q '^kube_dataplane_proxy_drift_repairs_total [1-9]' <<<"$(metrics)" || kdp_fail "drift repairs not counted"
out=$(tcp 10.96.0.20 80 5)
! grep -q ERR <<<"$out" || kdp_fail "after restore: $out"

# Restart under a connection loop: the rules stay in force; no connection fails.
tcp 10.96.0.20 80 100 0.02 >"$KDP_TMP/loop.txt" &
loop=$!
sleep 0.5
kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true
start_proxy
wait "$loop"
[ "$(wc -l <"$KDP_TMP/loop.txt")" -eq 100 ] || kdp_fail "loop incomplete"
! grep -q ERR "$KDP_TMP/loop.txt" || kdp_fail "connections failed across a restart: $(grep ERR "$KDP_TMP/loop.txt" | head -3)"
kdp_wait_for 10 has_rules || kdp_fail "no rules after restart"
echo "PASS proxy"
