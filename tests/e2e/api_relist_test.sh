#!/usr/bin/env bash
# The API source against a real kube-apiserver with the watch cache off (every LIST and WATCH
# goes to etcd), so that etcd compaction makes an old resourceVersion answer 410 Expired:
# - paging: 5,000 Services are listed in pages of 500 (limit/continue);
# - a forced 410 (compact etcd past our resourceVersion, cut the watch): the source relists and
#   the store sees no change at all (no delete+add of unchanged objects), then watches again.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/apiserver.sh"

kdp_apiserver_start --watch-cache=false

# 5,000 headless Services (no cluster IPs to allocate), created in one kubectl call.
python3 - > "$KDP_TMP/bulk.json" <<'PY'
import json
items = [{"apiVersion": "v1", "kind": "Service",
          "metadata": {"name": f"svc-{i}", "namespace": "bulk"},
          "spec": {"clusterIP": "None", "ports": [{"port": 80}]}} for i in range(5000)]
print(json.dumps({"apiVersion": "v1", "kind": "List",
                  "items": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bulk"}}] + items}))
PY
kdp_kubectl create -f "$KDP_TMP/bulk.json" >/dev/null
want=$(kdp_kubectl get services -A --no-headers | wc -l)
[ "$want" -ge 5001 ] || kdp_fail "only $want Services created"

metrics_port=$(kdp_free_port)
url="http://127.0.0.1:$metrics_port"
kdp_spawn "$KDP_BIN" run --kubeconfig "$KDP_KUBECONFIG_TOKEN" --metrics "127.0.0.1:$metrics_port" \
  --log-level debug 2>"$KDP_TMP/kdp.log"
kdp_wait_for 60 curl -sf "$url/readyz" || kdp_fail "not ready: $(tail -5 "$KDP_TMP/kdp.log")"
metric() { curl -s "$url/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
# For kdp_wait_for: the metric is read again on every try (a "$(metric …)" argument would not be).
metric_at_least() { [ "$(metric "$1")" -ge "$2" ]; }
metric_is() { [ "$(metric "$1")" = "$2" ]; }
[ "$(metric 'kube_dataplane_store_objects{kind="Service"}')" = "$want" ] ||
  kdp_fail "store has $(metric 'kube_dataplane_store_objects{kind="Service"}') Services, the API $want"
pages=$(grep -c 'list page kind=Service items=' "$KDP_TMP/kdp.log" || true)
[ "$pages" -eq $(((want + 499) / 500)) ] || kdp_fail "$want Services in $pages pages, want pages of 500"

# --- forced 410 -------------------------------------------------------------------------------
batches=$(metric kube_dataplane_store_batches_total)
[ "$(metric kube_dataplane_api_relists_total)" = 0 ] || kdp_fail "relisted before the test"
# etcd's revision moves past ours through a kind we do not watch, then is compacted: our
# resourceVersion is gone. Cutting the watch makes the source resume from it.
for i in 1 2 3; do kdp_kubectl -n default create configmap "bump-$i" >/dev/null; done
kdp_etcd_compact >/dev/null
kdp_apiserver_restart KILL
kdp_wait_for 60 metric_at_least kube_dataplane_api_relists_total 1 ||
  kdp_fail "no relist after 410: $(grep -i 'relist\|410\|fail' "$KDP_TMP/kdp.log" | tail -5)"
grep -q 'relisting kind=.*Expired' "$KDP_TMP/kdp.log" || kdp_fail "the relist was not for 410 Expired"
# Every kind relisted (all resumed from compacted versions); the store saw no change at all.
kdp_wait_for 60 metric_at_least kube_dataplane_api_relists_total 6 ||
  kdp_fail "$(metric kube_dataplane_api_relists_total) relists, want one per kind"
[ "$(metric kube_dataplane_store_batches_total)" = "$batches" ] ||
  kdp_fail "relist changed the store: batches $batches -> $(metric kube_dataplane_store_batches_total)"
# And it watches again.
kdp_kubectl -n bulk delete service svc-17 >/dev/null
kdp_wait_for 10 metric_is 'kube_dataplane_store_objects{kind="Service"}' $((want - 1)) ||
  kdp_fail "no watch after the relist"
[ "$(metric kube_dataplane_store_batches_total)" = $((batches + 1)) ] || kdp_fail "one delete, one batch"
echo "PASS api_relist"
