#!/usr/bin/env bash
# The API test harness itself (tests/e2e/apiserver.sh): a real kube-apiserver + etcd start on
# loopback, every kubeconfig it writes authenticates, a wrong CA is refused, a restart keeps the
# data, a compaction makes old resourceVersions 410 Gone, and stopping leaves nothing running.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/apiserver.sh"

# --watch-cache=false: the 410 check below needs the server to read from etcd.
kdp_apiserver_start --watch-cache=false
echo "apiserver $KDP_API_SERVER (pid $KDP_APISERVER_PID), etcd $KDP_ETCD_ENDPOINT (pid $KDP_ETCD_PID)"

k() { "$KDP_KUBECTL" --kubeconfig "$@"; }

for kubeconfig in "$KDP_KUBECONFIG_ADMIN" "$KDP_KUBECONFIG_TOKEN" "$KDP_KUBECONFIG_TOKEN_FILE" \
                  "$KDP_KUBECONFIG_CERT"; do
  version=$(k "$kubeconfig" get --raw /version | jq -r .gitVersion)
  [ "$version" = v1.20.2 ] || kdp_fail "$(basename "$kubeconfig"): /version said '$version'"
done

# Who is who: the admin is in system:masters, the kube-dataplane user has deploy/rbac.yaml's
# rights (token and certificate alike), an anonymous client has nothing.
[ "$(k "$KDP_KUBECONFIG_ADMIN" auth can-i delete nodes --all-namespaces)" = yes ] || kdp_fail "admin cannot delete nodes"
for kubeconfig in "$KDP_KUBECONFIG_TOKEN" "$KDP_KUBECONFIG_CERT"; do
  [ "$(k "$kubeconfig" auth can-i watch services --all-namespaces)" = yes ] ||
    kdp_fail "$(basename "$kubeconfig"): cannot watch services"
  if k "$kubeconfig" auth can-i list configmaps >/dev/null; then
    kdp_fail "$(basename "$kubeconfig"): may list configmaps"
  fi
done
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$KDP_API_CA" "$KDP_API_SERVER/api/v1/services")
[ "$code" = 403 ] || kdp_fail "anonymous list of services answered $code, not 403"

# A CA that did not sign the serving certificate: refused, and the error says why.
if out=$(k "$KDP_KUBECONFIG_WRONG_CA" get --raw /version 2>&1); then
  kdp_fail "the wrong CA was accepted: $out"
fi
grep -q 'certificate signed by unknown authority' <<<"$out" || kdp_fail "wrong CA: unexpected error: $out"

# A ServiceAccount's kubeconfig (TokenRequest).
kdp_kubectl create serviceaccount probe -n default >/dev/null
kdp_api_sa_kubeconfig default probe "$KDP_TMP/sa.yaml"
[ "$(k "$KDP_TMP/sa.yaml" get --raw /version | jq -r .gitVersion)" = v1.20.2 ] ||
  kdp_fail "the ServiceAccount token was not accepted"

# Restart the apiserver alone: same port, the object survives.
kdp_kubectl create service clusterip harness --tcp=80:8080 -n default >/dev/null
rv=$(kdp_kubectl get service harness -n default -o jsonpath='{.metadata.resourceVersion}')
old_pid=$KDP_APISERVER_PID
kdp_apiserver_restart KILL
[ "$KDP_APISERVER_PID" != "$old_pid" ] || kdp_fail "restart kept the pid"
! kill -0 "$old_pid" 2>/dev/null || kdp_fail "the old apiserver $old_pid still runs"
[ "$(kdp_kubectl get service harness -n default -o jsonpath='{.metadata.resourceVersion}')" = "$rv" ] ||
  kdp_fail "the Service did not survive the restart"

# Compaction: a watch from the old resourceVersion answers 410 Expired.
kdp_kubectl label service harness -n default changed=yes >/dev/null
revision=$(kdp_etcd_compact)
((revision > rv)) || kdp_fail "compacted at $revision, not after $rv"
event=$(curl -sS --max-time 10 --cacert "$KDP_API_CA" -H "Authorization: Bearer $KDP_API_ADMIN_TOKEN" \
  "$KDP_API_SERVER/api/v1/namespaces/default/services?watch=1&resourceVersion=$rv&timeoutSeconds=3" | head -n 1)
[ "$(jq -r '.type + " " + (.object.code|tostring) + " " + .object.reason' <<<"$event")" = "ERROR 410 Expired" ] ||
  kdp_fail "watch from a compacted resourceVersion: $event"

# Stop: both processes gone, the port closed, the temp dir removed.
pids=("$KDP_APISERVER_PID" "$KDP_ETCD_PID")
server=$KDP_API_SERVER etcd_endpoint=$KDP_ETCD_ENDPOINT tmp=$KDP_API_TMP
kdp_apiserver_stop_all
for pid in "${pids[@]}"; do ! kill -0 "$pid" 2>/dev/null || kdp_fail "pid $pid still runs"; done
! curl -sk --max-time 2 "$server/version" >/dev/null 2>&1 || kdp_fail "$server still answers"
! curl -s --max-time 2 "$etcd_endpoint/health" >/dev/null 2>&1 || kdp_fail "etcd still answers"
[ ! -e "$tmp" ] || kdp_fail "$tmp is left"

# Installing again is a no-op once built.
started=$SECONDS
kdp_apiserver_install >/dev/null
((SECONDS - started < 10)) || kdp_fail "kdp_apiserver_install rebuilt an installed apiserver"

# A test that fails after starting them leaves nothing behind either (the EXIT trap).
e2e=$(cd "$(dirname "$0")" && pwd)
if bash -c 'source "$1/lib.sh"; source "$1/apiserver.sh"; KDP_API_NO_RBAC_GRANT=1 kdp_apiserver_start
            echo "$KDP_APISERVER_PID $KDP_ETCD_PID $KDP_API_TMP" > "$2"; kdp_fail "a deliberate failure"' \
     _ "$e2e" "$KDP_TMP/failed" 2>"$KDP_TMP/failed.err"; then
  kdp_fail "the failing test succeeded"
fi
grep -q 'FAIL: a deliberate failure' "$KDP_TMP/failed.err" ||
  kdp_fail "the failing test failed before its deliberate failure: $(cat "$KDP_TMP/failed.err")"
read -r apiserver_pid etcd_pid tmp < "$KDP_TMP/failed"
for pid in "$apiserver_pid" "$etcd_pid"; do
  ! kill -0 "$pid" 2>/dev/null || kdp_fail "pid $pid still runs after a failed test"
done
[ ! -e "$tmp" ] || kdp_fail "$tmp is left after a failed test"
echo PASS
