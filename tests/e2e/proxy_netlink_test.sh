#!/usr/bin/env bash
# What `proxy --once` writes over netlink (libnftnl, no nft binary) is the ruleset that `nft -f`
# makes of `proxy --dry-run`'s text: dual-stack, every kind of set, map and rule. Compared as
# `nft list ruleset` output inside namespaces this test creates, up to what only the listing
# differs in (declared sizes, typeof vs type for the backends and affinity maps).
source "$(dirname "$0")/lib.sh"
mkdir "$KDP_TMP/m"
cat >"$KDP_TMP/m/dual.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.50
  clusterIPs: [10.96.0.50, "fd00:96::50"]
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: RequireDualStack
  externalIPs: [198.18.0.5]
  sessionAffinity: ClientIP
  externalTrafficPolicy: Local
  loadBalancerSourceRanges: [198.51.100.0/24, "2001:db8:1::/48"]
  ports: [{name: h, port: 443, targetPort: 8443, nodePort: 30443}, {name: q, port: 53, protocol: UDP, nodePort: 30053}]
status:
  loadBalancer:
    ingress: [{ip: 203.0.113.10}, {ip: "2001:db8:2::10"}]
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: default}
spec: {clusterIP: 10.96.0.51, ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: lb-4, namespace: default, labels: {kubernetes.io/service-name: lb}}
addressType: IPv4
ports: [{name: h, protocol: TCP, port: 8443}]
endpoints:
- {addresses: [10.244.1.11], nodeName: node-a}
- {addresses: [10.244.2.11], nodeName: node-b}
- {addresses: [10.244.2.12], nodeName: node-b}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: lb-6, namespace: default, labels: {kubernetes.io/service-name: lb}}
addressType: IPv6
ports: [{name: h, protocol: TCP, port: 8443}, {name: q, protocol: UDP, port: 5353}]
endpoints:
- {addresses: ["fd00:244::11"], nodeName: node-a}
- {addresses: ["fd00:244::12"], nodeName: node-a}
YAML
args=(proxy --manifests "$KDP_TMP/m" --node-name node-a --node-ip 192.0.2.10,2001:db8::10
      --cluster-cidr 10.244.0.0/16,fd00:244::/48 --service-cidr 10.96.0.0/16,fd00:96::/112)
kdp_netns once >/dev/null; once=${KDP_NETNS[-1]}
kdp_netns text >/dev/null; text=${KDP_NETNS[-1]}

ip netns exec "$once" "$KDP_BIN" "${args[@]}" --once 2>"$KDP_TMP/err" || kdp_fail "--once: $(cat "$KDP_TMP/err")"
"$KDP_BIN" "${args[@]}" --dry-run >"$KDP_TMP/rules.nft" 2>/dev/null
ip netns exec "$text" nft -f "$KDP_TMP/rules.nft" || kdp_fail "nft -f refused the dry-run text"
normalize() {
  sed -E -e '/^\s*size [0-9]+$/d' \
    -e 's/^(\s*)(typeof numgen random mod 1 : ct mark|type mark : mark)$/\1AFFINITY-KEY : ct mark/' \
    -e 's/^(\s*)typeof (ip6?) daddr \. meta l4proto \. th dport \. numgen random mod 1 : (ip6?) daddr \. th dport$/\1BACKENDS \2/' \
    -e 's/^(\s*)type ipv4_addr \. inet_proto \. inet_service \. mark : ipv4_addr \. inet_service$/\1BACKENDS ip/' \
    -e 's/^(\s*)type ipv6_addr \. inet_proto \. inet_service \. mark : ipv6_addr \. inet_service$/\1BACKENDS ip6/' \
    -e 's/ \. 0x0000000([0-9]) : / . \1 : /g'
}
ip netns exec "$once" nft list ruleset | normalize >"$KDP_TMP/once.txt"
ip netns exec "$text" nft list ruleset | normalize >"$KDP_TMP/text.txt"
diff -u "$KDP_TMP/text.txt" "$KDP_TMP/once.txt" || kdp_fail "netlink ruleset differs from nft -f of the dry-run text"
grep -q 'table ip6 kube-dataplane' "$KDP_TMP/once.txt" || kdp_fail "no ip6 table"
grep -q 'update @affinity-2 { jhash ip6 saddr . ip6 daddr . meta l4proto . th dport mod 4294967295 seed 0x1 timeout 3h : ct mark }' "$KDP_TMP/once.txt" || kdp_fail "no ip6 affinity chain"
grep -q "ip6 daddr fd00:96::/112 drop" "$KDP_TMP/once.txt" || kdp_fail "no service CIDR drop"

# --cleanup removes both tables and leaves others alone.
ip netns exec "$once" nft add table ip other
ip netns exec "$once" "$KDP_BIN" proxy --cleanup || kdp_fail "--cleanup"
tables=$(ip netns exec "$once" nft list tables)
[ "$tables" = "table ip other" ] || kdp_fail "after --cleanup: $tables"
ip netns exec "$once" "$KDP_BIN" proxy --cleanup || kdp_fail "--cleanup without tables"
echo "PASS proxy_netlink"
