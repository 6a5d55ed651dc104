#!/usr/bin/env bash
# deploy/ against a real kube-apiserver with RBAC on: every manifest is accepted by the server
# (validation and admission), and the kube-dataplane ServiceAccount, with its own token, may do
# exactly what the program does (list/watch the kinds it reads, update Ingress status, take a
# Lease in its namespace) and is refused everything beyond.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/apiserver.sh"
deploy=$(cd "$(dirname "$0")/../../deploy" && pwd)

# Only the ServiceAccount gets rights here (no test user bound to the ClusterRole).
KDP_API_NO_RBAC_GRANT=1 kdp_apiserver_start

kdp_kubectl apply -f "$deploy/rbac.yaml"
# The workloads too: nothing runs them (no scheduler, no kubelet), but the server validates,
# defaults and admits them as a cluster would.
kdp_kubectl apply -f "$deploy/node.yaml" -f "$deploy/ingress.yaml"
[ "$(kdp_kubectl -n kube-dataplane get daemonset kube-dataplane-node -o jsonpath='{.spec.template.spec.containers[0].securityContext.capabilities.add}')" = '["NET_ADMIN","NET_BIND_SERVICE"]' ] ||
  kdp_fail "the DaemonSet's capabilities are not NET_ADMIN, NET_BIND_SERVICE"

sa=system:serviceaccount:kube-dataplane:kube-dataplane
kdp_api_sa_kubeconfig kube-dataplane kube-dataplane "$KDP_TMP/sa.yaml"
as_sa() { "$KDP_KUBECTL" --kubeconfig "$KDP_TMP/sa.yaml" "$@"; }

# can VERB RESOURCE [kubectl flags]: the ServiceAccount's own token may (checked twice: by the
# server's SelfSubjectAccessReview and by the admin's impersonation).
can() {
  [ "$(as_sa auth can-i "$@" 2>&1)" = yes ] || kdp_fail "$sa may not: $*"
  [ "$(kdp_kubectl auth can-i --as="$sa" "$@" 2>&1)" = yes ] || kdp_fail "impersonated $sa may not: $*"
}
cannot() {
  local answer
  answer=$(as_sa auth can-i "$@" 2>"$KDP_TMP/can-i.err") && kdp_fail "$sa may: $* ($answer)"
  [ "$answer" = no ] || kdp_fail "can-i $*: $answer $(cat "$KDP_TMP/can-i.err")"
}

# What the API source reads, cluster-wide and in one namespace.
for resource in services endpointslices.discovery.k8s.io ingresses.networking.k8s.io \
                ingressclasses.networking.k8s.io secrets nodes; do
  for verb in get list watch; do
    can "$verb" "$resource" --all-namespaces
  done
done
for resource in services endpointslices.discovery.k8s.io ingresses.networking.k8s.io secrets; do
  can watch "$resource" -n default
done
# The ingress component's writes.
can update ingresses.networking.k8s.io --subresource=status -n default
for verb in get create update; do can "$verb" leases.coordination.k8s.io -n kube-dataplane; done

# Beyond: other kinds, other verbs, the object itself rather than its status, Leases elsewhere.
for resource in configmaps pods endpoints namespaces serviceaccounts events \
                deployments.apps daemonsets.apps roles.rbac.authorization.k8s.io \
                clusterrolebindings.rbac.authorization.k8s.io; do
  cannot list "$resource" --all-namespaces
done
for resource in services endpointslices.discovery.k8s.io ingresses.networking.k8s.io \
                ingressclasses.networking.k8s.io secrets nodes; do
  for verb in create update patch delete deletecollection; do
    cannot "$verb" "$resource" -n default
  done
done
cannot patch ingresses.networking.k8s.io --subresource=status -n default
cannot update services --subresource=status -n default
cannot update nodes --subresource=status
for verb in list watch patch delete; do cannot "$verb" leases.coordination.k8s.io -n kube-dataplane; done
for verb in get create update; do cannot "$verb" leases.coordination.k8s.io -n default; done
cannot create serviceaccounts --subresource=token -n kube-dataplane
cannot impersonate users

# The same through real requests with the ServiceAccount's token (what the program sends).
kdp_kubectl create service clusterip web --tcp=80:8080 -n default >/dev/null
kdp_kubectl apply -f - >/dev/null <<'INGRESS'
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: default}
spec:
  ingressClassName: kube-dataplane
  rules: [{host: web.example, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]
INGRESS
token=$(sed -n 's/^ *token: //p' "$KDP_TMP/sa.yaml")
api() {  # api METHOD PATH [BODY]: prints the HTTP status
  curl -sS -o "$KDP_TMP/body" -w '%{http_code}' --cacert "$KDP_API_CA" \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -X "$1" \
    ${3:+--data-binary "$3"} "$KDP_API_SERVER$2"
}
expect() {  # expect STATUS METHOD PATH [BODY]
  local got
  got=$(api "${@:2}")
  [ "$got" = "$1" ] || kdp_fail "$2 $3 as $sa: $got, expected $1: $(head -c 300 "$KDP_TMP/body")"
}
expect 200 GET '/api/v1/services?limit=1'
expect 200 GET '/apis/discovery.k8s.io/v1beta1/endpointslices?limit=1'
expect 200 GET '/apis/networking.k8s.io/v1/ingresses?limit=1'
expect 200 GET '/apis/networking.k8s.io/v1/ingressclasses'
expect 200 GET '/api/v1/secrets?limit=1'
expect 200 GET '/api/v1/nodes'
expect 200 GET '/api/v1/services?watch=1&timeoutSeconds=1&allowWatchBookmarks=true'
# Ingress status: read the object, put it back with a load balancer address (PUT .../status).
expect 200 GET /apis/networking.k8s.io/v1/namespaces/default/ingresses/web
status=$(jq -c '.status.loadBalancer.ingress = [{"ip": "192.0.2.10"}]' "$KDP_TMP/body")
expect 200 PUT /apis/networking.k8s.io/v1/namespaces/default/ingresses/web/status "$status"
[ "$(kdp_kubectl get ingress web -n default -o jsonpath='{.status.loadBalancer.ingress[0].ip}')" = 192.0.2.10 ] ||
  kdp_fail "the Ingress status was not written"
# ... but not the Ingress itself, nor any Service.
expect 403 PUT /apis/networking.k8s.io/v1/namespaces/default/ingresses/web "$status"
expect 403 DELETE /api/v1/namespaces/default/services/web
expect 403 GET /api/v1/configmaps
expect 403 GET /api/v1/pods
# The Lease: create, read, renew in kube-dataplane; nowhere else.
lease='{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"kube-dataplane-ingress"},"spec":{"holderIdentity":"test","leaseDurationSeconds":15}}'
expect 201 POST /apis/coordination.k8s.io/v1/namespaces/kube-dataplane/leases "$lease"
expect 200 GET /apis/coordination.k8s.io/v1/namespaces/kube-dataplane/leases/kube-dataplane-ingress
renewed=$(jq -c '.spec.holderIdentity = "other"' "$KDP_TMP/body")
expect 200 PUT /apis/coordination.k8s.io/v1/namespaces/kube-dataplane/leases/kube-dataplane-ingress "$renewed"
expect 403 DELETE /apis/coordination.k8s.io/v1/namespaces/kube-dataplane/leases/kube-dataplane-ingress
expect 403 POST /apis/coordination.k8s.io/v1/namespaces/default/leases "$lease"
echo PASS
