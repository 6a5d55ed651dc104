#!/usr/bin/env bash
# deploy/ against a real kube-apiserver with RBAC on: every manifest is accepted by the server
# (validation, defaulting, admission), and each ServiceAccount, with its own token, has exactly the
# rights its workload uses (the server's own list of its rules equals ours), is refused beyond them
# on real requests, and the program runs with them (the workloads' own command lines).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/apiserver.sh"
deploy=$(cd "$(dirname "$0")/../../deploy" && pwd)

# Only the ServiceAccounts get rights here (no test user bound to the roles).
KDP_API_NO_RBAC_GRANT=1 kdp_apiserver_start

kdp_kubectl apply -f "$deploy/rbac.yaml"
# The workloads too: nothing runs them (no scheduler, no kubelet), but the server validates,
# defaults and admits them as a cluster would.
kdp_kubectl apply -f "$deploy/node.yaml" -f "$deploy/ingress.yaml"
caps=$(kdp_kubectl -n kube-dataplane get daemonset kube-dataplane-node \
  -o jsonpath='{.spec.template.spec.containers[0].securityContext.capabilities}')
[ "$caps" = '{"add":["NET_ADMIN","NET_BIND_SERVICE"],"drop":["ALL"]}' ] ||
  kdp_fail "the DaemonSet's capabilities: $caps"
[ "$(kdp_kubectl -n kube-dataplane get deployment kube-dataplane-ingress \
  -o jsonpath='{.spec.template.spec.securityContext.runAsNonRoot}')" = true ] ||
  kdp_fail "the ingress Deployment may run as root"

kdp_api_sa_kubeconfig kube-dataplane kube-dataplane-node "$KDP_TMP/node.yaml"
kdp_api_sa_kubeconfig kube-dataplane kube-dataplane-ingress "$KDP_TMP/ingress.yaml"

# The resource rules the server holds for an identity in a namespace (SelfSubjectRulesReview),
# "resource verbs" per line, sorted, without system:basic-user's self-review rules that every
# authenticated user has. rules KUBECONFIG NAMESPACE
rules() {
  "$KDP_KUBECTL" --kubeconfig "$1" auth can-i --list -n "$2" |
    awk 'NR > 1 && /^[^ ]/ && $1 !~ /^selfsubject/ && match($0, /\[[^]]*\]$/) {
           print $1, substr($0, RSTART + 1, RLENGTH - 2) }' | sort
}
expect_rules() {  # expect_rules KUBECONFIG NAMESPACE <<< expected lines
  local expected got
  expected=$(sort)
  got=$(rules "$1" "$2")
  [ "$got" = "$expected" ] ||
    kdp_fail "rules of $(basename "$1" .yaml) in $2:"$'\n'"$got"$'\n'"expected:"$'\n'"$expected"
}
node_rules='endpointslices.discovery.k8s.io get list watch
nodes get list watch
services get list watch'
ingress_rules='endpointslices.discovery.k8s.io get list watch
ingressclasses.networking.k8s.io get list watch
ingresses.networking.k8s.io get list watch
ingresses.networking.k8s.io/status update
secrets get list watch
services get list watch'
expect_rules "$KDP_TMP/node.yaml" default <<<"$node_rules"
expect_rules "$KDP_TMP/node.yaml" kube-dataplane <<<"$node_rules"
expect_rules "$KDP_TMP/ingress.yaml" default <<<"$ingress_rules"
expect_rules "$KDP_TMP/ingress.yaml" kube-dataplane <<<"$ingress_rules
leases.coordination.k8s.io get create update"
# The same answers through the admin's impersonation (the path a SubjectAccessReview takes).
sa=system:serviceaccount:kube-dataplane:kube-dataplane
[ "$(kdp_kubectl auth can-i --as=$sa-ingress update ingresses --subresource=status -n default)" = yes ] ||
  kdp_fail "ingress may not update Ingress status (impersonated)"
[ "$(kdp_kubectl auth can-i --as=$sa-node list secrets -n default)" = no ] ||
  kdp_fail "node may list secrets (impersonated)"

# Real requests with each ServiceAccount's token: what the program sends is allowed, and the
# server refuses anything else.
kdp_kubectl create service clusterip web --tcp=80:8080 -n default >/dev/null
kdp_kubectl apply -f - >/dev/null <<'INGRESS'
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: default}
spec:
  ingressClassName: kube-dataplane
  rules: [{host: web.example, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]
INGRESS
expect() {  # expect SA STATUS METHOD PATH [BODY]
  local token got
  token=$(sed -n 's/^ *token: //p' "$KDP_TMP/$1.yaml")
  got=$(curl -sS -o "$KDP_TMP/body" -w '%{http_code}' --cacert "$KDP_API_CA" \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -X "$3" \
    ${5:+--data-binary "$5"} "$KDP_API_SERVER$4")
  [ "$got" = "$2" ] || kdp_fail "$1: $3 $4: $got, expected $2: $(head -c 300 "$KDP_TMP/body")"
}
slices=/apis/discovery.k8s.io/v1beta1/endpointslices
ingresses=/apis/networking.k8s.io/v1/ingresses
leases=/apis/coordination.k8s.io/v1/namespaces/kube-dataplane/leases
for sa_name in node ingress; do
  expect $sa_name 200 GET '/api/v1/services?limit=1'
  expect $sa_name 200 GET "$slices?limit=1"
  expect $sa_name 200 GET '/api/v1/services?watch=1&timeoutSeconds=1&allowWatchBookmarks=true'
  expect $sa_name 403 GET /api/v1/configmaps
  expect $sa_name 403 GET /api/v1/pods
  expect $sa_name 403 GET /api/v1/namespaces
  expect $sa_name 403 DELETE /api/v1/namespaces/default/services/web
done
expect node 200 GET /api/v1/nodes
expect node 403 GET '/api/v1/secrets?fieldSelector=type%3Dkubernetes.io%2Ftls'
expect node 403 GET $ingresses
expect node 403 GET "$leases/kube-dataplane-ingress"
expect ingress 403 GET /api/v1/nodes
expect ingress 200 GET '/api/v1/secrets?fieldSelector=type%3Dkubernetes.io%2Ftls'
expect ingress 200 GET /apis/networking.k8s.io/v1/ingressclasses
# Ingress status: read the object, put it back with a load balancer address (PUT .../status).
expect ingress 200 GET $ingresses?limit=1
expect ingress 200 GET /apis/networking.k8s.io/v1/namespaces/default/ingresses/web
status=$(jq -c '.status.loadBalancer.ingress = [{"ip": "192.0.2.10"}]' "$KDP_TMP/body")
expect node 403 PUT /apis/networking.k8s.io/v1/namespaces/default/ingresses/web/status "$status"
expect ingress 200 PUT /apis/networking.k8s.io/v1/namespaces/default/ingresses/web/status "$status"
[ "$(kdp_kubectl get ingress web -n default -o jsonpath='{.status.loadBalancer.ingress[0].ip}')" = 192.0.2.10 ] ||
  kdp_fail "the Ingress status was not written"
# ... but not the Ingress itself.
expect ingress 403 PUT /apis/networking.k8s.io/v1/namespaces/default/ingresses/web "$status"
# The Lease: created, read, renewed in kube-dataplane; never deleted, nowhere else.
lease='{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"kube-dataplane-ingress"},"spec":{"holderIdentity":"test","leaseDurationSeconds":15}}'
expect node 403 POST "$leases" "$lease"
expect ingress 201 POST "$leases" "$lease"
expect ingress 200 GET "$leases/kube-dataplane-ingress"
renewed=$(jq -c '.spec.holderIdentity = "other"' "$KDP_TMP/body")
expect ingress 200 PUT "$leases/kube-dataplane-ingress" "$renewed"
expect ingress 403 DELETE "$leases/kube-dataplane-ingress"
expect ingress 403 POST /apis/coordination.k8s.io/v1/namespaces/default/leases "$lease"

# The program itself, with the workloads' command lines as the server stored them ($(VAR) expanded
# as the kubelet would) and each ServiceAccount's token: `run … --dry-run` lists every kind its
# components read, syncs, prints the store and exits. With the other workload's ServiceAccount it is
# refused, naming what it may not list.
workload_args() {  # workload_args daemonset|deployment NAME: one argument per line
  kdp_kubectl -n kube-dataplane get "$1" "$2" -o json | jq -r '.spec.template.spec.containers[0].args[]' |
    sed 's/$(NODE_NAME)/node-1/; s/$(NODE_IP)/127.0.0.1/'
}
# One object of each kind read (a TLS Secret, and an Opaque one the ingress must not hold).
kdp_kubectl apply -f - >/dev/null <<'SLICE'
apiVersion: discovery.k8s.io/v1beta1
kind: EndpointSlice
metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.244.1.5], conditions: {ready: true}}]
ports: [{name: "", port: 8080, protocol: TCP}]
SLICE
kdp_kubectl create secret tls web-tls -n default --cert="$KDP_API_TMP/pki/server.crt" \
  --key="$KDP_API_TMP/pki/server.key" >/dev/null
kdp_kubectl create secret generic not-tls -n default --from-literal=password=x >/dev/null
mapfile -t node_args < <(workload_args daemonset kube-dataplane-node)
mapfile -t ingress_args < <(workload_args deployment kube-dataplane-ingress)
[ "${node_args[0]}" = run ] || kdp_fail "the DaemonSet runs ${node_args[0]}, not run"
[ "${ingress_args[0]}" = ingress ] || kdp_fail "the Deployment runs ${ingress_args[0]}, not ingress"
ingress_args[0]=run  # `ingress` has no --dry-run; `run` with only ingress flags runs only ingress
# dataplane SA "${args[@]}": exit status; stdout in $KDP_TMP/out, stderr in $KDP_TMP/err
dataplane() {
  local sa=$1; shift
  timeout 60 "$KDP_BIN" "$@" --kubeconfig "$KDP_TMP/$sa.yaml" --dry-run >"$KDP_TMP/out" 2>"$KDP_TMP/err"
}
dataplane node "${node_args[@]}" ||
  kdp_fail "the DaemonSet's command line with its ServiceAccount: ${node_args[*]}: $(cat "$KDP_TMP/err")"
grep -q '^objects: .*Service=3 EndpointSlice=1 .*Node=0 ' "$KDP_TMP/out" ||
  kdp_fail "node: unexpected store: $(cat "$KDP_TMP/out")"
dataplane ingress "${ingress_args[@]}" ||
  kdp_fail "the ingress Deployment's command line with its ServiceAccount: ${ingress_args[*]}: $(cat "$KDP_TMP/err")"
grep -q '^objects: .*Service=3 EndpointSlice=1 Ingress=1 IngressClass=1 Secret=1 ' "$KDP_TMP/out" ||
  kdp_fail "ingress: unexpected store: $(cat "$KDP_TMP/out")"
if dataplane node "${ingress_args[@]}"; then kdp_fail "ingress ran with the node's ServiceAccount"; fi
grep -q 'HTTP 403: .*cannot list resource "\(secrets\|ingresses\|ingressclasses\)"' "$KDP_TMP/err" ||
  kdp_fail "ingress with the node's ServiceAccount: $(cat "$KDP_TMP/err")"
if dataplane ingress "${node_args[@]}"; then kdp_fail "proxy+dns ran with the ingress's ServiceAccount"; fi
grep -q 'HTTP 403: .*cannot list resource "nodes"' "$KDP_TMP/err" ||
  kdp_fail "proxy+dns with the ingress's ServiceAccount: $(cat "$KDP_TMP/err")"
echo PASS
