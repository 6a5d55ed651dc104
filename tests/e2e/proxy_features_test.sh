#!/usr/bin/env bash
# Proxy features through real nftables and real packets, in namespaces this test creates:
#
#   client 203.0.113.2 ── node1 203.0.113.1 | 192.168.77.1 ── node2 192.168.77.2
#          fd03::2            fd03::1       | fd77::1            fd77::2
#                             ├─ pod1a 10.244.1.11, fd44:1::11     └─ pod2a 10.244.2.21
#                             └─ pod1b 10.244.1.12
#
# A proxy runs in each node (node1 in zone-a, node2 in zone-b). Shown: stale UDP conntrack
# entries deleted when an endpoint goes away (the client's next datagrams reach the new one);
# healthCheckNodePort 200 on the node with a local endpoint and 503 on the other, closed when the
# Service goes; /healthz; sessionAffinity ClientIP sticks, then expires; IPv6 ClusterIP;
# topology hints; --nodeport-addresses; `proxy explain`.
source "$(dirname "$0")/lib.sh"
py=$(command -v python3)
command -v conntrack >/dev/null || kdp_fail "conntrack (Debian package conntrack) is not installed"

kdp_netns_vars node1 node2 client pod1a pod1b pod2a

ip -n "$node1" link add n1n2 type veth peer name n2n1 netns "$node2"
ip -n "$node1" addr add 192.168.77.1/24 dev n1n2; ip -n "$node1" addr add fd77::1/64 dev n1n2 nodad
ip -n "$node2" addr add 192.168.77.2/24 dev n2n1; ip -n "$node2" addr add fd77::2/64 dev n2n1 nodad
ip -n "$node1" link set n1n2 up; ip -n "$node2" link set n2n1 up
ip -n "$node1" link add n1c type veth peer name eth0 netns "$client"
ip -n "$node1" addr add 203.0.113.1/24 dev n1c; ip -n "$node1" addr add fd03::1/64 dev n1c nodad
ip -n "$client" addr add 203.0.113.2/24 dev eth0; ip -n "$client" addr add fd03::2/64 dev eth0 nodad
ip -n "$node1" link set n1c up; ip -n "$client" link set eth0 up
ip -n "$client" route add default via 203.0.113.1; ip -n "$client" -6 route add default via fd03::1
pod_link() {  # pod_link NODE_NS GW POD_NS POD_IP IFNAME [GW6 POD_IP6]
  ip -n "$1" link add "$5" type veth peer name eth0 netns "$3"
  ip -n "$1" addr add "$2/32" dev "$5"; ip -n "$1" link set "$5" up
  ip -n "$1" route add "$4/32" dev "$5"
  ip -n "$3" addr add "$4/32" dev eth0; ip -n "$3" link set eth0 up
  ip -n "$3" route add "$2" dev eth0; ip -n "$3" route add default via "$2"
  if [ $# -gt 5 ]; then
    ip -n "$1" addr add "$6/128" dev "$5" nodad; ip -n "$1" -6 route add "$7/128" dev "$5"
    ip -n "$3" addr add "$7/128" dev eth0 nodad
    ip -n "$3" -6 route add "$6" dev eth0; ip -n "$3" -6 route add default via "$6"
  fi
}
pod_link "$node1" 10.244.1.1 "$pod1a" 10.244.1.11 p1a fd44:1::1 fd44:1::11
pod_link "$node1" 10.244.1.1 "$pod1b" 10.244.1.12 p1b
pod_link "$node2" 10.244.2.1 "$pod2a" 10.244.2.21 p2a
ip -n "$node1" route add 10.244.2.0/24 via 192.168.77.2
ip -n "$node2" route add 10.244.1.0/24 via 192.168.77.1
ip -n "$node2" route add 203.0.113.0/24 via 192.168.77.1
ip -n "$node1" route add default via 192.168.77.2
for ns in "$node1" "$node2"; do
  nsx "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
done

# Backends: TCP 8080 (IPv4 and IPv6) and UDP 5353 answer "<pod> <peer ip>".
cat >"$KDP_TMP/server.py" <<'PY'
import socket, sys, threading
name = sys.argv[1]
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 5353))
    while True:
        data, peer = s.recvfrom(512); s.sendto(f"{name} {peer[0]}\n".encode(), peer)
threading.Thread(target=udp, daemon=True).start()
t = socket.socket(socket.AF_INET6); t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(("::", 8080)); t.listen(128)
while True:
    c, peer = t.accept(); c.sendall(f"{name} {peer[0].removeprefix('::ffff:')}\n".encode()); c.close()
PY
# N TCP connections: one line each, the answer or ERR.
cat >"$KDP_TMP/tcp.py" <<'PY'
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for _ in range(n):
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            print(s.makefile().readline().strip())
    except Exception as e:
        print(f"ERR {type(e).__name__} {e}")
PY
# UDP from one fixed source port (as a resolver does), N datagrams DELAY apart: the answer or ERR.
cat >"$KDP_TMP/udp_loop.py" <<'PY'
import socket, sys, time
host, port, sport, n, delay = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", sport)); s.settimeout(0.5)
for _ in range(n):
    try:
        s.sendto(b"q", (host, port)); print(s.recv(512).decode().strip(), flush=True)
    except Exception as e:
        print(f"ERR {type(e).__name__}", flush=True)
    time.sleep(delay)
PY
for p in pod1a pod1b pod2a; do
  kdp_spawn ip netns exec "${!p}" timeout 300 "$py" "$KDP_TMP/server.py" "$p"
done
for p in pod1a pod1b pod2a; do
  kdp_wait_for 10 nsx "${!p}" "$py" "$KDP_TMP/tcp.py" 127.0.0.1 8080 1 || kdp_fail "server $p not up"
done
tcp() { nsx "$client" "$py" "$KDP_TMP/tcp.py" "$@"; }

mkdir "$KDP_TMP/m"
slice() {  # slice NAME SERVICE PROTO PORT ENDPOINT...  (ENDPOINT = ip@node[@zone-hint])
  local name=$1 svc=$2 proto=$3 port=$4 ep hint; shift 4
  printf -- '---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: %s, namespace: default, labels: {kubernetes.io/service-name: %s}}\naddressType: IPv4\nports: [{name: "", protocol: %s, port: %s}]\nendpoints:\n' \
    "$name" "$svc" "$proto" "$port"
  for ep in "$@"; do
    IFS=@ read -r ip node hint <<<"$ep"
    [ -z "$hint" ] || hint=", hints: {forZones: [{name: $hint}]}"
    printf -- '- {addresses: [%s], nodeName: %s%s}\n' "$ip" "$node" "$hint"
  done
}
cat >"$KDP_TMP/m/nodes.yaml" <<'YAML'
apiVersion: v1
kind: Node
metadata: {name: node1, labels: {topology.kubernetes.io/zone: zone-a}}
---
apiVersion: v1
kind: Node
metadata: {name: node2, labels: {topology.kubernetes.io/zone: zone-b}}
YAML
cat >"$KDP_TMP/m/dns-service.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: default}
spec: {clusterIP: 10.96.0.53, ports: [{port: 53, protocol: UDP, targetPort: 5353}]}
YAML
cat >"$KDP_TMP/m/services.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: sticky, namespace: default}
spec:
  clusterIP: 10.96.0.60
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 2}}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web6, namespace: default}
spec:
  clusterIP: fd00:96::20
  clusterIPs: ["fd00:96::20"]
  ipFamilies: [IPv6]
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: zoned, namespace: default}
spec: {clusterIP: 10.96.0.70, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web6-1, namespace: default, labels: {kubernetes.io/service-name: web6}}
addressType: IPv6
ports: [{name: "", protocol: TCP, port: 8080}]
endpoints: [{addresses: ["fd44:1::11"], nodeName: node1}]
YAML
cat >"$KDP_TMP/m/lblocal.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: lblocal, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.80
  externalTrafficPolicy: Local
  healthCheckNodePort: 32100
  ports: [{port: 80, targetPort: 8080, nodePort: 30090}]
status: {loadBalancer: {ingress: [{ip: 198.18.0.80}]}}
YAML
dns_slice() { slice dns-1 dns UDP 5353 "$@" >"$KDP_TMP/m/dns.yaml"; }
dns_slice 10.244.1.11@node1
{
  slice sticky-1 sticky TCP 8080 10.244.1.11@node1 10.244.1.12@node1 10.244.2.21@node2
  slice zoned-1 zoned TCP 8080 10.244.1.11@node1@zone-a 10.244.2.21@node2@zone-b
  slice lblocal-1 lblocal TCP 8080 10.244.1.11@node1
} >"$KDP_TMP/m/slices.yaml"

common=(--manifests "$KDP_TMP/m" --cluster-cidr 10.244.0.0/16,fd44::/32)
kdp_spawn ip netns exec "$node1" "$KDP_BIN" proxy "${common[@]}" --node-name node1 \
  --node-ip 192.168.77.1,fd77::1 --metrics 127.0.0.1:19090 --healthz 127.0.0.1:10256 \
  2>>"$KDP_TMP/proxy1.log"
kdp_spawn ip netns exec "$node2" "$KDP_BIN" proxy "${common[@]}" --node-name node2 \
  --node-ip 192.168.77.2 2>>"$KDP_TMP/proxy2.log"
for ns in "$node1" "$node2"; do
  kdp_wait_for 10 nsx "$ns" nft list map ip kube-dataplane service-ips ||
    kdp_fail "no rules: $(cat "$KDP_TMP"/proxy*.log)"
done
kdp_wait_for 10 nsx "$node1" curl -sf 127.0.0.1:19090/readyz || kdp_fail "/readyz"

# --- Stale UDP conntrack entries -------------------------------------------------------------
# A resolver-like client sends from one source port every 50 ms; its flow is DNATed to pod1a.
# (ip netns exec execs python: $! is the client itself, so that kill stops it.)
kdp_spawn ip netns exec "$client" "$py" "$KDP_TMP/udp_loop.py" 10.96.0.53 53 40053 400 0.05 >"$KDP_TMP/udp.txt"
udp_loop=$!
kdp_wait_for 10 grep -q '^pod1a ' "$KDP_TMP/udp.txt" || kdp_fail "UDP never reached pod1a: $(cat "$KDP_TMP/udp.txt")"
entries() { nsx "$node1" conntrack -L -p udp --orig-dst 10.96.0.53 2>/dev/null; }
grep -q 'src=10.244.1.11 ' <<<"$(entries)" || kdp_fail "no conntrack entry to pod1a: $(entries)"
# The endpoint moves to pod2a. pod1a still answers: only deleting the entry moves the flow.
dns_slice 10.244.2.21@node2
last_is_pod2a() { [ "$(tail -n 1 "$KDP_TMP/udp.txt" | cut -d' ' -f1)" = pod2a ]; }
kdp_wait_for 10 last_is_pod2a || kdp_fail "UDP flow stuck: $(tail -n 5 "$KDP_TMP/udp.txt"); $(entries)"
! grep -q 'src=10.244.1.11 ' <<<"$(entries)" || kdp_fail "stale entry left: $(entries)"
grep -q 'src=10.244.2.21 ' <<<"$(entries)" || kdp_fail "no entry to pod2a: $(entries)"
grep -q '^kube_dataplane_proxy_conntrack_entries_deleted_total [1-9]' <<<"$(nsx "$node1" curl -s 127.0.0.1:19090/metrics)" ||
  kdp_fail "deletions not counted"
kill "$udp_loop" 2>/dev/null || true; wait "$udp_loop" 2>/dev/null || true
# The Service goes: its UDP entries go too.
nsx "$client" "$py" "$KDP_TMP/udp_loop.py" 10.96.0.53 53 40054 1 0 >/dev/null
grep -q 'sport=40054' <<<"$(entries)" || kdp_fail "no entry for the second flow: $(entries)"
rm "$KDP_TMP/m/dns-service.yaml"
no_entries() { [ -z "$(entries)" ]; }
kdp_wait_for 10 no_entries || kdp_fail "entries of a deleted Service left: $(entries)"
echo "ok: stale UDP conntrack entries"

# --- healthCheckNodePort and /healthz --------------------------------------------------------
hc() {  # hc ADDR -> "<status> <body>" from the client
  nsx "$client" curl -s -m 3 -D "$KDP_TMP/hc-headers" -w ' %{http_code}' "http://$1:32100/"
}
kdp_wait_for 10 nsx "$client" curl -s -m 1 -o /dev/null http://192.168.77.1:32100/ || kdp_fail "no health check on node1"
out=$(hc 192.168.77.1)
want=$(printf '{\n\t"service": {\n\t\t"namespace": "default",\n\t\t"name": "lblocal"\n\t},\n\t"localEndpoints": 1,\n\t"serviceProxyHealthy": true\n} 200')
[ "$out" = "$want" ] || kdp_fail "node1 health check: $out"
grep -qi '^X-Content-Type-Options: nosniff' "$KDP_TMP/hc-headers" || kdp_fail "no nosniff header: $(cat "$KDP_TMP/hc-headers")"
grep -qi '^Content-Type: application/json' "$KDP_TMP/hc-headers" || kdp_fail "content type"
kdp_wait_for 10 nsx "$client" curl -s -m 1 -o /dev/null http://192.168.77.2:32100/ || kdp_fail "no health check on node2"
out=$(hc 192.168.77.2)
[[ "$out" == *'"localEndpoints": 0,'*' 503' ]] || kdp_fail "node2 health check: $out"
# Policy Local through the node with the endpoint: the client's address is kept.
out=$(tcp 192.168.77.1 30090 3)
[ "$(grep -c '^pod1a 203.0.113.2$' <<<"$out")" -eq 3 ] || kdp_fail "NodePort Local: $out"
# /healthz as kube-proxy's.
out=$(nsx "$node1" curl -s -w ' %{http_code}' 127.0.0.1:10256/healthz)
[[ "$out" =~ ^\{\"lastUpdated\":\"[0-9T:.-]+Z\",\"currentTime\":\"[0-9T:.-]+Z\",\"healthy\":true\}\ 200$ ]] ||
  kdp_fail "/healthz: $out"
# The Service goes away: its health check port closes on both nodes.
rm "$KDP_TMP/m/lblocal.yaml"
closed() { ! nsx "$client" curl -s -m 1 -o /dev/null "http://$1:32100/"; }
kdp_wait_for 10 closed 192.168.77.1 || kdp_fail "node1 health check still open"
kdp_wait_for 10 closed 192.168.77.2 || kdp_fail "node2 health check still open"
echo "ok: health checks"

# --- sessionAffinity ClientIP (timeoutSeconds: 2) --------------------------------------------
out=$(tcp 10.96.0.60 80 15)
first=$(head -n 1 <<<"$out" | cut -d' ' -f1)
[[ "$first" == pod* ]] || kdp_fail "affinity: $out"
[ "$(grep -c "^$first " <<<"$out")" -eq 15 ] || kdp_fail "affinity did not stick: $out"
# The client's entry (a hash of client . destination) in affinity-3; alone there in this test.
affinity_map() { nsx "$node1" nft list map ip kube-dataplane affinity-3; }
remembered() { grep -q ' expires ' <<<"$(affinity_map)"; }
forgotten() { ! remembered; }
remembered || kdp_fail "no affinity entry: $(affinity_map)"
# After the timeout the entry expires and the next connection is balanced anew: wait for the
# expiry each time, at most 12 times, until another endpoint answers (odds of failing: 3^-12).
other=""
for _ in $(seq 12); do
  kdp_wait_for 10 forgotten || kdp_fail "affinity entry never expired: $(affinity_map)"
  pod=$(tcp 10.96.0.60 80 1 | cut -d' ' -f1)
  [[ "$pod" == pod* ]] || kdp_fail "affinity after expiry: $pod"
  if [ "$pod" != "$first" ]; then other=$pod; break; fi
done
[ -n "$other" ] || kdp_fail "affinity never expired to another endpoint (always $first)"
out=$(tcp 10.96.0.60 80 5)
[ "$(grep -c "^$other " <<<"$out")" -eq 5 ] || kdp_fail "new affinity did not stick (want $other): $out; $(affinity_map)"
echo "ok: session affinity ($first, then $other)"

# --- IPv6 ClusterIP, topology hints ------------------------------------------------------------
out=$(tcp fd00:96::20 80 5)
[ "$(grep -c '^pod1a ' <<<"$out")" -eq 5 ] || kdp_fail "IPv6 ClusterIP: $out"
out=$(tcp 10.96.0.70 80 30)
[ "$(grep -c '^pod1a ' <<<"$out")" -eq 30 ] || kdp_fail "topology hints (zone-a only): $out"
echo "ok: IPv6 ClusterIP, topology hints"

# --- --nodeport-addresses: node1's interface addresses inside the ranges, never loopback ------
cat >"$KDP_TMP/m/np.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: np, namespace: default}
spec: {type: NodePort, clusterIP: 10.96.0.90, ports: [{port: 80, targetPort: 8080, nodePort: 30091}]}
YAML
slice np-1 np TCP 8080 10.244.1.12@node1 >>"$KDP_TMP/m/np.yaml"
out=$(nsx "$node1" "$KDP_BIN" proxy "${common[@]}" --node-name node1 --node-ip 192.168.77.1 \
  --nodeport-addresses 203.0.113.0/24,127.0.0.0/8 --dry-run)
grep -q '203.0.113.1 . tcp . 30091 : goto endpoints-1' <<<"$out" || kdp_fail "NodePort not on 203.0.113.1"
! grep -q '192.168.77.1 . tcp . 30091\|127.0.0.1 . tcp . 30091' <<<"$out" || kdp_fail "NodePort outside --nodeport-addresses"
echo "ok: --nodeport-addresses"

# --- proxy explain -----------------------------------------------------------------------------
out=$("$KDP_BIN" proxy explain "${common[@]}" --node-name node1 --node-ip 192.168.77.1 \
  --src 203.0.113.2 --dst 10.96.0.60:80)
grep -q 'sessionAffinity ClientIP (timeout 2s)' <<<"$out" || kdp_fail "explain: $out"
grep -q 'slot 2: 10.244.2.21:8080' <<<"$out" || kdp_fail "explain endpoints: $out"
grep -q '=> DNAT, masqueraded' <<<"$out" || kdp_fail "explain outcome: $out"
echo "PASS proxy_features"
