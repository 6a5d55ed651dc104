#!/usr/bin/env bash
# Ingress status against a real kube-apiserver v1.20.2 (tests/e2e/apiserver.sh), with
# deploy/rbac.yaml's rights only (user kube-dataplane: update ingresses/status, leases in
# namespace kube-dataplane):
# - an Ingress of our class gets --publish-address in status.loadBalancer.ingress; one of another
#   class does not; metadata we do not decode (finalizers, labels) survives the status PUT;
# - two instances: one Lease holder, status written once; the holder stopped → the other takes the
#   Lease and follows a changed --publish-address;
# - with --manifests the publish flags are accepted and nothing is written (one log line).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/apiserver.sh"

kdp_apiserver_start

kdp_kubectl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: kube-dataplane}
spec: {controller: kube-dataplane.io/ingress}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ours
  namespace: shop
  labels: {keep: me}
  finalizers: [example.com/keep]
spec:
  ingressClassName: kube-dataplane
  defaultBackend: {service: {name: web, port: {number: 80}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: theirs, namespace: shop}
spec:
  ingressClassName: nginx
  defaultBackend: {service: {name: web, port: {number: 80}}}
YAML

lb() { kdp_kubectl -n shop get ingress "$1" -o jsonpath='{.status.loadBalancer.ingress[*].ip}{.status.loadBalancer.ingress[*].hostname}'; }
lb_is() { [ "$(lb "$1")" = "$2" ]; }
holder() { kdp_kubectl -n kube-dataplane get lease kube-dataplane-ingress-status -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
rv() { kdp_kubectl -n shop get ingress "$1" -o jsonpath='{.metadata.resourceVersion}'; }

stop_clean() {  # stop_clean PID LOG: SIGTERM, and the process must exit 0 (no sanitizer report)
  local rc=0
  kill "$1"; wait "$1" 2>/dev/null || rc=$?
  [ "$rc" -eq 0 ] || kdp_fail "exit $rc after SIGTERM: $(tail -20 "$2")"
}

start_ingress() {  # start_ingress NAME PUBLISH...: sets pid_NAME
  POD_NAME=$1 POD_NAMESPACE=kube-dataplane kdp_spawn "$KDP_BIN" ingress \
    --kubeconfig "$KDP_KUBECONFIG_TOKEN" --http "127.0.0.1:$(kdp_free_port)" \
    --https "127.0.0.1:$(kdp_free_port)" --threads 1 --access-log off \
    --publish-address "$2" 2>"$KDP_TMP/$1.log"
  printf -v "pid_$1" %s "$!"
}

# --- two instances: one holder, status written once ------------------------------------------
start_ingress a 203.0.113.10,lb.example.com
start_ingress b 203.0.113.10,lb.example.com
kdp_wait_for 60 lb_is ours "203.0.113.10lb.example.com" ||
  kdp_fail "status not written: '$(lb ours)'; a: $(tail -3 "$KDP_TMP/a.log"); b: $(tail -3 "$KDP_TMP/b.log")"
first=$(holder)
[ "$first" = a ] || [ "$first" = b ] || kdp_fail "lease holder '$first'"
[ "$(kdp_kubectl -n shop get ingress ours -o jsonpath='{.metadata.finalizers[0]} {.metadata.labels.keep}')" = "example.com/keep me" ] ||
  kdp_fail "metadata lost by the status write: $(kdp_kubectl -n shop get ingress ours -o yaml)"
written_rv=$(rv ours)
# Several renew rounds (2 s each): nothing more is written, the holder stays.
sleep 7  # a bounded observation window: no write must happen in it
[ "$(rv ours)" = "$written_rv" ] || kdp_fail "status rewritten although unchanged"
[ "$(holder)" = "$first" ] || kdp_fail "holder changed from $first to $(holder) while both run"
writes=$(cat "$KDP_TMP/a.log" "$KDP_TMP/b.log" | grep -c 'ingress status written ingress=shop/ours' || true)
[ "$writes" -eq 1 ] || kdp_fail "shop/ours written $writes times, want 1"
acquired=$(cat "$KDP_TMP/a.log" "$KDP_TMP/b.log" | grep -c 'lease acquired' || true)
[ "$acquired" -eq 1 ] || kdp_fail "$acquired lease holders, want 1"
[ -z "$(lb theirs)" ] || kdp_fail "another class's Ingress got status: '$(lb theirs)'"
grep -q 'theirs' "$KDP_TMP/a.log" "$KDP_TMP/b.log" && kdp_fail "another class's Ingress touched"

# --- the holder stops; the other takes over after the lease expires ---------------------------
if [ "$first" = a ]; then stop_clean "$pid_a" "$KDP_TMP/a.log"; other=b
else stop_clean "$pid_b" "$KDP_TMP/b.log"; other=a; fi
deadline=$((SECONDS + 40))
until [ "$(holder)" = "$other" ]; do
  ((SECONDS < deadline)) || kdp_fail "lease not taken over by $other (holder '$(holder)')"
  sleep 1
done

# A changed --publish-address (a restarted holder with another address) is written.
other_pid_var=pid_$other; stop_clean "${!other_pid_var}" "$KDP_TMP/$other.log"
start_ingress c 2001:db8::10
deadline=$((SECONDS + 60))
until lb_is ours "2001:db8::10"; do
  ((SECONDS < deadline)) || kdp_fail "changed address not written: '$(lb ours)': $(tail -3 "$KDP_TMP/c.log")"
  sleep 1
done
[ -z "$(lb theirs)" ] || kdp_fail "another class's Ingress got status: '$(lb theirs)'"
stop_clean "$pid_c" "$KDP_TMP/c.log"

# --- --manifests: accepted, nothing written ------------------------------------------------
m=$KDP_TMP/manifests; mkdir -p "$m"
kdp_spawn "$KDP_BIN" ingress --manifests "$m" --http "127.0.0.1:$(kdp_free_port)" \
  --https "127.0.0.1:$(kdp_free_port)" --threads 1 --publish-address 192.0.2.1 2>"$KDP_TMP/m.log"
mpid=$!
kdp_wait_for 20 grep -q "ingress status is written only with the Kubernetes API source" "$KDP_TMP/m.log" ||
  kdp_fail "--manifests with --publish-address: no log line: $(cat "$KDP_TMP/m.log")"
stop_clean "$mpid" "$KDP_TMP/m.log"

echo "ingress status: ok"
