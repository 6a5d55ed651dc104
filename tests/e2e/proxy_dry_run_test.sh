#!/usr/bin/env bash
# `proxy --dry-run` on the examples: nft text that `nft -c -f` accepts (checked inside a network
# namespace this test creates), the Services' destinations in it, and the one-shot modes'
# command-line contract.
source "$(dirname "$0")/lib.sh"
examples=$(cd "$(dirname "$0")/../../examples" && pwd)
args=(proxy --manifests "$examples" --node-name node-a --node-ip 192.0.2.10,2001:db8::10
      --cluster-cidr 10.244.0.0/16)

"$KDP_BIN" "${args[@]}" --dry-run >"$KDP_TMP/rules.nft" 2>"$KDP_TMP/err" ||
  kdp_fail "dry-run exited $?: $(cat "$KDP_TMP/err")"
out=$(cat "$KDP_TMP/rules.nft")
grep -q '^table ip kube-dataplane {' <<<"$out" || kdp_fail "no ip table"
grep -q '^table ip6 kube-dataplane {' <<<"$out" || kdp_fail "no ip6 table"
grep -q '10.96.0.20 . tcp . 443 : goto endpoints-2' <<<"$out" || kdp_fail "web https"
grep -q '10.96.0.20 . tcp . 443 . 1 : 10.244.2.12 . 8443' <<<"$out" || kdp_fail "named targetPort"
grep -q '192.0.2.10 . tcp . 30080 : goto endpoints-2' <<<"$out" || kdp_fail "NodePort"
grep -q '203.0.113.10 . tcp . 443 . 198.51.100.0/24' <<<"$out" || kdp_fail "LB source range"
grep -q '10.96.0.21 . tcp . 9090 : goto endpoints-affinity-2-10800' <<<"$out" || kdp_fail "affinity"
! grep -q '10.96.0.24\|data/db' <<<"$out" || kdp_fail "headless Service programmed"

kdp_netns dryrun >/dev/null; ns=${KDP_NETNS[-1]}  # not in $(...): registered for cleanup
ip netns exec "$ns" nft -c -f "$KDP_TMP/rules.nft" || kdp_fail "nft -c refused the dry-run output"
# Loaded for real (into the test's namespace only) it is the same as applied over netlink.
ip netns exec "$ns" nft -f "$KDP_TMP/rules.nft" || kdp_fail "nft -f refused the dry-run output"
ip netns exec "$ns" nft list table ip kube-dataplane >/dev/null || kdp_fail "table not loaded"

# Nothing was touched by --dry-run: it needs no privileges and no namespace.
set +e; "$KDP_BIN" proxy --manifests "$examples" --node-name node-a --dry-run 2>"$KDP_TMP/err"; rc=$?; set -e
[ "$rc" -eq 2 ] && grep -q -- '--node-ip' "$KDP_TMP/err" || kdp_fail "missing --node-ip: rc=$rc"
set +e; "$KDP_BIN" proxy --manifests /nonexistent --node-name n --node-ip 192.0.2.1 --dry-run 2>"$KDP_TMP/err"; rc=$?; set -e
[ "$rc" -eq 1 ] && [ "$(wc -l <"$KDP_TMP/err")" -eq 1 ] || kdp_fail "missing dir: rc=$rc $(cat "$KDP_TMP/err")"
echo "PASS proxy_dry_run"
