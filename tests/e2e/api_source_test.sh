#!/usr/bin/env bash
# The Kubernetes API source against a real kube-apiserver v1.20.2 + etcd (tests/e2e/apiserver.sh),
# observed through the dns component's answers (dig) and /metrics:
# - refused configurations: a wrong CA (one line naming the server and the verify reason), no
#   source outside a pod (exit 2);
# - TLS with a bearer token, a token file, a client certificate (files), with deploy/rbac.yaml's
#   rights only;
# - objects created, changed and deleted through the API reach the store in the API's order;
# - a watch cut by killing the apiserver resumes: nothing lost, no spurious store change.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/apiserver.sh"
command -v dig >/dev/null || kdp_fail "dig missing (scripts/packages/dns.txt: bind9-dnsutils)"

kdp_apiserver_start

# --- refused configurations ----------------------------------------------------------------
set +e
err=$("$KDP_BIN" run --kubeconfig "$KDP_KUBECONFIG_WRONG_CA" 2>&1 >/dev/null); rc=$?
set -e
[ "$rc" -eq 1 ] || kdp_fail "wrong CA: exit $rc, want 1: $err"
[ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || kdp_fail "wrong CA: more than one line: $err"
grep -q "$KDP_API_SERVER: TLS certificate verify failed: " <<<"$err" ||
  kdp_fail "wrong CA: message does not name the server and the reason: $err"
set +e
err=$(env -u KUBERNETES_SERVICE_HOST "$KDP_BIN" run 2>&1 >/dev/null); rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q "^kube-dataplane: no source: give --manifests DIR or --kubeconfig FILE" <<<"$err" ||
  kdp_fail "no source outside a pod: exit $rc: $err"

# --- objects before the start ---------------------------------------------------------------
kdp_kubectl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {clusterIP: 10.96.0.20, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: pods, namespace: shop}
spec: {clusterIP: None, ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1beta1
kind: EndpointSlice
metadata: {name: pods-1, namespace: shop, labels: {kubernetes.io/service-name: pods}}
addressType: IPv4
ports: [{name: http, protocol: TCP, port: 80}]
endpoints:
- addresses: [10.244.0.1]
  conditions: {ready: true}
  topology: {kubernetes.io/hostname: node-a}
YAML

dns_port=$(kdp_free_port)
start_dns() {  # start_dns KUBECONFIG NAME: a dns component on the API; sets $metrics_url
  local metrics_port
  metrics_port=$(kdp_free_port)
  metrics_url="http://127.0.0.1:$metrics_port"
  kdp_spawn "$KDP_BIN" dns --kubeconfig "$1" --listen "127.0.0.1:$dns_port" \
    --metrics "127.0.0.1:$metrics_port" --upstream 127.0.0.1:9 2>"$KDP_TMP/$2.log"
  dns_pid=$!
  kdp_wait_for 30 curl -sf "$metrics_url/readyz" || kdp_fail "$2: not ready: $(tail -5 "$KDP_TMP/$2.log")"
}
stop_dns() { kill "$dns_pid"; wait "$dns_pid" 2>/dev/null || true; }
answer() { dig +short +time=1 +tries=2 @127.0.0.1 -p "$dns_port" "$1" "${2:-A}" | sort | tr '\n' ' ' | sed 's/ $//'; }
answer_is() { [ "$(answer "$1" "${3:-A}")" = "$2" ]; }
metric() { curl -s "$metrics_url/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

# --- each credential kind, with deploy/rbac.yaml's rights ---------------------------------------
for cfg in KDP_KUBECONFIG_CERT KDP_KUBECONFIG_TOKEN_FILE KDP_KUBECONFIG_TOKEN; do
  start_dns "${!cfg}" "$cfg"
  answer_is web.shop.svc.cluster.local 10.96.0.20 || kdp_fail "$cfg: web: '$(answer web.shop.svc.cluster.local)'"
  answer_is pods.shop.svc.cluster.local 10.244.0.1 || kdp_fail "$cfg: headless: '$(answer pods.shop.svc.cluster.local)'"
  [ "$cfg" = KDP_KUBECONFIG_TOKEN ] || stop_dns
done
# The token run stays up for the rest.

# --- created, changed, deleted, in the API's order -------------------------------------------
kdp_kubectl -n shop create service clusterip api --tcp=80:8080 --clusterip=10.96.0.21 >/dev/null
kdp_wait_for 10 answer_is api.shop.svc.cluster.local 10.96.0.21 || kdp_fail "created Service not answered"
kdp_kubectl -n shop patch endpointslice pods-1 --type=json \
  -p '[{"op":"replace","path":"/endpoints/0/addresses/0","value":"10.244.0.2"}]' >/dev/null
kdp_wait_for 10 answer_is pods.shop.svc.cluster.local 10.244.0.2 || kdp_fail "changed slice not answered"
kdp_kubectl -n shop delete service api >/dev/null
kdp_wait_for 10 answer_is api.shop.svc.cluster.local "" || kdp_fail "deleted Service still answered"
# A burst: the last write wins, whatever the batching.
for ip in 10.244.0.3 10.244.0.4 10.244.0.5 10.244.0.6; do
  kdp_kubectl -n shop patch endpointslice pods-1 --type=json \
    -p "[{\"op\":\"replace\",\"path\":\"/endpoints/0/addresses/0\",\"value\":\"$ip\"}]" >/dev/null
done
kdp_kubectl -n shop create service clusterip api --tcp=80:8080 --clusterip=10.96.0.22 >/dev/null
kdp_wait_for 10 answer_is api.shop.svc.cluster.local 10.96.0.22 || kdp_fail "re-created Service"
answer_is pods.shop.svc.cluster.local 10.244.0.6 || kdp_fail "burst: '$(answer pods.shop.svc.cluster.local)', want the last write"

# --- a watch cut mid-stream ---------------------------------------------------------------------
services() { metric 'kube_dataplane_store_objects{kind="Service"}'; }
api_services=$(kdp_kubectl get services -A --no-headers | wc -l)
services_are() { [ "$(services)" = "$1" ]; }  # read again on every try of kdp_wait_for
kdp_wait_for 10 services_are "$api_services" || kdp_fail "store has $(services) Services, the API $api_services"
batches=$(metric kube_dataplane_store_batches_total)
retries=$(metric kube_dataplane_api_retries_total)
kdp_apiserver_restart KILL
# The stream is gone; the store keeps serving meanwhile.
answer_is web.shop.svc.cluster.local 10.96.0.20 || kdp_fail "store stopped serving during the cut: $(tail -20 "$KDP_TMP/KDP_KUBECONFIG_TOKEN.log")"
kdp_kubectl -n shop create service clusterip after-cut --tcp=80 --clusterip=10.96.0.23 >/dev/null
kdp_wait_for 60 answer_is after-cut.shop.svc.cluster.local 10.96.0.23 ||
  kdp_fail "no resume after the cut: $(tail -5 "$KDP_TMP/KDP_KUBECONFIG_TOKEN.log")"
[ "$(metric kube_dataplane_api_retries_total)" -gt "$retries" ] || kdp_fail "the cut was not noticed"
# Exactly one store change since the cut: the new Service (no replayed or re-added objects).
[ "$(metric kube_dataplane_store_batches_total)" = $((batches + 1)) ] ||
  kdp_fail "store batches $batches -> $(metric kube_dataplane_store_batches_total), want +1"
[ "$(services)" = $((api_services + 1)) ] || kdp_fail "Services after the cut: $(services)"
answer_is pods.shop.svc.cluster.local 10.244.0.6 || kdp_fail "slice lost in the cut"
stop_dns
echo "PASS api_source"
